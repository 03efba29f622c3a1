"""The live loss plot: training loss, validation loss and accuracy in ring buffers,
drawn with pyqtgraph (imported the first time the plot is shown, so building the main
window stays fast) and redrawn by a timer at most every `REDRAW_MS`, only when new
points arrived."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.core.tuning import StepEvent, ValidationEvent
from workbench.ui.widgets import named

MAX_POINTS = 100_000
"""Training-loss points kept per run (a ring buffer: the oldest go first)."""
REDRAW_MS = 66
"""The plot is redrawn at most ~15 times a second, and only when points arrived."""

TRAIN_COLOUR = "#1f77b4"
VAL_LOSS_COLOUR = "#d62728"
ACCURACY_COLOUR = "#2ca02c"


def _swatch(colour: str, mark: str, text: str) -> str:
    return f'<span style="color:{colour}; font-weight:bold">{mark}</span>&nbsp;{text}'


LEGEND = " &nbsp;&nbsp; ".join(
    (
        _swatch(TRAIN_COLOUR, "━━", "training loss"),
        _swatch(VAL_LOSS_COLOUR, "━●━", "validation loss"),
        _swatch(ACCURACY_COLOUR, "╍■╍", "validation accuracy (right)"),
    )
)


class RingSeries:
    """(x, y) points in preallocated numpy arrays; past `capacity` the oldest are dropped."""

    def __init__(self, capacity: int = MAX_POINTS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        # allocated on the first point: numpy is not imported while the window is built
        self._x: Any = None
        self._y: Any = None
        self._start = 0
        self._count = 0

    def _allocate(self) -> None:
        import numpy as np

        self._x = np.zeros(self._capacity, dtype=np.float64)
        self._y = np.zeros(self._capacity, dtype=np.float64)

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return self._capacity

    def clear(self) -> None:
        self._start = self._count = 0

    def append(self, x: float, y: float) -> None:
        if self._x is None:
            self._allocate()
        capacity = self.capacity
        at = (self._start + self._count) % capacity
        self._x[at] = x
        self._y[at] = y
        if self._count < capacity:
            self._count += 1
        else:
            self._start = (self._start + 1) % capacity

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        for x, y in zip(xs, ys, strict=True):
            self.append(x, y)

    def arrays(self) -> tuple[Any, Any]:
        """Copies of the points, oldest first."""
        import numpy as np

        if self._x is None:
            self._allocate()
        end = self._start + self._count
        if end <= self.capacity:
            return self._x[self._start : end].copy(), self._y[self._start : end].copy()
        wrap = end - self.capacity
        return (
            np.concatenate([self._x[self._start :], self._x[:wrap]]),
            np.concatenate([self._y[self._start :], self._y[:wrap]]),
        )


class LossPlot(QWidget):
    """Training loss and validation loss (left axis) and validation accuracy (right
    axis, 0 to 1) by step. Points go into the series at once; the curves follow on the
    next redraw (`start_live` runs the timer; `stop_live` stops it and draws the rest)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train_series = RingSeries()
        self.val_loss_series = RingSeries(10_000)
        self.val_accuracy_series = RingSeries(10_000)
        self._dirty = False
        self.plot: Any = None
        self.loss_curve: Any = None
        self.val_loss_curve: Any = None
        self.accuracy_curve: Any = None
        self._accuracy_view: Any = None
        self.redraw_timer = QTimer(self, interval=REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw_if_dirty)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.legend = named(QLabel(LEGEND), "gradPlotLegend")
        self.legend.setWordWrap(True)
        # the plot is built on first show; reserve its room so a splitter does not
        # collapse the empty placeholder
        self.setMinimumHeight(180)

    def showEvent(self, event: QShowEvent) -> None:
        self.ensure_plot()
        super().showEvent(event)

    # -- data ------------------------------------------------------------------------

    def add_step(self, event: StepEvent) -> None:
        self.train_series.append(float(event.step), event.loss)
        self._dirty = True

    def add_validation(self, event: ValidationEvent) -> None:
        self.val_loss_series.append(float(event.step), event.loss)
        if event.accuracy is not None:
            self.val_accuracy_series.append(float(event.step), event.accuracy)
        self._dirty = True

    def clear(self) -> None:
        self.train_series.clear()
        self.val_loss_series.clear()
        self.val_accuracy_series.clear()
        self._dirty = True
        self.redraw_if_dirty()

    def show_curves(self, curves: dict[str, list[float]]) -> None:
        """A stored soft prompt's curves (`SoftPrompt.curves`)."""
        self.train_series.clear()
        self.val_loss_series.clear()
        self.val_accuracy_series.clear()
        train = curves.get("train_loss", [])
        self.train_series.extend([float(i + 1) for i in range(len(train))], train)
        val_steps = curves.get("val_step", [])
        val_loss = curves.get("val_loss", [])
        if len(val_steps) == len(val_loss):
            self.val_loss_series.extend(val_steps, val_loss)
        accuracy = curves.get("val_accuracy", [])
        if accuracy and len(accuracy) == len(val_steps):
            self.val_accuracy_series.extend(val_steps, accuracy)
        self._dirty = True
        self.redraw_if_dirty()

    def snapshot(self) -> tuple[tuple[Any, Any], ...]:
        """The three series as they are (to show them again later with `restore`)."""
        return tuple(
            series.arrays()
            for series in (self.train_series, self.val_loss_series, self.val_accuracy_series)
        )

    def restore(self, snapshot: tuple[tuple[Any, Any], ...]) -> None:
        """Show a `snapshot` again."""
        series = (self.train_series, self.val_loss_series, self.val_accuracy_series)
        for target, (xs, ys) in zip(series, snapshot, strict=True):
            target.clear()
            target.extend(list(xs), list(ys))
        self._dirty = True
        self.redraw_if_dirty()

    def plotted_points(self) -> int:
        """How many training-loss points the curve holds (for tests and status)."""
        if self.loss_curve is None or self.loss_curve.xData is None:
            return 0
        return len(self.loss_curve.xData)

    # -- drawing ---------------------------------------------------------------------

    def start_live(self) -> None:
        self.redraw_timer.start()

    def stop_live(self) -> None:
        self.redraw_timer.stop()
        self.redraw_if_dirty()

    def redraw_if_dirty(self) -> None:
        if not self._dirty or self.plot is None:
            return
        self._dirty = False
        self.loss_curve.setData(*self.train_series.arrays())
        self.val_loss_curve.setData(*self.val_loss_series.arrays())
        self.accuracy_curve.setData(*self.val_accuracy_series.arrays())

    def ensure_plot(self) -> Any:
        """The pyqtgraph widget, built (and pyqtgraph imported) on the first call."""
        if self.plot is not None:
            return self.plot
        import pyqtgraph as pg  # type: ignore[import-untyped]

        plot = named(pg.PlotWidget(), "gradPlot")
        plot.setBackground("w")
        item = plot.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        # the legend is a line above the plot, not a box over it: curves fall from the
        # top left (loss) and rise to the top right (accuracy), so a box in the view
        # always hid some of them
        self.loss_curve = item.plot(pen=pg.mkPen(TRAIN_COLOUR, width=1.5), name="training loss")
        self.val_loss_curve = item.plot(
            pen=pg.mkPen(VAL_LOSS_COLOUR, width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush=VAL_LOSS_COLOUR,
            symbolPen=None,
            name="validation loss",
        )
        # validation accuracy on its own right-hand axis (0 to 1), x linked to the loss
        view = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(view)
        axis = item.getAxis("right")
        axis.linkToView(view)
        axis.setLabel("validation accuracy")
        view.setXLink(item.vb)
        view.setYRange(0.0, 1.0, padding=0.05)
        view.setMouseEnabled(x=False, y=False)
        self.accuracy_curve = pg.PlotDataItem(
            pen=pg.mkPen(ACCURACY_COLOUR, width=2, style=Qt.PenStyle.DashLine),
            symbol="s",
            symbolSize=7,
            symbolBrush=ACCURACY_COLOUR,
            symbolPen=None,
        )
        view.addItem(self.accuracy_curve)
        self._accuracy_view = view

        def sync() -> None:
            view.setGeometry(item.vb.sceneBoundingRect())
            view.linkedViewChanged(item.vb, view.XAxis)

        item.vb.sigResized.connect(sync)
        sync()
        self.plot = plot
        self._layout.addWidget(self.legend)
        self._layout.addWidget(plot)
        self._dirty = True
        self.redraw_if_dirty()
        return plot
