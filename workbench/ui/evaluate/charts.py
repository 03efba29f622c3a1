"""The Evaluate panel's pictures, drawn with pyqtgraph from an `Analysis`
(`core/analysis.py`): each variant's primary metric as a bar with its 95 % interval as a
whisker (the best and its equals marked), the confusion matrix as a heat map whose cells
can be clicked (to filter the grid to those cases), and one variant's metric per group
with the allowed gap. Each shows a short hint when there is nothing to draw.
`save_png`/`save_svg` write what a chart shows, for the report and for people.

pyqtgraph is imported when the first chart is built, not when this module is imported,
so the main window starts without it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSimpleTextItem,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.analysis import Analysis, VariantReport
from workbench.core.flows.report import display_name, format_percent
from workbench.core.report_svg import (
    BAR_COLOUR,
    BEST_COLOUR,
    EQUAL_COLOUR,
    INK,
    MUTED,
    OVER_COLOUR,
    shorten,
)
from workbench.core.stats import Classification
from workbench.ui.widgets import named

NO_VARIANTS_HINT = "Run an evaluation to see each variant's result with its interval"
NO_LABELS_HINT = "Confusion matrix needs a test set with a label set"
NO_GROUPS_HINT = "Group chart needs a test set whose rows have groups"

HEAT_LOW = (247, 251, 255)  # white…
HEAT_HIGH = (8, 69, 148)  # …to dark blue (the SVG report's ramp)


def _pg() -> Any:
    import pyqtgraph as pg  # type: ignore[import-untyped]  # not needed at start-up

    return pg


def _tooltip(text: str) -> str:
    """A tooltip that shows user text as written (Qt would read "<b>" in it as markup)."""
    from html import escape

    return f"<p style='white-space:pre'>{escape(text)}</p>" if text else ""


def _swatch(colour: str, text: str) -> str:
    return f'<span style="color:{colour}">&#9632;</span>&nbsp;{text}'


class _Chart(QWidget):
    """A plot with a caption above it, or a hint in its place when there is nothing to
    draw. `plot` is the pyqtgraph PlotWidget; `hint` and `caption` are labels."""

    def __init__(self, name: str, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg = _pg()
        self.setObjectName(name)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName(f"{name}Plot")
        self.plot.setBackground("w")
        self.plot.setMinimumHeight(200)
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setPen(pg.mkPen(INK))
            axis.setTextPen(pg.mkPen(INK))
        self.hint = named(QLabel(hint), f"{name}Hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color: {MUTED};")
        self.caption = named(QLabel(), f"{name}Caption")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.stack, 1)
        self._empty_hint = hint
        self.clear()

    @property
    def has_content(self) -> bool:
        return self.stack.currentWidget() is self.plot

    def clear(self, hint: str | None = None) -> None:
        """Nothing to draw: the hint (this chart's own unless given) instead of the plot."""
        self.plot.getPlotItem().clear()
        self.hint.setText(hint or self._empty_hint)
        self.caption.clear()
        self.caption.hide()
        self.stack.setCurrentWidget(self.hint)

    def _start(self) -> Any:
        item = self.plot.getPlotItem()
        item.clear()
        self.stack.setCurrentWidget(self.plot)
        return item

    def svg(self) -> str:
        """What the chart shows, drawn as SVG by the core (the report's picture)."""
        raise NotImplementedError

    def _caption(self, html: str) -> None:
        self.caption.setText(html)
        self.caption.setVisible(bool(html))


def _text(
    text: str,
    x: float,
    y: float,
    colour: str,
    anchor: tuple[float, float],
    font: QFont | None = None,
) -> QGraphicsSimpleTextItem:
    """A label at (x, y) in data coordinates, upright and unscaled, `anchor` the point of
    its box placed there ((0.5, 1.0): centred above). A plain Qt item, not pyqtgraph's
    TextItem: that one emits Python signals on every repaint, and each Python emit under
    PySide6 6.12 on Python 3.11 loses a reference to True (see the report of issue 16)."""
    label = QGraphicsSimpleTextItem(text)
    if font is not None:
        label.setFont(font)
    label.setBrush(QColor(colour))
    label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    box = label.boundingRect()
    label.setTransform(
        QTransform.fromTranslate(-anchor[0] * box.width(), -anchor[1] * box.height())
    )
    label.setPos(x, y)
    return label


def _bars(item: Any, bars: list[tuple[str, Any, str]], limit: int) -> None:
    """(name, Estimate, colour) as bars on a 0–100 % axis with whiskers, values above."""
    pg = _pg()
    xs = list(range(len(bars)))
    heights = [e.value * 100 for _, e, _ in bars]
    item.addItem(
        pg.BarGraphItem(
            x=xs,
            height=heights,
            width=0.6,
            brushes=[pg.mkBrush(c) for _, _, c in bars],
            pen=pg.mkPen(None),
        )
    )
    with_interval = [(x, e) for x, (_, e, _) in zip(xs, bars, strict=True) if e.interval]
    if with_interval:
        import numpy as np

        item.addItem(
            pg.ErrorBarItem(  # numpy arrays: it subtracts them
                x=np.array([x for x, _ in with_interval], dtype=float),
                y=np.array([e.value * 100 for _, e in with_interval]),
                top=np.array([(e.interval[1] - e.value) * 100 for _, e in with_interval]),
                bottom=np.array([(e.value - e.interval[0]) * 100 for _, e in with_interval]),
                beam=0.25,
                pen=pg.mkPen(INK, width=1.5),
            )
        )
    for x, (_, e, _) in zip(xs, bars, strict=True):
        top = max(e.value, e.interval[1] if e.interval else e.value) * 100
        item.addItem(_text(f"{e.value * 100:.1f} %", x, top + 1, INK, (0.5, 1.0)))
    ticks = [(x, shorten(name, limit)) for x, (name, _, _) in zip(xs, bars, strict=True)]
    item.getAxis("bottom").setTicks([ticks, []])
    item.getAxis("left").setTicks([[(v, f"{v} %") for v in (0, 25, 50, 75, 100)], []])
    item.showGrid(x=False, y=True, alpha=0.2)
    item.setXRange(-0.6, len(bars) - 0.4, padding=0)
    item.setYRange(-5, 112, padding=0)  # below 0: the "0 %" tick keeps its label


def _name_limit(n: int) -> int:
    """How many characters of a name fit under a bar when there are `n` bars."""
    return max(8, min(24, 72 // max(n, 1)))


class MetricBars(_Chart):
    """Each variant's primary metric with its 95 % interval; the best variant and those
    not distinguishable from it in their own colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("evalMetricBars", NO_VARIANTS_HINT, parent)
        self.names: list[str] = []  # the variants drawn, left to right
        self.analysis: Analysis | None = None

    def svg(self) -> str:
        from workbench.core.report_svg import hint_svg, svg_metric_bars

        return svg_metric_bars(self.analysis) if self.analysis else hint_svg(NO_VARIANTS_HINT)

    def set_analysis(self, analysis: Analysis | None) -> None:
        self.analysis = analysis
        if analysis is None or not analysis.variants:
            self.names = []
            self.clear()
            return
        item = self._start()
        best = analysis.best[0] if analysis.best else None
        bars = []
        for v in analysis.variants:
            colour = BAR_COLOUR
            if v.name == best:
                colour = BEST_COLOUR
            elif v.name in analysis.best:
                colour = EQUAL_COLOUR
            bars.append((v.name, v.primary, colour))
        self.names = [name for name, _, _ in bars]
        _bars(item, bars, _name_limit(len(bars)))
        item.setLabel("left", display_name(analysis.primary))
        legend = [_swatch(BEST_COLOUR, "best")]
        if len(analysis.best) > 1:
            legend.append(_swatch(EQUAL_COLOUR, "not distinguishable from the best"))
        self._caption(
            f"{display_name(analysis.primary)} with 95 % intervals &nbsp; "
            + " &nbsp; ".join(legend)
        )
        self.plot.setToolTip(
            _tooltip(
                "\n".join(
                    f"{v.name}: {format_percent(v.primary.value, v.primary.interval)} of "
                    f"{v.primary.cases} cases"
                    for v in analysis.variants
                )
            )
        )


class ConfusionHeatmap(_Chart):
    """The confusion matrix as a heat map: rows are the expected labels (top to bottom),
    columns the labels chosen; each cell shows its count (and its share of the row when
    `normalised`, which also colours by that share). Clicking a cell emits
    `cell_clicked(expected, chosen)`."""

    cell_clicked = Signal(str, str)  # expected label, chosen label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("evalConfusion", NO_LABELS_HINT, parent)
        self.classification: Classification | None = None
        self.normalised = False
        self.cell_texts: dict[tuple[int, int], str] = {}  # (row, column) → text shown
        self.plot.getPlotItem().getViewBox().invertY(True)  # the first label on top
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.scene().sigMouseMoved.connect(self._hovered)

    def svg(self) -> str:
        from workbench.core.report_svg import hint_svg, svg_confusion

        c = self.classification
        return svg_confusion(c, self.normalised) if c is not None else hint_svg(NO_LABELS_HINT)

    def set_classification(
        self, classification: Classification | None, normalised: bool = False
    ) -> None:
        self.classification, self.normalised = classification, normalised
        self.cell_texts = {}
        if classification is None or not classification.labels:
            self.clear()
            return
        pg = _pg()
        import numpy as np

        item = self._start()
        labels, matrix = classification.labels, classification.matrix
        k = len(labels)
        shares = classification.row_normalised()
        peak = max(max(row) for row in matrix) or 1
        strength = np.array(
            [
                [shares[i][j] if normalised else matrix[i][j] / peak for j in range(k)]
                for i in range(k)
            ]
        )
        colours = pg.ColorMap([0.0, 1.0], [HEAT_LOW, HEAT_HIGH])
        image = pg.ImageItem()
        image.setImage(strength, axisOrder="row-major", levels=(0.0, 1.0))
        image.setLookupTable(colours.getLookupTable(0.0, 1.0, 256))
        image.setRect(0, 0, k, k)
        item.addItem(image)
        bold = self.font()
        bold.setBold(True)
        for i in range(k):
            for j in range(k):
                ink = "#ffffff" if strength[i, j] > 0.55 else INK
                text = str(matrix[i][j])
                anchor = (0.5, 1.0 if normalised else 0.5)
                item.addItem(_text(text, j + 0.5, i + 0.5, ink, anchor, bold))
                if normalised:
                    share = f"{shares[i][j] * 100:.0f} %"
                    item.addItem(_text(share, j + 0.5, i + 0.5, ink, (0.5, 0.0)))
                    text += f"\n{share}"
                self.cell_texts[(i, j)] = text
        limit = max(6, min(18, 64 // k))
        ticks = [(n + 0.5, shorten(label, limit)) for n, label in enumerate(labels)]
        item.getAxis("bottom").setTicks([ticks, []])
        item.getAxis("left").setTicks(
            [[(n + 0.5, shorten(x, 18)) for n, x in enumerate(labels)], []]
        )
        item.setLabel("left", "expected")
        item.setLabel("bottom", "chosen")
        item.setXRange(0, k, padding=0.02)
        item.setYRange(0, k, padding=0.02)
        how = "share of each expected label" if normalised else "counts"
        self._caption(f"Confusion matrix ({how}); click a cell to see its cases")

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(row, column) of the cell under a point of the plot's scene, if any."""
        c = self.classification
        view = self.plot.getPlotItem().getViewBox()
        if c is None or not self.has_content or not view.sceneBoundingRect().contains(scene_pos):
            return None
        at = view.mapSceneToView(scene_pos)
        row, column = math.floor(at.y()), math.floor(at.x())
        k = len(c.labels)
        return (row, column) if 0 <= row < k and 0 <= column < k else None

    def cell_centre(self, row: int, column: int) -> QPointF:
        """The scene position of a cell's centre (what a click there maps back to)."""
        view = self.plot.getPlotItem().getViewBox()
        point: QPointF = view.mapViewToScene(QPointF(column + 0.5, row + 0.5))
        return point

    def _clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.classification is None:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            labels = self.classification.labels
            self.cell_clicked.emit(labels[cell[0]], labels[cell[1]])

    def _hovered(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        c = self.classification
        if cell is None or c is None:
            self.plot.setToolTip("")
            return
        i, j = cell
        share = c.row_normalised()[i][j]
        self.plot.setToolTip(
            _tooltip(
                f"expected {c.labels[i]}, chosen {c.labels[j]}: {c.matrix[i][j]} "
                f"({share * 100:.0f} % of the row) — click to see these cases"
            )
        )


class GroupChart(_Chart):
    """One variant's metric per group with whiskers, the largest gap in the caption and,
    with a limit, a dashed line at the best group less the allowed gap (groups below it
    are drawn in red)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("evalGroups", NO_GROUPS_HINT, parent)
        self.limit_line: Any = None  # the pyqtgraph InfiniteLine while a limit is shown
        self.over: list[str] = []  # groups beyond the allowed gap
        self.variant: VariantReport | None = None
        self.max_group_gap: float | None = None
        self.metric_name = "accuracy"

    def svg(self) -> str:
        from workbench.core.report_svg import hint_svg, svg_groups

        if self.variant is None:
            return hint_svg(NO_GROUPS_HINT)
        return svg_groups(self.variant, self.max_group_gap, self.metric_name)

    def set_variant(
        self,
        variant: VariantReport | None,
        max_group_gap: float | None = None,
        metric: str = "accuracy",
    ) -> None:
        self.limit_line, self.over = None, []
        self.variant, self.max_group_gap, self.metric_name = variant, max_group_gap, metric
        report = variant.groups if variant is not None else None
        if variant is None or report is None or not report.by_group:
            self.clear()
            return
        pg = _pg()
        item = self._start()
        gap = report.gap
        floor = None
        if gap is not None and max_group_gap is not None:
            floor = report.by_group[gap.high].value - max_group_gap
        bars = []
        for name, e in report.by_group.items():
            over = floor is not None and e.value < floor - 1e-12
            if over:
                self.over.append(name)
            bars.append((name, e, OVER_COLOUR if over else BAR_COLOUR))
        _bars(item, bars, _name_limit(len(bars)))
        item.setLabel("left", metric)
        if floor is not None and max_group_gap is not None:
            self.limit_line = pg.InfiniteLine(
                pos=floor * 100,
                angle=0,
                movable=False,
                pen=pg.mkPen(OVER_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
            )  # named in the caption: a label on the line would cover the bars
            item.addItem(self.limit_line)
        self._caption(_gap_caption(variant, max_group_gap))


def _gap_caption(variant: VariantReport, max_group_gap: float | None) -> str:
    from html import escape

    gap = variant.groups.gap if variant.groups else None
    head = f"<b>{escape(variant.name)}</b> by group"
    if gap is None:
        return head + ": only one group, no gap to measure"
    lo, hi = gap.interval
    if gap.high == gap.low or gap.gap == 0:
        text = f"{head}: no gap, every group scores the same"
    else:
        text = (
            f"{head}: largest gap {gap.gap * 100:.1f} points, {escape(gap.high)} over "
            f"{escape(gap.low)}"
        )
    text += f" (bootstrap 95 % interval {lo * 100:.1f} to {hi * 100:.1f})"
    if max_group_gap is not None:
        limit = f"{max_group_gap * 100:.1f} points"
        if gap.exceeds(max_group_gap):
            text += f' — <b style="color:{OVER_COLOUR}">over the limit of {limit}</b>'
        else:
            text += f" — within the limit of {limit}"
        text += (
            f'<br><span style="color:{OVER_COLOUR}">- - -</span> the limit: the best group less '
            f"{limit}; a group below it is drawn in red"
        )
    return text


# ---------------------------------------------------------------------------
# Pictures as files


def _plot_item(chart: _Chart) -> Any:
    if not chart.has_content:
        raise ValueError(f"nothing to export: {chart.hint.text()}")
    return chart.plot.getPlotItem()


def save_png(chart: _Chart, path: Path | str, scale: float = 2.0) -> None:
    """The chart's plot as a PNG `scale` times its size on screen (atomically written);
    ValueError when the chart shows its hint instead."""
    import pyqtgraph.exporters  # type: ignore[import-untyped]

    from workbench.core.fsutil import atomic_write_bytes

    item = _plot_item(chart)
    exporter = pyqtgraph.exporters.ImageExporter(item)
    exporter.parameters()["width"] = max(1, int(item.sceneBoundingRect().width() * scale))
    image = exporter.export(toBytes=True)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError(f"could not encode the picture for {path}")
    buffer.close()
    atomic_write_bytes(Path(path), bytes(data.data()))


def save_svg(chart: _Chart, path: Path | str) -> None:
    """The chart's picture as an SVG file (atomically written): the report's own drawing
    of the same numbers (`core/report_svg.py`), text kept as text. ValueError when the
    chart shows its hint instead. (pyqtgraph 0.14's SVGExporter fails on the closed
    paths Qt 6 writes, issue #3495, and Qt's SVG generator misplaces its bars.)"""
    from workbench.core.fsutil import atomic_write_text

    _plot_item(chart)
    atomic_write_text(Path(path), chart.svg())
