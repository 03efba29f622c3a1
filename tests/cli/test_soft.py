"""`workbench soft list` on a library of its own (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.core.library import Library
from workbench.core.models import SoftPrompt
from workbench.core.softprompt import soft_prompt_bytes


def test_soft_list_shows_each_placement(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = Library(library_dir)
    fields = {"base_model": "m", "base_model_hash": "0" * 64, "num_virtual_tokens": 2}
    tensor = soft_prompt_bytes(np.zeros((2, 8), dtype=np.float32))
    library.save_soft_prompt(
        SoftPrompt(name="old", tensor_file="old.safetensors", **fields), tensor
    )
    library.save_soft_prompt(
        SoftPrompt(name="new", tensor_file="new.safetensors", placement="replace", **fields),
        tensor,
    )
    assert main(["--library", str(library_dir), "soft", "list"]) == 0
    lines = sorted(capsys.readouterr().out.splitlines(), key=lambda line: line.split()[1])
    assert lines[0].endswith("new  (2 tokens on m, placement replace)")
    assert lines[1].endswith("old  (2 tokens on m, placement start)")  # made before placements
