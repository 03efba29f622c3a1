"""The job runner: one worker thread, results on the GUI thread, and garbage collected on
the GUI thread only (a worker that frees Qt objects crashes the app)."""

from __future__ import annotations

import gc
import threading
from typing import ClassVar

from PySide6.QtCore import QObject

from workbench.ui.jobs import JobRunner


class _Cyclic(QObject):
    """A Qt object in a reference cycle: only the cyclic collector frees it."""

    freed_in: ClassVar[list[str]] = []

    def __init__(self) -> None:
        super().__init__()
        self.me = self

    def __del__(self) -> None:
        _Cyclic.freed_in.append(threading.current_thread().name)


def test_garbage_is_collected_on_the_gui_thread_while_a_runner_lives(qtbot) -> None:
    gc.collect()
    assert gc.isenabled()
    runner = JobRunner(batch_interval_s=0.01)
    try:
        assert not gc.isenabled()
        _Cyclic.freed_in.clear()
        _Cyclic()  # unreachable at once, but held by its cycle

        def allocate(cancel: threading.Event) -> int:
            # enough allocation to trigger automatic collection, were it on
            junk = [[i] for i in range(200_000)]
            return len(junk)

        with qtbot.waitSignal(runner._bridge.done, timeout=10_000):
            runner.run("allocate", allocate)
        assert _Cyclic.freed_in == []  # the worker never collected it
        qtbot.waitUntil(lambda: _Cyclic.freed_in != [], timeout=3 * runner.GC_INTERVAL_MS)
        assert _Cyclic.freed_in == ["MainThread"]
    finally:
        assert runner.shutdown()
    assert gc.isenabled()
    assert runner.shutdown()  # a second shutdown changes nothing
    assert gc.isenabled()
