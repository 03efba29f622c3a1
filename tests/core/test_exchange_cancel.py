"""Stopping an import while it is written: the transaction undoes what was written, so
the library is as it was (all or nothing, as for an error)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.core.exchange_helpers import rich_library, snapshot
from workbench.core import exchange
from workbench.core.fsutil import Cancelled
from workbench.core.library import Library


class _StopAfter(threading.Event):
    """Turns set once it has been asked `checks` times (Stop pressed mid-import)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks < 0:
            self.set()
        return super().is_set()


@pytest.mark.parametrize("checks", [0, 1, 3])
def test_a_stopped_import_writes_nothing(tmp_path: Path, checks: int) -> None:
    source = Library(tmp_path / "source")
    rich_library(source)
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    target = Library(tmp_path / "target")
    target.new_prompt("Already here")
    before = snapshot(tmp_path / "target")
    plan = exchange.plan_file(target, bundle)
    with pytest.raises(Cancelled, match="nothing was imported"):
        plan.apply(_StopAfter(checks))
    assert snapshot(tmp_path / "target") == before
    assert [s.name for s in Library(tmp_path / "target").search()] == ["Already here"]
    # without a stop the same plan imports everything
    result = exchange.plan_file(target, bundle).apply(threading.Event())
    assert len(result.added) == 4


def test_a_stopped_export_or_read_ends_with_cancelled(tmp_path: Path) -> None:
    library = Library(tmp_path / "lib")
    rich_library(library)
    stopped = threading.Event()
    stopped.set()
    out = tmp_path / "out"
    with pytest.raises(Cancelled, match="export was stopped"):
        exchange.export(library, "prompty", out, cancel=stopped)
    assert not out.exists() or list(out.iterdir()) == []
    exchange.export(library, "prompty", out, cancel=threading.Event())
    assert len(list(out.iterdir())) == 2
    with pytest.raises(Cancelled, match="import was stopped"):
        exchange.read_package(out, "prompty", cancel=stopped)
    assert len(exchange.read_package(out, "prompty", cancel=threading.Event()).prompts) == 2
