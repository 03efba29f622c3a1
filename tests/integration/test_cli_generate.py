"""`workbench models`, `generate` and `eval` end to end, as a user runs them (Ctrl-C
included: every command stops the same way)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.library import Library
from workbench.core.models import Prompt, TestRow, TestSet

pytestmark = pytest.mark.integration


def workbench(*args: str, library: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kwargs,
    )


def test_models_lists_the_embedded_default_first(library_dir: Path) -> None:
    result = workbench("models", "--json", library=library_dir)
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout.splitlines()[0])
    assert first["embedded"] and first["id"] == "smollm2-135m-instruct"
    assert first["backends"] == ["llama.cpp", "transformers"]
    assert first["location"].endswith(".gguf")


def test_generate_streams_text_and_prints_stats(library_dir: Path) -> None:
    result = workbench(
        "generate",
        "--text",
        "What is the capital of France? Answer in one sentence.",
        "--max-tokens",
        "16",
        "--temperature",
        "0",
        library=library_dir,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "tokens/s" in result.stderr and "first token" in result.stderr


def test_generate_json_has_logprobs_and_a_done_event(library_dir: Path) -> None:
    result = workbench(
        "generate",
        "--text",
        "Say hello.",
        "--max-tokens",
        "6",
        "--logprobs",
        "3",
        "--json",
        library=library_dir,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    tokens = [e for e in events if e["event"] == "token" and e["logprob"] is not None]
    assert tokens and all(e["logprob"] <= 0 and len(e["top"]) == 3 for e in tokens)
    assert events[-1]["event"] == "done"
    assert events[-1]["stats"]["completion_tokens"] == len(tokens)


def test_generate_a_library_prompt_keeps_a_run_record(library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = library.new_prompt(
        "Capital", system="Answer in one word.", user_template="Capital of {{ country }}?"
    )
    result = workbench(
        "generate", "Capital", "--var", "country=Italy", "--max-tokens", "5", library=library_dir
    )
    assert result.returncode == 0, result.stderr
    runs = Library(library_dir).runs_for(prompt.id)
    assert len(runs) == 1 and runs[0].output.strip() == result.stdout.strip()
    assert runs[0].variables == {"country": "Italy"} and runs[0].backend == "llama.cpp"
    missing = workbench("generate", "Capital", library=library_dir)
    assert missing.returncode == 2 and "needs values for: country" in missing.stderr


def test_missing_model_is_a_clean_error(library_dir: Path, tmp_path: Path) -> None:
    result = workbench(
        "generate", "--text", "hi", "--model", str(tmp_path / "gone.gguf"), library=library_dir
    )
    assert result.returncode == 2
    assert "no model" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_generation_cleanly(library_dir: Path) -> None:
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library_dir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "generate",
            "--text",
            "Write a long story about a lighthouse keeper.",
            "--max-tokens",
            "400",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # generation is under way
    assert first["event"] == "token"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    events = [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 130, err
    assert events[-1]["event"] == "done"
    assert events[-1]["stats"]["finish_reason"] == "cancelled"
    assert events[-1]["stats"]["completion_tokens"] < 400
    assert "Traceback" not in err


def test_ctrl_c_stops_an_evaluation_cleanly(library_dir: Path) -> None:
    """The first Ctrl-C ends `workbench eval` with what it finished (a partial summary,
    exit 130), as it ends `generate`."""
    library = Library(library_dir)
    prompt = library.save_prompt(
        Prompt(name="Echo", system="Repeat the word.", user_template="{{ word }}")
    )
    rows = [TestRow(vars={"word": f"word{i}"}, expected=f"word{i}") for i in range(40)]
    library.save_test_set(TestSet(name="words", prompt_id=prompt.id, rows=rows))
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "eval", "Echo", "--json", "--no-save"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the evaluation is under way
    assert first["event"] == "case"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    lines = [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 130, err
    assert lines[-1]["event"] == "summary" and lines[-1]["complete"] is False
    assert lines[-1]["summaries"][0]["cases"] < len(rows)
    assert "Traceback" not in err
