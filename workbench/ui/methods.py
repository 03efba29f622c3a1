"""The Methods tab: the method table of the selected prompt (core `flows/methods.py`) —
every method on the held-out split with its interval and costs, the computed verdict
above it, a Train button in each row not trained yet and Train all, Compare and Stop as
one background job, Export… to CSV/JSON/Markdown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import BackendError
from workbench.core.flows.methods import (
    COLUMNS,
    MethodsError,
    MethodsFinished,
    MethodsPlan,
    MethodTable,
    TrainingDone,
    TrainingStarted,
    cell,
    current_table,
    export_table,
    held_out_test_set,
    pending_table,
    plan_methods,
    run_methods,
    train_methods,
)
from workbench.core.library import Library
from workbench.core.models import Prompt
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.session import ModelSession, PromptSelection, describe_error

log = logging.getLogger(__name__)
_Index = QModelIndex | QPersistentModelIndex

# the table's columns: the core's; the status column (it holds the Train buttons) is
# shown second
HEADERS = {
    "method": "method",
    "accuracy": "held-out\naccuracy",
    "interval": "95 %\ninterval",
    "macro_f1": "macro-F1",
    "trainable_parameters": "trainable\nparameters",
    "train_s": "training\ntime",
    "peak_memory_mb": "peak training\nmemory",
    "size_bytes": "size on\ndisk",
    "context_tokens": "context tokens\nper call",
    "latency_s": "latency\nper call",
    "llama_cpp": "runs on\nllama.cpp",
    "status": "",
}
EMPTY_NO_PROMPT = "Select a prompt to compare its methods."


class MethodsModel(QAbstractTableModel):
    """The rows of a `MethodTable` (methods × the core's columns)."""

    KEYS = tuple(key for key, _ in COLUMNS)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.table: MethodTable | None = None

    def set_table(self, table: MethodTable | None) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or self.table is None else len(self.table.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.KEYS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.table is None or not index.isValid():
            return None
        row = self.table.rows[index.row()]
        key = self.KEYS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "status" and row.trainable:
                return ""  # the Train button sits there
            return cell(row, key)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "method":
                return row.error or row.detail
            if key == "status":
                return row.error or row.status
            return None
        if role == Qt.ItemDataRole.FontRole and row.best and key in ("method", "accuracy"):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and key not in ("method", "status"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[self.KEYS[section]]
        return None


class MethodsPanel(QWidget):
    """The Methods tab (see the module docstring)."""

    message = Signal(str)  # for the status bar
    run_saved = Signal(object)  # an EvalRun the comparison saved

    def __init__(
        self,
        library: Library,
        jobs: JobRunner,
        session: ModelSession,
        selection: PromptSelection,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.jobs = jobs
        self.session = session
        self.selection = selection
        self.plan: MethodsPlan | None = None
        self.table: MethodTable | None = None
        self.job: Job | None = None
        self._training = "soft"  # the method the running job trains (for its failure)
        self._stale = True  # refreshed when shown: building the window reads nothing

        self.verdict = QLabel()
        self.verdict.setObjectName("methodsVerdict")
        self.verdict.setWordWrap(True)
        self.empty = QLabel()
        self.empty.setObjectName("methodsEmpty")
        self.empty.setWordWrap(True)
        self.model = MethodsModel(self)
        self.view = QTableView()
        self.view.setObjectName("methodsTable")
        self.view.setModel(self.model)
        self.view.verticalHeader().hide()
        self.view.setWordWrap(False)
        self.view.setSelectionMode(QTableView.SelectionMode.NoSelection)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        # the status (and its Train button) beside the method's name: in view at any width
        header.moveSection(MethodsModel.KEYS.index("status"), 1)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("methodsCompare")
        self.compare_button.setToolTip(
            "Score every available method on the held-out test split (saved as an evaluation)"
        )
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("methodsStop")
        self.stop_button.setEnabled(False)
        self.train_all = QPushButton("Train all")
        self.train_all.setObjectName("methodsTrainAll")
        self.train_all.setToolTip(
            "Train every missing method in turn with the Graduate tab's default settings"
        )
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("methodsExport")
        self.progress = QProgressBar()
        self.progress.setObjectName("methodsProgress")
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("methodsStatus")
        self.status.setWordWrap(True)
        self.train_buttons: dict[str, QPushButton] = {}

        buttons = QHBoxLayout()
        for button in (self.compare_button, self.stop_button, self.train_all, self.export_button):
            buttons.addWidget(button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.verdict)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.compare_button.clicked.connect(self.compare)
        self.stop_button.clicked.connect(self.stop)
        self.train_all.clicked.connect(lambda: self.train(None))
        self.export_button.clicked.connect(self._ask_export)
        selection.selected.connect(self._changed)
        selection.edited.connect(self._changed)
        self._show_state()

    # -- state -----------------------------------------------------------------------

    def _changed(self, _prompt: Prompt | None = None) -> None:
        self._stale = True
        if self.isVisible() and self.job is None:
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale and self.job is None:
            self.refresh()

    def refresh(self) -> None:
        """Plan for the selected prompt and show its newest table (or what is pending)."""
        self._stale = False
        prompt = self.selection.prompt
        self.plan, self.table = None, None
        problem = EMPTY_NO_PROMPT
        if prompt is not None:
            try:
                test_set = held_out_test_set(self.library, prompt)
                self.plan = plan_methods(self.library, prompt, test_set)
            except (MethodsError, LookupError, ValueError) as exc:
                problem = describe_error(exc)
            else:
                saved = current_table(self.library, self.plan)
                self.table = saved if saved is not None else pending_table(self.library, self.plan)
        self.empty.setText("" if self.plan is not None else problem)
        self._show_state()

    def _show_state(self) -> None:
        table = self.table
        self.model.set_table(table)
        self.empty.setVisible(self.plan is None)
        self.verdict.setText(table.verdict if table is not None else "")
        self.verdict.setVisible(table is not None)
        self._place_train_buttons()
        running = self.job is not None
        runnable = self.plan is not None and bool(self.plan.runnable)
        self.compare_button.setEnabled(not running and runnable)
        self.stop_button.setEnabled(running)
        missing = self.plan.missing if self.plan is not None else []
        self.train_all.setEnabled(not running and bool(missing))
        self.export_button.setEnabled(
            not running and table is not None and table.run_id is not None
        )

    def _place_train_buttons(self) -> None:
        self.train_buttons = {}
        if self.table is None:
            return
        column = MethodsModel.KEYS.index("status")
        for row, method in enumerate(self.table.rows):
            if not method.trainable:
                continue
            button = QPushButton("Train")
            button.setObjectName(f"methodsTrain_{method.key}")
            button.setToolTip(f"Train the {method.label} with the Graduate tab's defaults")
            button.setEnabled(self.job is None)
            button.clicked.connect(lambda _checked=False, key=method.key: self.train([key]))
            self.view.setIndexWidget(self.model.index(row, column), button)
            self.train_buttons[method.key] = button

    # -- jobs ------------------------------------------------------------------------

    def compare(self) -> None:
        if self.job is not None or self.plan is None:
            return
        plan = self.plan
        try:
            pool = self.session.pool()
            pool.check([m.spec for m in plan.runnable if m.spec is not None])
        except (BackendError, LookupError, ValueError, OSError) as exc:  # still loading, say
            self.status.setText(describe_error(exc))
            return
        library = self.library

        def work(cancel: Any) -> Any:
            try:
                yield from run_methods(library, plan, pool, cancel)
            finally:
                pool.close()

        self.progress.setRange(0, len(plan.runnable) * len(plan.rows))
        self.progress.setValue(0)
        self.status.setText(plan.describe() + "…")
        self._start("compare methods", work)

    def train(self, keys: list[str] | None) -> None:
        """Train the missing methods `keys` (None: every missing one), one after another."""
        if self.job is not None or self.plan is None or not self.plan.missing:
            return
        plan = self.plan
        spec, _backend = self.session.selected_model()
        settings = self.session.settings
        library = self.library

        def work(cancel: Any) -> Any:
            return train_methods(library, plan, spec, keys, cancel, settings)

        self.progress.setRange(0, 0)
        self.status.setText("Training…")
        self._start("train methods", work)

    def _start(self, name: str, work: Any) -> None:
        self._training = "soft"
        self.progress.show()
        self.job = self.jobs.run(
            name,
            work,
            on_events=self._on_events,
            on_done=lambda _last: self._ended(),
            on_error=self._failed,
            on_cancelled=self._ended,
        )
        self._show_state()

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.status.setText("Stopping…")

    def _on_events(self, events: list[Any]) -> None:
        from workbench.core.evaluation import Progress
        from workbench.core.flows.report import format_progress, format_step
        from workbench.core.tuning import StepEvent

        for event in events:
            if isinstance(event, Progress):
                self.progress.setRange(0, event.total)
                self.progress.setValue(event.done)
                self.status.setText(format_progress(event.done, event.total, event.eta_s))
            elif isinstance(event, MethodsFinished):
                if event.run.variants:
                    self.library.save_eval_run(event.run)
                    self.run_saved.emit(event.run)
                self.table = event.table
                self.model.set_table(event.table)
                self.verdict.setText(event.table.verdict)
            elif isinstance(event, TrainingStarted):
                self._training = event.key  # a failure is told in this method's terms
                self.status.setText(f"Training the {event.label}…")
            elif isinstance(event, TrainingDone):
                if event.item is not None:
                    self.message.emit(f"Trained {event.item.name}")
            elif isinstance(event, StepEvent):
                self.progress.setRange(0, event.total_steps)
                self.progress.setValue(event.step)
                self.status.setText(format_step(event))

    def _failed(self, exc: BaseException, trace: str) -> None:
        from workbench.core.graduation import describe_training_error

        log.error("the Methods job failed: %s", exc)
        self.job = None
        self.progress.hide()
        self.refresh()
        self.status.setText(f"Failed: {describe_training_error(exc, self._training)}")

    def _ended(self) -> None:
        stopped = self.job is not None and self.job.cancel.is_set()
        self.job = None
        self.progress.hide()
        self.refresh()  # what was trained or compared, read back from the library
        self.status.setText("Stopped." if stopped else "Done.")

    # -- export ----------------------------------------------------------------------

    def export_to(self, path: str | Path) -> Path | None:
        """Write the shown table (.csv, .json or .md); a failure is said, nothing written."""
        if self.table is None:
            return None
        try:
            written = export_table(self.table, path)
        except (MethodsError, OSError) as exc:
            self.status.setText(f"Could not export: {describe_error(exc)}")
            return None
        self.status.setText(f"Exported the table to {written}")
        return written

    def _ask_export(self) -> None:
        if self.table is None:
            return
        name = f"{self.table.prompt_name}-methods.csv".replace("/", "-")
        path, pattern = QFileDialog.getSaveFileName(
            self, "Export the method table", name, "CSV (*.csv);;JSON (*.json);;Markdown (*.md)"
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".json" if "json" in pattern else (".md" if "md" in pattern else ".csv")
        self.export_to(path)
