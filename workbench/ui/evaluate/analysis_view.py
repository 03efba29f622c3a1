"""The analysis of the shown run (`core.analysis.analyse`) as tabs above the grid:
Summary (each variant's accuracy with its 95 % interval, the best and its equals, the
paired tests, cross-entropy, rated satisfaction), Metrics (the stored means), Per label
(precision, recall, F1, support, macro/micro F1), Groups (the group chart with the
allowed gap) and Charts (metric bars and the confusion heat map; a click on a cell
asks the grid to show those cases). The variant the per-variant tabs show is picked
in the tab bar's corner; each chart is saved as PNG or SVG from its Save button.

The charts (pyqtgraph, numpy) are built when the first analysis is shown, not when the
window starts."""

from __future__ import annotations

import html
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.report import count, display_name, format_percent
from workbench.ui.widgets import ElidedComboBox, named

if TYPE_CHECKING:  # the charts and the analysis load numpy: imported when first needed
    from workbench.core.analysis import Analysis, Estimate, VariantReport
    from workbench.ui.evaluate.charts import ConfusionHeatmap, GroupChart, MetricBars

log = logging.getLogger(__name__)

BEST, EQUAL = "★ best", "≈ best"
NO_ANALYSIS = "Intervals, paired tests and per-label metrics appear here once a run has ended."
DEFAULT_MAX_GAP = 0.10
SHORTEST = 40  # px: the least height a tab's text or table keeps (the grid comes first)


def best_mark(analysis: Analysis | None, name: str) -> str:
    """ "★ best", "≈ best" (not distinguishable from the best) or ""."""
    if analysis is None or not analysis.best:
        return ""
    if name == analysis.best[0]:
        return BEST
    return EQUAL if name in analysis.best else ""


def header_mark(analysis: Analysis | None, name: str) -> str:
    """The grid header's short form of `best_mark`: "★", "≈" or "" (the header's
    tooltip says what it means)."""
    return best_mark(analysis, name)[:1]


def stars_text(e: Estimate | None) -> str:
    if e is None:
        return "–"
    interval = f" ({e.interval[0]:.2f}–{e.interval[1]:.2f})" if e.interval else ""
    return f"{e.value:.2f} of 5{interval}"


def satisfaction_text(v: VariantReport) -> str:
    """ "thumbs up 75.0 % (30.1–95.4) of 4 ratings · 4.00 of 5 (…) of 2 ratings" or ""."""
    parts = []
    if v.thumbs_up is not None:
        e = v.thumbs_up
        parts.append(
            f"thumbs up {format_percent(e.value, e.interval)} of {count(e.cases, 'rating')}"
        )
    if v.stars is not None:
        parts.append(f"stars {stars_text(v.stars)} of {count(v.stars.cases, 'rating')}")
    return " · ".join(parts)


def summary_html(analysis: Analysis) -> str:
    """The Summary tab: a row per variant, then the paired verdicts."""
    likelihood = any(v.cross_entropy is not None for v in analysis.variants)
    rated = any(v.thumbs_up is not None or v.stars is not None for v in analysis.variants)
    head = ["variant", "", f"{display_name(analysis.primary)} (95 % interval)", "cases"]
    if likelihood:
        head += ["cross-entropy (nats/token)", "perplexity"]
    if rated:
        head.append("rated satisfaction")
    # headers break before their unit, never inside a word
    rows = [
        "".join(
            f"<th align='left' style='white-space:nowrap'>"
            f"{html.escape(h).replace(' (', '<br>(', 1)}</th>"
            for h in head
        )
    ]
    for v in analysis.variants:
        cells = [
            v.name,
            best_mark(analysis, v.name),
            format_percent(v.primary.value, v.primary.interval),
            str(v.primary.cases),
        ]
        if likelihood:
            ce, ppl = v.cross_entropy, v.perplexity
            cells += [f"{ce:.3f}" if ce is not None else "–", f"{ppl:.2f}" if ppl else "–"]
        if rated:
            cells.append(satisfaction_text(v) or "not rated")
        bold = best_mark(analysis, v.name) == BEST
        # the figures keep to one line ("41.7 % (19.3–68.0)"); only a long name wraps
        nowrap = " style='white-space:nowrap'"
        row = "".join(
            f"<td{'' if i == 0 else nowrap}>"
            f"{'<b>' if bold else ''}{html.escape(c)}{'</b>' if bold else ''}</td>"
            for i, c in enumerate(cells)
        )
        rows.append(row)
    table = "<table cellspacing='0' cellpadding='3'>" + "".join(f"<tr>{r}</tr>" for r in rows)
    parts = [table + "</table>", "<p>Intervals: Wilson 95 % for pass rates.</p>"]
    if analysis.pairs:
        verdicts = "".join(f"<li>{html.escape(p.verdict)}</li>" for p in analysis.pairs)
        parts.append(f"<p>Paired tests (exact McNemar on the same cases):</p><ul>{verdicts}</ul>")
    return "".join(parts)


def _save_button(chart: QWidget, parent: QWidget) -> QToolButton:
    button = named(QToolButton(), f"{chart.objectName()}Save")
    button.setText("Save picture…")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    for suffix in ("png", "svg"):
        menu.addAction(f"As {suffix.upper()}…", partial(ask_save_chart, parent, chart, suffix))
    button.setMenu(menu)
    return button


def save_chart(chart: QWidget, path: str | Path) -> None:
    """The chart as PNG or SVG by the path's suffix (ValueError when it shows nothing)."""
    from workbench.ui.evaluate.charts import save_png, save_svg

    if str(path).lower().endswith(".svg"):
        save_svg(chart, path)  # type: ignore[arg-type]
    else:
        save_png(chart, path)  # type: ignore[arg-type]


def ask_save_chart(parent: QWidget, chart: QWidget, suffix: str) -> None:
    name = f"{chart.objectName().removeprefix('eval').lower()}.{suffix}"
    pattern = f"{suffix.upper()} pictures (*.{suffix})"
    path, _ = QFileDialog.getSaveFileName(parent, "Save the picture", name, pattern)
    if not path:
        return
    try:
        save_chart(chart, path)
    except (OSError, ValueError) as exc:
        log.warning("could not save the picture %s: %s", path, exc)
        if isinstance(parent, AnalysisView):
            parent.message.emit(f"Could not save the picture: {exc}", True)
        return
    if isinstance(parent, AnalysisView):
        parent.message.emit(f"Saved the picture to {path}", False)


def _scrolling(page: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(page)
    return area


class AnalysisView(QTabWidget):
    """The tabs; `set_analysis` after the shown run changes (None while it runs)."""

    cell_filter = Signal(int, str, str)  # variant index, expected label, chosen label
    message = Signal(str, bool)

    def __init__(self, metrics_table: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evalAnalysis")
        self.analysis: Analysis | None = None
        self.summary = named(QTextBrowser(), "evalAnalysisSummary")
        self.summary.setPlaceholderText(NO_ANALYSIS)
        self.summary.setMinimumHeight(SHORTEST)  # the tabs may be dragged short: they scroll
        # narrow, so the tabs beside it keep their room; a long name elides (whole on hover)
        self.variant_combo = named(ElidedComboBox(min_chars=7), "evalAnalysisVariant")
        self.variant_combo.set_help("The variant the Per label, Groups and Charts tabs show")
        self.setCornerWidget(self.variant_combo, Qt.Corner.TopRightCorner)

        self.per_label = named(QTableWidget(0, 5), "evalPerLabel")
        self.per_label.setHorizontalHeaderLabels(["label", "precision", "recall", "F1", "support"])
        self.per_label.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.per_label.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.per_label.setMinimumHeight(SHORTEST)
        self.f1_line = named(QLabel(), "evalF1")
        labels_tab = QWidget()
        labels_layout = QVBoxLayout(labels_tab)
        labels_layout.addWidget(self.f1_line)
        labels_layout.addWidget(self.per_label, 1)

        self.max_gap = named(QDoubleSpinBox(), "evalMaxGap")
        self.max_gap.setRange(0.0, 100.0)
        self.max_gap.setDecimals(1)
        self.max_gap.setSingleStep(1.0)
        self.max_gap.setSuffix(" points")
        self.max_gap.setValue(DEFAULT_MAX_GAP * 100)
        self.max_gap.setToolTip("The largest gap between groups you accept (kept this session)")
        self.gap_flag = named(QLabel(), "evalGapFlag")
        self.gap_flag.setStyleSheet("color: #b00020; font-weight: bold")
        self._gap_row = QHBoxLayout()
        self._gap_row.addWidget(QLabel("Allowed gap between groups:"))
        self._gap_row.addWidget(self.max_gap)
        self._gap_row.addWidget(self.gap_flag, 1)
        groups_tab = QWidget()
        self._groups_layout = QVBoxLayout(groups_tab)
        self._groups_layout.addLayout(self._gap_row)

        self.normalised = named(QCheckBox("Row-normalised"), "evalHeatNormalised")
        self.normalised.setToolTip("Each expected label's row as shares instead of counts")
        self._charts_tab = QSplitter(Qt.Orientation.Horizontal)
        # built with the first analysis (pyqtgraph is not loaded at start-up)
        self.groups: GroupChart | None = None
        self.bars: MetricBars | None = None
        self.heatmap: ConfusionHeatmap | None = None

        self.addTab(self.summary, "Summary")
        self.addTab(metrics_table, "Metrics")
        self.addTab(labels_tab, "Per label")
        # the pictures need some height: in a short strip they scroll, not squeeze
        self.addTab(_scrolling(groups_tab), "Groups")
        self.addTab(_scrolling(self._charts_tab), "Charts")

        self.variant_combo.currentIndexChanged.connect(lambda _i: self._show_variant())
        self.normalised.toggled.connect(lambda _on: self._show_variant())
        self.max_gap.valueChanged.connect(lambda _v: self._show_variant())
        self.set_analysis(None)

    def ensure_charts(self) -> None:
        """Build the pictures (once): the group chart, the metric bars, the heat map."""
        if self.groups is not None:
            return
        from workbench.ui.evaluate.charts import ConfusionHeatmap, GroupChart, MetricBars

        self.groups = GroupChart()
        self._gap_row.addWidget(_save_button(self.groups, self))
        self._groups_layout.addWidget(self.groups, 1)
        self.bars = MetricBars()
        self.heatmap = ConfusionHeatmap()
        for chart, extra in ((self.bars, None), (self.heatmap, self.normalised)):
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(0, 0, 0, 0)
            row = QHBoxLayout()
            if extra is not None:
                row.addWidget(extra)
            row.addStretch(1)
            row.addWidget(_save_button(chart, self))
            box_layout.addLayout(row)
            box_layout.addWidget(chart, 1)
            self._charts_tab.addWidget(box)
        self.heatmap.setToolTip("Click a cell to show those cases in the grid")
        self.heatmap.cell_clicked.connect(self._cell_clicked)

    @property
    def max_group_gap(self) -> float:
        """The allowed gap as a fraction (the spin box reads points)."""
        return self.max_gap.value() / 100

    def variant_index(self) -> int:
        return self.variant_combo.currentIndex()

    def set_analysis(self, analysis: Analysis | None) -> None:
        if analysis is not None:
            self.ensure_charts()
        self.analysis = analysis
        picked = self.variant_combo.currentText()
        self.variant_combo.blockSignals(True)
        self.variant_combo.clear()
        if analysis is not None:
            self.variant_combo.addItems([v.name for v in analysis.variants])
            names = [v.name for v in analysis.variants]
            start = picked if picked in names else (analysis.best[0] if analysis.best else "")
            self.variant_combo.setCurrentIndex(names.index(start) if start in names else 0)
        self.variant_combo.blockSignals(False)
        self.variant_combo.setEnabled(analysis is not None)
        self.summary.setHtml(summary_html(analysis) if analysis is not None else "")
        if self.bars is not None:
            self.bars.set_analysis(analysis)
        self._show_variant()

    def _variant(self) -> VariantReport | None:
        i = self.variant_combo.currentIndex()
        if self.analysis is None or not 0 <= i < len(self.analysis.variants):
            return None
        return self.analysis.variants[i]

    def _show_variant(self) -> None:
        v = self._variant()
        c = v.classification if v is not None else None
        if self.heatmap is not None:
            self.heatmap.set_classification(c, normalised=self.normalised.isChecked())
        self.per_label.setRowCount(len(c.per_label) if c else 0)
        for i, m in enumerate(c.per_label if c else []):
            cells = [m.label, *(format_percent(x) for x in (m.precision, m.recall, m.f1))]
            for j, text in enumerate([*cells, str(m.support)]):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.per_label.setItem(i, j, item)
        if c is not None and v is not None:
            cases = count(sum(m.support for m in c.per_label), "case")
            self.f1_line.setText(
                f"{v.name}: macro-F1 {format_percent(c.macro_f1)} · micro-F1 "
                f"{format_percent(c.micro_f1)} · {cases}"
            )
        else:
            self.f1_line.setText("Per-label metrics need a test set with a label set.")
        if self.groups is not None:
            self.groups.set_variant(
                v,
                self.max_group_gap,
                display_name(self.analysis.primary) if self.analysis else "accuracy",
            )
        self._flag_gaps()

    def _flag_gaps(self) -> None:
        """Name every variant whose gap between groups exceeds the allowed one."""
        over = []
        for v in self.analysis.variants if self.analysis else []:
            gap = v.groups.gap if v.groups else None
            if gap is not None and gap.exceeds(self.max_group_gap):
                over.append(f"{v.name} ({format_percent(gap.gap)}: {gap.high} over {gap.low})")
        self.gap_flag.setText("⚠ gap over the limit: " + ", ".join(over) if over else "")

    def _cell_clicked(self, expected: str, chosen: str) -> None:
        if self._variant() is not None:
            self.cell_filter.emit(self.variant_combo.currentIndex(), expected, chosen)
