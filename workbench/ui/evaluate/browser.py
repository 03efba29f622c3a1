"""What the panel shows of evaluations: one run (its settings and headline, the summary
beside the prompt's earlier runs, the results grid with a failures-only filter, and the
clicked case in full), and the export of the shown run as CSV or JSON.

The grid gets the spare height; the summary strip above it and the case detail below it
sit in one vertical splitter, so each can be dragged larger or closed."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.report import count
from workbench.core.models import CaseResult, EvalRun, TestSet
from workbench.ui.evaluate.detail import DETAIL_HINT, case_detail_html, headline, run_caption
from workbench.ui.evaluate.grid import FailuresOnlyProxy, ResultsGridView
from workbench.ui.evaluate.history import (
    EvalRunListModel,
    ExportKind,
    ask_export_path,
    write_run_csv,
    write_run_json,
)
from workbench.ui.evaluate.results import ResultsGridModel, SummaryModel
from workbench.ui.widgets import named, side_by_side, titled_column

log = logging.getLogger(__name__)


class ResultsBrowser(QWidget):
    """The shown run and the history; a history pick asks the panel to show that run."""

    run_requested = Signal(object)  # an EvalRun picked in the history
    message = Signal(str, bool)  # a line for the panel's message (text, is an error)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._shown: tuple[EvalRun, TestSet | None] | None = None
        self.summary_model = SummaryModel(self)
        self.summary_view = named(QTableView(), "evalSummary")
        self.summary_view.setModel(self.summary_model)
        self.summary_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.summary_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.summary_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.grid_model = ResultsGridModel(self)
        self.grid_proxy = FailuresOnlyProxy(self.grid_model, self)
        self.grid_view = named(ResultsGridView(self.grid_proxy), "evalGrid")
        self.caption = named(QLabel(), "evalCaption")
        self.caption.setWordWrap(True)
        self.headline = named(QLabel(), "evalHeadline")
        self.headline.setWordWrap(True)
        self.headline.setStyleSheet("font-weight: bold")
        self.failures_only = named(QCheckBox("Failures only"), "evalFailuresOnly")
        self.failures_only.setToolTip("Show only the cases some variant failed or erred on")
        self.shown_count = named(QLabel(), "evalShownCount")
        self.detail = named(QTextBrowser(), "evalDetail")
        self.detail.setOpenLinks(False)
        self.detail.setPlaceholderText(DETAIL_HINT)
        self.history_model = EvalRunListModel(self)
        self.history = named(QListView(), "evalHistory")
        self.history.setModel(self.history_model)
        self.history.setWordWrap(True)
        self.export_csv_button = named(QPushButton("Export CSV…"), "evalExportCsv")
        self.export_json_button = named(QPushButton("Export JSON…"), "evalExportJson")
        history_box = titled_column(
            "Earlier evaluations",
            (self.history, 1),
            side_by_side(self.export_csv_button, self.export_json_button),
        )
        strip = QSplitter(Qt.Orientation.Horizontal)  # the summary beside the history
        strip.addWidget(self.summary_view)
        strip.addWidget(history_box)
        strip.setStretchFactor(0, 2)
        strip.setStretchFactor(1, 1)
        grid_box = QWidget()
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.failures_only)
        filter_row.addWidget(self.shown_count)
        filter_row.addStretch(1)
        grid_layout.addLayout(filter_row)
        grid_layout.addWidget(self.grid_view, 1)
        self.splitter = named(QSplitter(Qt.Orientation.Vertical), "evalResultsSplitter")
        self.splitter.addWidget(strip)
        self.splitter.addWidget(grid_box)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self._sized = False  # the splitter's first sizes wait for a real height
        self._live = False  # the shown run is still running
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.headline)
        layout.addWidget(self.splitter, 1)

        self.history.selectionModel().currentChanged.connect(
            lambda current, _previous: self._history_row_picked(current.row())
        )
        # a click on the current row shows it again (after a new run replaced it)
        self.history.clicked.connect(lambda index: self._history_row_picked(index.row()))
        self.failures_only.toggled.connect(self._failures_only_toggled)
        for signal in (
            self.grid_proxy.rowsInserted,
            self.grid_proxy.rowsRemoved,
            self.grid_proxy.modelReset,
            self.grid_proxy.layoutChanged,
        ):
            signal.connect(self._update_shown_count)
        self.grid_view.selectionModel().currentChanged.connect(
            lambda current, _previous: self._show_case(current)
        )
        self.grid_view.clicked.connect(self._show_case)
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))
        self.set_exportable(True)
        self._update_headline()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized:
            QTimer.singleShot(0, self._first_sizes)  # once the layout has given a height

    def _first_sizes(self) -> None:
        height = self.splitter.height()
        if self._sized or height < 200:
            return
        # most of the height to the grid: a strip of summary, a few lines of detail
        strip, detail = min(140, height // 4), min(90, height // 6)
        self.splitter.setSizes([strip, height - strip - detail, detail])
        self._sized = True

    # -- the shown run ---------------------------------------------------------------

    def display(self, run: EvalRun | None, test_set: TestSet | None, live: bool = False) -> None:
        """Show `run` (None = nothing); `test_set` None = its rows are unknown; `live`
        while it is still running."""
        self._shown = (run, test_set) if run is not None else None
        self._live = live
        self.grid_model.set_run(run, test_set)
        self.summary_model.set_run(run)
        self.grid_view.arrange()
        self.summary_view.resizeColumnsToContents()
        self.detail.clear()
        self._update_headline()

    def add_results(self, run: EvalRun, new: list[tuple[int, CaseResult]]) -> None:
        """Live results of the shown run (already in its `results` and `summaries`)."""
        self.grid_model.add_results(new)
        self.summary_model.set_run(run)
        self._update_headline()
        current = self.grid_view.currentIndex()
        if current.isValid():
            self._show_case(current)

    def show_failures_only(self, on: bool) -> None:
        """Filter the grid to the cases some variant failed (the checkbox's state)."""
        self.failures_only.setChecked(on)

    def _failures_only_toggled(self, on: bool) -> None:
        self.grid_proxy.set_failures_only(on)
        self._update_shown_count()

    def _update_shown_count(self) -> None:
        total = self.grid_model.rowCount()
        shown = self.grid_proxy.rowCount()
        if self._shown is None:
            self.shown_count.setText("")
        elif shown == total:
            self.shown_count.setText(count(total, "case"))
        else:
            self.shown_count.setText(f"{shown:,} of {count(total, 'case')} shown")
        self.failures_only.setEnabled(self._shown is not None)

    def _update_headline(self) -> None:
        run = self.shown_run()
        self.caption.setText(run_caption(run, running=self._live) if run is not None else "")
        self.headline.setText(headline(run) if run is not None and run.summaries else "")
        self.caption.setVisible(run is not None)
        self.headline.setVisible(bool(self.headline.text()))
        self._update_shown_count()

    def _show_case(self, index: QModelIndex) -> None:
        """The clicked case in full in the detail pane (every variant's answer)."""
        run = self.shown_run()
        row = self.grid_view.source_row(index)
        if run is None or row < 0:
            return
        column = self.grid_proxy.mapToSource(index).column()
        columns = self.grid_model.variant_columns()
        picked = columns.index(column) if column in columns else None
        html = case_detail_html(
            run,
            self.grid_model.case_rows()[row] + 1,
            self.grid_model.case_at(row),
            self.grid_model.results_of(row),
            picked,
        )
        self.detail.setHtml(html)

    def shown_run(self) -> EvalRun | None:
        return self._shown[0] if self._shown else None

    def set_exportable(self, idle: bool) -> None:
        """Export only while no evaluation runs, and only a shown run."""
        exportable = idle and self._shown is not None
        self.export_csv_button.setEnabled(exportable)
        self.export_json_button.setEnabled(exportable)

    # -- the history -----------------------------------------------------------------

    def set_history(self, runs: list[EvalRun]) -> None:
        self.history_model.set_items(runs)

    def add_to_history(self, run: EvalRun) -> None:
        self.history_model.add(run)

    def clear_history_pick(self) -> None:
        self.history.setCurrentIndex(QModelIndex())

    def _history_row_picked(self, row: int) -> None:
        run = self.history_model.at(row)
        if run is not None:
            self.run_requested.emit(run)

    # -- export ------------------------------------------------------------------------

    def export_csv(self, path: str | Path) -> None:
        """Write the shown run as CSV (one line per case and variant), atomically."""
        run, test_set = self._exportable()
        write_run_csv(path, run, test_set)

    def export_json(self, path: str | Path) -> None:
        """Write the shown run as JSON, atomically."""
        run, _ = self._exportable()
        write_run_json(path, run)

    def _exportable(self) -> tuple[EvalRun, TestSet | None]:
        if self._shown is None:
            raise ValueError("no evaluation is shown to export")
        return self._shown

    def _export_dialog(self, kind: ExportKind) -> None:
        run = self.shown_run()
        path = ask_export_path(self, run, kind) if run is not None else None
        if path is None:
            return
        try:
            self.export_csv(path) if kind == "csv" else self.export_json(path)
        except (OSError, ValueError) as exc:
            log.warning("could not export to %s: %s", path, exc)
            self.message.emit(f"Could not export: {exc}", True)
            return
        self.message.emit(f"Exported to {path}", False)
