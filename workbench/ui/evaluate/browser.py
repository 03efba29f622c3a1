"""What the panel shows of evaluations: one run (the summary above the results grid)
beside the prompt's earlier runs, and the export of the shown run as CSV or JSON."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QListView,
    QPushButton,
    QSplitter,
    QTableView,
    QWidget,
)

from workbench.core.models import CaseResult, EvalRun, TestSet
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
        self.grid_model = ResultsGridModel(self)
        self.grid_view = named(QTableView(), "evalGrid")
        self.grid_view.setModel(self.grid_model)
        self.grid_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.grid_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # fitting columns to contents looks at this many rows, not at all of a big run
        header.setResizeContentsPrecision(100)
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
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(self.summary_view)
        results.addWidget(self.grid_view)
        results.setStretchFactor(1, 3)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(results)
        lower.addWidget(history_box)
        lower.setStretchFactor(0, 3)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(lower)

        self.history.selectionModel().currentChanged.connect(
            lambda current, _previous: self._history_row_picked(current.row())
        )
        # a click on the current row shows it again (after a new run replaced it)
        self.history.clicked.connect(lambda index: self._history_row_picked(index.row()))
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))
        self.set_exportable(True)

    # -- the shown run ---------------------------------------------------------------

    def display(self, run: EvalRun | None, test_set: TestSet | None) -> None:
        """Show `run` (None = nothing); `test_set` None = its rows are unknown."""
        self._shown = (run, test_set) if run is not None else None
        self.grid_model.set_run(run, test_set)
        self.summary_model.set_run(run)
        self.grid_view.resizeColumnsToContents()

    def add_results(self, run: EvalRun, new: list[tuple[int, CaseResult]]) -> None:
        """Live results of the shown run (already in its `results` and `summaries`)."""
        self.grid_model.add_results(new)
        self.summary_model.set_run(run)

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
