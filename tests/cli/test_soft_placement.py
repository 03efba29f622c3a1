"""`workbench generate --soft` runs a soft prompt in its placement (embedded model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.cli_helpers import run_cli
from workbench.core.library import Library
from workbench.core.models import SoftPrompt, SoftPromptPlacement
from workbench.core.softprompt import soft_prompt_bytes

pytestmark = pytest.mark.integration

N_VIRTUAL = 2
SYSTEM = (
    "You are a careful assistant. Read the review below and answer with exactly one word, "
    "positive or negative, and nothing else: no punctuation, no explanation."
)


def prompt_tokens(library_dir: Path, soft: str, backend: str) -> int:
    result = run_cli(
        "generate",
        "Polarity",
        "--var",
        "text=lovely",
        "--soft",
        soft,
        "--backend",
        backend,
        "--max-tokens",
        "1",
        "--temperature",
        "0",
        "--json",
        "--no-save",
        env_library=library_dir,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["event"] == "done"
    return int(done["stats"]["prompt_tokens"])


@pytest.mark.parametrize("backend", ["llama.cpp", "transformers"])
def test_a_replace_soft_prompt_drops_the_system_message(library_dir: Path, backend: str) -> None:
    from workbench.core.backends.registry import embedded_spec
    from workbench.core.softprompt import model_hash_for_spec

    spec = embedded_spec()
    library = Library(library_dir)
    library.new_prompt("Polarity", system=SYSTEM, user_template="Review: {{ text }}")
    zeros = soft_prompt_bytes(np.zeros((N_VIRTUAL, 576), dtype=np.float32))
    placements: tuple[SoftPromptPlacement, ...] = ("replace", "start")
    for placement in placements:
        soft = SoftPrompt(
            name=placement,
            base_model=spec.id,
            base_model_hash=model_hash_for_spec(spec),
            num_virtual_tokens=N_VIRTUAL,
            hidden_size=576,
            tensor_file=f"{placement}.safetensors",
            placement=placement,
        )
        library.save_soft_prompt(soft, zeros)
    replaced = prompt_tokens(library_dir, "replace", backend)
    started = prompt_tokens(library_dir, "start", backend)
    # the same virtual tokens and user turn: the difference is the system message's text
    assert 25 <= started - replaced <= 60, (started, replaced)
