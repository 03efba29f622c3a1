"""`workbench gui`: the app is the default command; a smoke test leaves no log behind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workbench.cli import build_parser, main, parse_app_start


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    import workbench.ui.app as app

    calls: list[dict[str, object]] = []

    def run_app(library_dir: Path | None = None, smoke_test: bool = False) -> int:
        logging.getLogger("workbench.ui.app").warning("the app logs something")
        calls.append({"library_dir": library_dir, "smoke_test": smoke_test})
        return 0

    monkeypatch.setattr(app, "run_app", run_app)
    return calls


def test_no_command_opens_the_app(fake_app: list[dict[str, object]], log_dir: Path) -> None:
    assert main(["--library", "somewhere"]) == 0
    assert fake_app == [{"library_dir": Path("somewhere"), "smoke_test": False}]
    assert "the app logs something" in (log_dir / "workbench.log").read_text("utf-8")


def test_a_smoke_test_writes_no_log_file(fake_app: list[dict[str, object]], log_dir: Path) -> None:
    assert main(["gui", "--smoke-test"]) == 0
    assert fake_app == [{"library_dir": None, "smoke_test": True}]
    assert list(log_dir.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["gui"],
        ["gui", "--smoke-test"],
        ["--library", "somewhere"],
        ["--library", "somewhere", "--debug", "gui"],
        ["--debug", "gui", "--smoke-test"],
    ],
)
def test_the_app_s_command_lines_parse_as_the_full_parser_reads_them(argv: list[str]) -> None:
    """The quick parse that starts the window without building every command reads the
    app's command lines exactly as the full parser does."""
    quick = parse_app_start(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--help"],
        ["--version"],
        ["-h"],
        ["gui", "-h"],
        ["--smoke-test"],
        ["--library"],
        ["--lib", "somewhere"],
        ["gui", "extra"],
        ["gui", "--library", "somewhere"],
        ["--", "gui"],
    ],
)
def test_every_other_command_line_is_left_to_the_full_parser(argv: list[str]) -> None:
    assert parse_app_start(argv) is None
