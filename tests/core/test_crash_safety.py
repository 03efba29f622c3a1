"""A writer killed mid-save leaves every file parseable and the last committed version intact."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.core.library import Library

WRITER = textwrap.dedent(
    """
    import sys
    from workbench.core.library import Library
    from workbench.core.models import Prompt, TestSet, TestRow

    library = Library(sys.argv[1])
    prompt = library.prompts.get("crashme") or library.save_prompt(
        Prompt(id="crashme", name="Crash me", system="0"))
    n = int(prompt.system)
    while True:
        n += 1
        # a big body makes each write take long enough to be interrupted mid-way
        prompt = library.save_prompt(prompt.model_copy(
            update={"system": str(n), "description": "x" * 200_000}))
        library.save_test_set(TestSet(id="crashset", name="set",
                                      rows=[TestRow(expected=str(n))] * 50))
        print(n, flush=True)
    """
)


@pytest.mark.parametrize("commits_before_kill", [1, 7, 23])
def test_killed_writer_leaves_a_consistent_library(
    tmp_path: Path, commits_before_kill: int
) -> None:
    root = tmp_path / "lib"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= commits_before_kill:
            proc.send_signal(signal.SIGKILL)  # lands in the middle of a later save
            break
    proc.wait(timeout=30)
    assert committed >= commits_before_kill

    library = Library(root)
    assert library.problems == []
    prompt = library.prompts["crashme"]
    # the save reported as committed is there, or the one after it that was in flight
    assert int(prompt.system) in (committed, committed + 1)
    versions = [int(p.system) for p in library.history("crashme")]
    assert versions[-1] == int(prompt.system)
    assert set(range(1, committed + 1)) <= set(versions)
    assert library.test_sets["crashset"].rows[0].expected in {str(committed), str(committed + 1)}


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the rename over the target fails (a full disk, a locked file)."""
    import os

    from workbench.core import fsutil

    target = tmp_path / "prompt.json"
    fsutil.atomic_write_text(target, "old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        fsutil.atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompt.json"]
