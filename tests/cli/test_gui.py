"""`workbench gui`: the app is the default command; a smoke test leaves no log behind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workbench.cli import main


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
