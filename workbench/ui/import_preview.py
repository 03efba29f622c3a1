"""The import preview: what a file will add, what clashes with the library and how each
clash is resolved; Import writes the plan on the worker (one transaction, with Stop)."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core import exchange
from workbench.core.exchange import ImportPlan, ImportResult, Resolution
from workbench.core.exchange.plan import CLASH_POLICIES
from workbench.core.fsutil import Cancelled
from workbench.core.library import LibraryError
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.progress import JobProgress
from workbench.ui.widgets import ERROR_STYLE

log = logging.getLogger(__name__)

_Index = QModelIndex | QPersistentModelIndex

RESOLUTION_LABELS = {
    Resolution.ADD: "Add",
    Resolution.COPY: "Add as a copy",
    Resolution.REPLACE: "Replace (new version)",
    Resolution.SKIP: "Skip",
    Resolution.UNCHANGED: "Unchanged",
}


class ImportPlanModel(QAbstractTableModel):
    """The plan's items; the Action column of a clash is editable (its choices)."""

    HEADERS = ("What", "Name", "Action", "Why")

    def __init__(self, plan: ImportPlan) -> None:
        super().__init__()
        self.plan = plan

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.plan.items)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 2 and self.plan.items[index.row()].choices:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.plan.items[index.row()]
        effective = self.plan.effective(index.row())
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                return item.kind
            if column == 1:
                return item.name
            if column == 2:
                label = RESOLUTION_LABELS[effective]
                if effective is not item.resolution:
                    return f"{label} (follows its prompt)"
                return label + (" ▾" if item.choices and role == 0 else "")
            return item.clash
        if role == Qt.ItemDataRole.EditRole and column == 2:
            return item.resolution.value
        if role == Qt.ItemDataRole.ForegroundRole and column == 2:
            if effective is Resolution.SKIP:
                return QBrush(QColor("#888888"))
            if item.choices:
                return QBrush(QColor("#a15c00"))
        return None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if index.column() != 2 or role != Qt.ItemDataRole.EditRole:
            return False
        try:
            self.plan.resolve(index.row(), Resolution(value))
        except ValueError:
            return False
        # children follow their prompt: repaint the whole Action column
        self.dataChanged.emit(self.index(0, 2), self.index(self.rowCount() - 1, 2))
        return True

    def resolve_all(self, resolution: Resolution) -> None:
        self.plan.resolve_all(resolution)
        self.dataChanged.emit(self.index(0, 2), self.index(self.rowCount() - 1, 2))


class _ResolutionDelegate(QStyledItemDelegate):
    """A combo box of the clash's choices."""

    def __init__(self, model: ImportPlanModel, parent: QWidget) -> None:
        super().__init__(parent)
        self._model = model

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: _Index) -> QWidget:
        combo = QComboBox(parent)
        for choice in self._model.plan.items[index.row()].choices:
            combo.addItem(RESOLUTION_LABELS[choice], choice.value)
        combo.activated.connect(lambda _=0: self.commitData.emit(combo))
        return combo

    def setEditorData(self, editor: QWidget, index: _Index) -> None:
        assert isinstance(editor, QComboBox)
        editor.setCurrentIndex(max(editor.findData(index.data(Qt.ItemDataRole.EditRole)), 0))

    def setModelData(self, editor: QWidget, model: Any, index: _Index) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


class ImportPreviewDialog(QDialog):
    """Shows an import plan before anything is written; Import applies it."""

    imported = Signal(object)  # ImportResult

    def __init__(
        self,
        plan: ImportPlan,
        format_name: str,
        jobs: JobRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("importPreview")
        self.setWindowTitle("Import preview")
        self.plan = plan
        self.jobs = jobs
        self.job: Job | None = None  # the import being written
        self.import_result: ImportResult | None = None
        self.error: str | None = None
        module = exchange.format_module(format_name)
        layout = QVBoxLayout(self)
        counts: dict[str, int] = {}
        for item in plan.items:
            counts[item.kind] = counts.get(item.kind, 0) + 1
        found = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items())
        header = QLabel(
            f"<b>{Path(plan.source).name}</b> ({module.LABEL}) holds {found or 'nothing'}. "
            "Nothing is written until you press <b>Import</b>."
        )
        header.setWordWrap(True)
        layout.addWidget(header)

        self.model = ImportPlanModel(plan)
        self.table = QTableView()
        self.table.setObjectName("importPlan")
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(2, _ResolutionDelegate(self.model, self.table))
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.CurrentChanged
            | QAbstractItemView.EditTrigger.SelectedClicked
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table, 1)

        clashes = len(plan.clashes())
        row = QHBoxLayout()
        self.clash_label = QLabel(
            f"{clashes} clash{'es' if clashes != 1 else ''} with the library; for all of them:"
            if clashes
            else "No clashes with the library."
        )
        row.addWidget(self.clash_label)
        self.all_clashes = QComboBox()
        self.all_clashes.setObjectName("importAllClashes")
        for choice in CLASH_POLICIES:
            self.all_clashes.addItem(RESOLUTION_LABELS[choice], choice.value)
        self.all_clashes.setEnabled(bool(clashes))
        self.all_clashes.activated.connect(
            lambda _=0: self.model.resolve_all(Resolution(self.all_clashes.currentData()))
        )
        row.addWidget(self.all_clashes)
        row.addStretch(1)
        layout.addLayout(row)

        if plan.notes:
            notes = QLabel(
                "Not carried over from this format:<ul>"
                + "".join(f"<li>{n}</li>" for n in plan.notes)
                + "</ul>"
            )
            notes.setObjectName("importNotes")
            notes.setWordWrap(True)
            layout.addWidget(notes)

        risky = plan.template_problems  # found from the templates' literals, nothing rendered
        if risky:
            warning = QLabel(
                "These templates would exceed the render limits and will refuse to render "
                "until fixed (they import as they are):<ul>"
                + "".join(f"<li>{html.escape(p)}</li>" for p in risky)
                + "</ul>"
            )
            warning.setObjectName("importTemplateProblems")
            warning.setWordWrap(True)
            warning.setStyleSheet(ERROR_STYLE)
            layout.addWidget(warning)

        self.message = QLabel()
        self.message.setObjectName("importMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        layout.addWidget(self.message)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setObjectName("importApply")
        self.import_button.setDefault(True)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 420)

    def apply(self) -> Job | None:
        """Write the plan on the worker (one transaction, with Stop); on failure or Stop
        nothing is written and the dialog stays open with the reason."""
        if self.job is not None:
            return None
        self.import_button.setEnabled(False)
        self.message.clear()
        progress = JobProgress("Importing…", self)
        plan = self.plan

        def done(result: ImportResult) -> None:
            self._ended(progress)
            self.import_result = result
            self.imported.emit(result)
            self.accept()

        def failed(exc: BaseException, trace: str) -> None:
            self._ended(progress)
            if not isinstance(exc, OSError | ValueError | LibraryError | Cancelled):
                self.jobs.job_failed.emit("import", exc, trace)  # a bug: the error dialog
                self.message.setText(f"Nothing was imported: {exc}")
                return
            self.error = str(exc)
            stopped = isinstance(exc, Cancelled)
            self.message.setText(str(exc) if stopped else f"Nothing was imported: {exc}")

        def cancelled() -> None:
            self._ended(progress)
            self.error = "the import was stopped; nothing was imported"
            self.message.setText(self.error)

        self.job = self.jobs.run(
            "import", lambda cancel: plan.apply(cancel), None, done, failed, cancelled
        )
        progress.follow(self.job)
        return self.job

    def _ended(self, progress: JobProgress) -> None:
        self.job = None
        progress.finish()
        self.import_button.setEnabled(True)

    def reject(self) -> None:
        if self.job is not None:  # Cancel while writing means Stop (it undoes itself)
            self.job.stop()
            return
        super().reject()
