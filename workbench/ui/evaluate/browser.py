"""What the panel shows of evaluations: one run (its settings and headline, its analysis
beside the prompt's earlier runs, the results grid with a failures-only filter and a
confusion-cell filter, and the clicked case in full with its rating), and the export of
the shown run as CSV, JSON or a report with pictures.

The analysis (`core.analysis.analyse`: intervals, paired tests, per-label metrics,
groups, rated satisfaction) is computed from the shown run and its test set whenever a
finished run is shown, so an old run gains it when opened; the grid's header marks the
best variant and those not distinguishable from it. A rating (keys, the grid's context
menu or the rating bar) changes the run, which is saved at once through the `save`
callable the panel gives (`Library.save_eval_run`); the analysis follows.

The grid gets the spare height; the analysis strip above it and the case detail below
it sit in one vertical splitter, so each can be dragged larger or closed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.report import count
from workbench.core.library import LibraryError
from workbench.core.models import CaseResult, EvalRun, TestSet
from workbench.ui.evaluate.analysis_view import NO_ANALYSIS, SHORTEST, AnalysisView, header_mark
from workbench.ui.evaluate.detail import DETAIL_HINT, case_detail_html, headline, run_caption
from workbench.ui.evaluate.grid import FailuresOnlyProxy, ResultsGridView
from workbench.ui.evaluate.history import (
    EvalRunListModel,
    ExportKind,
    ask_export_path,
    write_run_csv,
    write_run_json,
)
from workbench.ui.evaluate.ratings import (
    NOTE,
    RATING_HELP,
    RatingBar,
    RatingKeys,
    ask_note,
    rated,
    rating_actions,
    rating_text,
)
from workbench.ui.evaluate.results import ResultsGridModel, SummaryModel
from workbench.ui.widgets import named, titled_column, wrapping_list

if TYPE_CHECKING:  # numpy comes with the analysis: loaded when a run is first analysed
    from workbench.core.analysis import Analysis

log = logging.getLogger(__name__)

SaveRun = Callable[[EvalRun], EvalRun]
"""Stores a changed run and returns it as stored (`Library.save_eval_run`)."""

NO_TEST_SET = (
    "The test set of this run is no longer in the library: intervals, per-label metrics "
    "and groups need its rows."
)
PICTURE_HEIGHT = 300  # px: what the strip grows to when a chart's tab is picked
REPORT_PATTERNS = "Markdown with SVG pictures (*.md);;One HTML page (*.html)"


class ResultsBrowser(QWidget):
    """The shown run and the history; a history pick asks the panel to show that run."""

    run_requested = Signal(object)  # an EvalRun picked in the history
    message = Signal(str, bool)  # a line for the panel's message (text, is an error)
    run_saved = Signal(object)  # the shown EvalRun as stored again after a rating

    def __init__(self, parent: QWidget | None = None, save: SaveRun | None = None) -> None:
        super().__init__(parent)
        self._shown: tuple[EvalRun, TestSet | None] | None = None
        self._save = save  # None: ratings stay in memory (nothing to store them in)
        self._analysis: Analysis | None = None
        self._prompt_name: str | None = None
        self._idle = True
        self.summary_model = SummaryModel(self)
        self.summary_view = named(QTableView(), "evalSummary")
        self.summary_view.setModel(self.summary_model)
        self.summary_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.summary_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.summary_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.summary_view.setMinimumHeight(SHORTEST)
        self.analysis_view = AnalysisView(self.summary_view)  # the table is its Metrics tab
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
        self.cell_filter_line = named(QLabel(), "evalCellFilter")
        self.clear_filter_button = named(QPushButton("Clear"), "evalCellFilterClear")
        self.clear_filter_button.setToolTip("Show every case again")
        self.export_report_button = named(QPushButton("Export report…"), "evalExportReport")
        self.export_report_button.setToolTip(
            "Write the analysis as Markdown (pictures beside it as SVG) or as one HTML page"
        )
        self.rating_bar = RatingBar()
        self.rating_keys = RatingKeys(self)
        self.grid_view.installEventFilter(self.rating_keys)
        self.grid_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid_view.setStatusTip(RATING_HELP)
        self.detail = named(QTextBrowser(), "evalDetail")
        self.detail.setOpenLinks(False)
        self.detail.setPlaceholderText(DETAIL_HINT)
        self.detail.setMinimumHeight(SHORTEST)
        self.history_model = EvalRunListModel(self)
        self.history = named(wrapping_list(QListView()), "evalHistory")
        self.history.setModel(self.history_model)
        self.export_csv_button = named(QPushButton("Export CSV…"), "evalExportCsv")
        self.export_json_button = named(QPushButton("Export JSON…"), "evalExportJson")
        history_box = titled_column("Earlier evaluations", (self.history, 1))
        self.strip = QSplitter(Qt.Orientation.Horizontal)  # the analysis beside the history
        self.strip.addWidget(self.analysis_view)
        self.strip.addWidget(history_box)
        self.strip.setStretchFactor(0, 3)
        self.strip.setStretchFactor(1, 1)
        grid_box = QWidget()
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()  # the grid's filter, then the exports of the shown run
        filter_row.addWidget(self.failures_only)
        filter_row.addWidget(self.shown_count)
        filter_row.addStretch(1)
        for export in (self.export_csv_button, self.export_json_button, self.export_report_button):
            filter_row.addWidget(export)
        cell_row = QHBoxLayout()  # only while a confusion cell filters the grid
        cell_row.addWidget(self.cell_filter_line)
        cell_row.addWidget(self.clear_filter_button)
        cell_row.addStretch(1)
        grid_layout.addLayout(filter_row)
        grid_layout.addLayout(cell_row)
        grid_layout.addWidget(self.grid_view, 1)
        detail_box = QWidget()
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.setSpacing(2)
        detail_layout.addWidget(self.rating_bar)
        detail_layout.addWidget(self.detail, 1)
        self.splitter = named(QSplitter(Qt.Orientation.Vertical), "evalResultsSplitter")
        self.splitter.addWidget(self.strip)
        self.splitter.addWidget(grid_box)
        self.splitter.addWidget(detail_box)
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
        self.export_report_button.clicked.connect(self._export_report_dialog)
        self.analysis_view.cell_filter.connect(self.filter_cell)
        self.analysis_view.currentChanged.connect(lambda _i: self._room_for_pictures())
        self.analysis_view.message.connect(self.message)
        self.clear_filter_button.clicked.connect(self.clear_cell_filter)
        self.rating_keys.action.connect(self.rate)
        self.rating_bar.action.connect(self.rate)
        self.grid_view.customContextMenuRequested.connect(self._grid_menu)
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
        # most of the height to the grid: a strip of analysis, a few lines of detail
        strip, detail = min(200, height // 4), min(120, height // 6)
        self.splitter.setSizes([strip, height - strip - detail, detail])
        width = self.strip.width()
        history = max(140, width // 5)  # the analysis's tabs get the most of the width
        self.strip.setSizes([width - history, history])
        self._sized = True

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._sized:
            QTimer.singleShot(0, self._keep_the_grid_first)  # once the splitter has its size

    def _keep_the_grid_first(self) -> None:
        """A smaller window takes its height from the grid alone (the strip and detail do
        not stretch): give the grid back at least half, from the strip and detail."""
        strip, grid, detail = self.splitter.sizes()
        height = strip + grid + detail
        if height < 200 or grid >= height // 2:
            return
        strip, detail = min(strip, max(110, height // 4)), min(detail, max(70, height // 6))
        self.splitter.setSizes([strip, height - strip - detail, detail])

    def _room_for_pictures(self) -> None:
        """A picture tab picked in a short strip: the strip grows to show the chart (the
        grid keeps at least half of the height; the splitter can be dragged back)."""
        if self.analysis_view.currentIndex() < 3:  # Summary, Metrics, Per label read short
            return
        strip, grid, detail = self.splitter.sizes()
        wanted = min(PICTURE_HEIGHT, (strip + grid) // 2)
        if strip < wanted:
            self.splitter.setSizes([wanted, grid - (wanted - strip), detail])

    # -- the shown run ---------------------------------------------------------------

    def display(
        self,
        run: EvalRun | None,
        test_set: TestSet | None,
        live: bool = False,
        prompt_name: str | None = None,
    ) -> None:
        """Show `run` (None = nothing); `test_set` None = its rows are unknown; `live`
        while it is still running (analysed once it is shown ended); `prompt_name` for
        the report's title."""
        self._shown = (run, test_set) if run is not None else None
        self._live = live
        self._prompt_name = prompt_name
        self.grid_proxy.set_cell_filter(None, [])
        self.grid_model.set_run(run, test_set)
        self.summary_model.set_run(run)
        self._analyse()
        self.grid_view.arrange()
        self.summary_view.resizeColumnsToContents()
        self.detail.clear()
        self.rating_bar.show_rating(None, None)
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
        cell = self.grid_proxy.cell_filter
        run = self.shown_run()
        if cell is not None and run is not None and 0 <= cell[0] < len(run.variants):
            variant, expected, chosen = cell
            self.cell_filter_line.setText(
                f"Showing {count(shown, 'case')}: expected {expected}, "
                f"{run.variants[variant].name} chose {chosen} —"
            )
        self.cell_filter_line.setVisible(cell is not None)
        self.clear_filter_button.setVisible(cell is not None)

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
            self.rating_bar.show_rating(None, None)
            return
        column = self.grid_proxy.mapToSource(index).column()
        columns = self.grid_model.variant_columns()
        picked = columns.index(column) if column in columns else None
        target = self._rating_target(index)
        if target is not None:
            variant, result = target
            self.rating_bar.show_rating(run.variants[variant].name, result.rating)
        else:
            self.rating_bar.show_rating(None, None)
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
        """Export only while no evaluation runs, and only a shown run (a report only of
        one that could be analysed)."""
        self._idle = idle
        exportable = idle and self._shown is not None
        self.export_csv_button.setEnabled(exportable)
        self.export_json_button.setEnabled(exportable)
        self.export_report_button.setEnabled(exportable and self._analysis is not None)

    # -- the analysis ------------------------------------------------------------------

    @property
    def analysis(self) -> Analysis | None:
        """The shown run's analysis (None while it runs or without its test set)."""
        return self._analysis

    def _analyse(self) -> None:
        """Analyse the shown run (when it has ended and its test set is known), show it
        in the tabs and mark the best variant in the grid's header."""
        run, test_set = self._shown if self._shown else (None, None)
        analysis: Analysis | None = None
        hint = NO_ANALYSIS
        if run is not None and not self._live and any(run.results):
            if test_set is None:
                hint = NO_TEST_SET
            else:
                from workbench.core.analysis import analyse

                try:
                    analysis = analyse(run, test_set)
                except (IndexError, KeyError, ValueError, ArithmeticError) as exc:
                    log.warning("could not analyse evaluation %s: %s", run.id, exc)
                    hint = (
                        "This run cannot be analysed: its test set has changed since it ran "
                        f"({exc})."
                    )
        self._analysis = analysis
        self.analysis_view.summary.setPlaceholderText(hint)
        self.analysis_view.set_analysis(analysis)
        names = [v.name for v in run.variants] if run is not None else []
        self.grid_model.set_marks([header_mark(analysis, name) for name in names])
        self.set_exportable(self._idle)

    # -- the confusion-cell filter -------------------------------------------------------

    def filter_cell(self, variant: int, expected: str, chosen: str) -> None:
        """Only the cases where `variant` chose `chosen` for an `expected` label (a click
        on the confusion heat map); Clear shows every case again."""
        test_set = self._shown[1] if self._shown else None
        if test_set is None or not test_set.labels:
            return
        self.grid_proxy.set_cell_filter((variant, expected, chosen), list(test_set.labels))
        self._update_shown_count()

    def clear_cell_filter(self) -> None:
        self.grid_proxy.set_cell_filter(None, [])
        self._update_shown_count()

    # -- ratings -------------------------------------------------------------------------

    def _rating_target(self, index: QModelIndex | None = None) -> tuple[int, CaseResult] | None:
        """The variant and result of a grid cell (the current one by default) that can
        be rated: a variant's output in a run that has ended."""
        run = self.shown_run()
        index = self.grid_view.currentIndex() if index is None else index
        if run is None or self._live or not index.isValid():
            return None
        row = self.grid_view.source_row(index)
        column = self.grid_proxy.mapToSource(index).column()
        columns = self.grid_model.variant_columns()
        if row < 0 or column not in columns:
            return None
        variant = columns.index(column)
        results = self.grid_model.results_of(row)
        result = results[variant] if variant < len(results) else None
        return (variant, result) if result is not None else None

    def rate(self, action: str) -> None:
        """Apply a rating action (see `ratings.KEYS`) to the current output and save the
        run; on a failed save the run stays as it was and the message says why."""
        target = self._rating_target()
        if target is None or self._shown is None:
            if self._live:
                self.message.emit("Outputs can be rated once the run has ended.", True)
            else:
                self.message.emit("Pick a variant's output in the grid to rate it.", True)
            return
        variant, result = target
        run, test_set = self._shown
        note = None
        if action == NOTE:
            note = ask_note(self, result.rating.note if result.rating else "")
            if note is None:
                return
        from workbench.core.analysis import set_rating

        try:
            rating = rated(result.rating, action, note)
            changed = set_rating(run, variant, result.row, rating)
        except (KeyError, ValueError) as exc:
            self.message.emit(f"Could not rate this output: {exc}", True)
            return
        if self._save is not None:
            try:
                changed = self._save(changed)
            except (LibraryError, OSError, ValueError) as exc:
                log.warning("could not save the rating of evaluation %s: %s", run.id, exc)
                self.message.emit(
                    f"Could not save the rating: {exc}. The evaluation is unchanged.", True
                )
                self._show_case(self.grid_view.currentIndex())  # the bar as it was
                return
        self._shown = (changed, test_set)
        new = next(r for r in changed.results[variant] if r.row == result.row)
        self.grid_model.replace_result(changed, variant, new)
        if self.history_model.row_of(changed.id) >= 0:
            self.history_model.add(changed)  # a later pick shows it with the rating
        self._analyse()
        self._show_case(self.grid_view.currentIndex())
        case = self.grid_model.case_rows().index(result.row) + 1
        self.message.emit(
            f"{changed.variants[variant].name}, case {case}: {rating_text(rating)}"
            + (" (saved)" if self._save is not None else ""),
            False,
        )
        self.run_saved.emit(changed)

    def rating_menu(self) -> QMenu | None:
        """The context menu of the current cell: its rating actions (None when it is
        not an output that can be rated)."""
        if self._rating_target() is None:
            return None
        menu = QMenu(self)
        rating_actions(menu, menu, self.rate)
        return menu

    def _grid_menu(self, pos: QPoint) -> None:
        index = self.grid_view.indexAt(pos)
        if not index.isValid():
            return
        self.grid_view.setCurrentIndex(index)
        menu = self.rating_menu()
        if menu is not None:
            menu.exec(self.grid_view.viewport().mapToGlobal(pos))
            menu.deleteLater()

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

    def export_report(self, path: str | Path) -> list[Path]:
        """Write the shown run's report (.md with SVG pictures beside it, or one .html
        page) with the analysis shown and the allowed group gap set; the files written."""
        run, test_set = self._exportable()
        if test_set is None or self._analysis is None:
            raise ValueError("a report needs the run's test set, which is no longer in the library")
        from workbench.core.report_export import write_report

        return write_report(
            path,
            run,
            test_set,
            self._analysis,
            max_group_gap=self.analysis_view.max_group_gap,
            prompt_name=self._prompt_name,
        )

    def _export_report_dialog(self) -> None:
        run = self.shown_run()
        if run is None:
            return
        name = f"{run.test_set_name or 'evaluation'}-{run.id}-report.md"
        path, pattern = QFileDialog.getSaveFileName(
            self, "Export the report", name, REPORT_PATTERNS
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".html" if "html" in pattern else ".md"
        try:
            files = self.export_report(path)
        except (OSError, ValueError) as exc:  # ReportError is a ValueError
            log.warning("could not write the report %s: %s", path, exc)
            self.message.emit(f"Could not export the report: {exc}", True)
            return
        pictures = len(files) - 1
        beside = f" (and {count(pictures, 'picture')} beside it)" if pictures else ""
        self.message.emit(f"Exported the report to {path}{beside}", False)

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
