"""`workbench` itself: --version, --help, errors as one line (tracebacks in the log or
with --debug), Ctrl-C as "stop cleanly", a closed stdout, choice lists."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tests.cli.cli_helpers import run_cli
from workbench import __version__
from workbench.cli import build_parser, main
from workbench.cli.common import cancel_on_sigint
from workbench.core.library import Library


def test_version_and_help() -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"workbench {__version__}"
    helped = run_cli("--help")
    assert helped.returncode == 0
    for command in ("gui", "render", "library"):
        assert command in helped.stdout


def test_unknown_prompt_is_a_clean_error(library_dir: Path) -> None:
    result = run_cli("--library", str(library_dir), "render", "nope")
    assert result.returncode == 2
    assert "no prompt named 'nope'" in result.stderr


def test_debug_shows_the_traceback(library_dir: Path) -> None:
    result = run_cli("--library", str(library_dir), "--debug", "render", "nope")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "error: no prompt named 'nope'" in result.stderr


def test_errors_are_logged_with_their_traceback(
    library_dir: Path, log_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--library", str(library_dir), "render", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no prompt named 'nope'") and len(err.splitlines()) == 1
    logged = (log_dir / "workbench.log").read_text("utf-8")
    assert "Traceback" in logged and "no prompt named 'nope'" in logged


def test_an_unexpected_error_is_one_line_that_points_at_the_log(
    library_dir: Path,
    log_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import workbench.cli.library as library_commands

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(library_commands, "cmd_library_show", broken)
    assert main(["--library", str(library_dir), "library", "show", "x"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: RuntimeError: boom (details in {log_dir / 'workbench.log'}, or run with --debug)"
    ]
    assert "Traceback" in (log_dir / "workbench.log").read_text("utf-8")


def test_first_ctrl_c_cancels_and_a_second_one_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with cancel_on_sigint() as cancel:
        assert not cancel.is_set()
        signal.raise_signal(signal.SIGINT)
        assert cancel.is_set()  # the command stops at its next check
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_commands_share_the_one_sigint_handler() -> None:
    """generate, eval and tune each stop through `cancel_on_sigint`, none its own."""
    import inspect

    from workbench.cli import evaluate, generate, tune

    for module in (generate, evaluate, tune):
        source = inspect.getsource(module)
        assert "cancel_on_sigint()" in source and "signal.signal" not in source, module


def test_a_closed_stdout_ends_quietly(library_dir: Path) -> None:
    """`workbench library show X | head`: the reader leaves early; no BrokenPipeError."""
    Library(library_dir).new_prompt("Big", system="word " * 400_000)  # beyond a pipe's buffer
    command = ["--library", str(library_dir), "library", "show", "Big"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip() == b"{"
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert proc.returncode in (0, 141)


def test_choice_lists_come_from_the_model_types() -> None:
    from workbench.core.models import BackendName, Device, EvalMode, InitMode, Precision, Split

    def choices_of(*words: str) -> list[str]:
        parser: argparse.ArgumentParser = build_parser()
        for word in words[:-1]:
            action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = action.choices[word]
        option = next(a for a in parser._actions if words[-1] in a.option_strings)
        return list(option.choices or [])

    assert choices_of("generate", "--backend") == list(typing.get_args(BackendName))
    assert choices_of("models", "add", "--backend") == list(typing.get_args(BackendName))
    assert choices_of("generate", "--device") == list(typing.get_args(Device))
    assert choices_of("eval", "--device") == list(typing.get_args(Device))
    assert choices_of("tune", "--device") == list(typing.get_args(Device))
    assert choices_of("tune", "--precision") == list(typing.get_args(Precision))
    assert choices_of("tune", "--init") == list(typing.get_args(InitMode))
    assert choices_of("eval", "--mode") == list(typing.get_args(EvalMode))
    assert choices_of("eval", "--split") == [*typing.get_args(Split), "all"]
