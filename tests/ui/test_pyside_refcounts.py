"""The Qt binding keeps Python's reference counts: a binding that drops a reference on
every signal (PySide6 6.12.0 on Python 3.11 did, and aborted the app after a few
thousand signals) fails here instead of in a user's long training run."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal()
    carried = Signal(object)


def test_emitting_signals_keeps_the_reference_counts_of_true_and_none(qapp) -> None:
    emitter = _Emitter()
    received = []
    emitter.carried.connect(received.append)
    before_true, before_none = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(2000):
        emitter.fired.emit()
        emitter.carried.emit(None)
    received.clear()
    # other code may take a few references meanwhile; a leak loses one per emit
    assert sys.getrefcount(True) >= before_true - 50
    assert sys.getrefcount(None) >= before_none - 50


def test_pyqtgraph_items_keep_the_reference_count_of_none(qapp) -> None:
    import pyqtgraph as pg  # type: ignore[import-untyped]

    widget = pg.PlotWidget()
    curve = widget.plot([0.0, 1.0], [0.0, 1.0])
    widget.show()
    before = sys.getrefcount(None)
    for i in range(300):
        curve.setData(list(range(i + 2)), [float(j % 7) for j in range(i + 2)])
        qapp.processEvents()
    widget.close()
    assert sys.getrefcount(None) >= before - 50
