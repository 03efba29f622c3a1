"""File → Import… and File → Export…: the import preview (what will be added, what clashes
and how each clash is resolved) and the export dialog (format, scope, what the format
does not carry). The work itself is `workbench.core.exchange`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QRadioButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core import exchange
from workbench.core.exchange import ExportReport, ImportPlan, ImportResult, Resolution
from workbench.core.exchange.plan import CLASH_POLICIES
from workbench.core.library import Library, LibraryError
from workbench.ui.widgets import ERROR_STYLE

_Index = QModelIndex | QPersistentModelIndex

RESOLUTION_LABELS = {
    Resolution.ADD: "Add",
    Resolution.COPY: "Add as a copy",
    Resolution.REPLACE: "Replace (new version)",
    Resolution.SKIP: "Skip",
    Resolution.UNCHANGED: "Unchanged",
}


@contextmanager
def busy_cursor() -> Iterator[None]:
    """A wait cursor while a file is read or written on the GUI thread (a big bundle takes
    a moment; ordinary files are instant)."""
    QApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


def file_filter(importing: bool) -> str:
    """The file dialog filter: every format, then each one."""
    names = [n for n in exchange.FORMATS if not importing or exchange.can_import(n)]
    patterns = []
    for name in names:
        module = exchange.format_module(name)
        patterns.append(f"{module.LABEL} ({' '.join('*' + e for e in module.EXTENSIONS)})")
    every = " ".join(sorted({"*" + e for n in names for e in exchange.format_module(n).EXTENSIONS}))
    return ";;".join([f"All supported files ({every})", *patterns])


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

    def __init__(self, plan: ImportPlan, format_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("importPreview")
        self.setWindowTitle("Import preview")
        self.plan = plan
        self.result: ImportResult | None = None
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

    def apply(self) -> None:
        """Write the plan (one transaction); on failure nothing is written and the dialog
        stays open with the reason."""
        try:
            with busy_cursor():
                self.result = self.plan.apply()
        except (OSError, ValueError, LibraryError) as exc:
            self.error = str(exc)
            self.message.setText(f"Nothing was imported: {exc}")
            return
        self.imported.emit(self.result)
        self.accept()


class ExportDialog(QDialog):
    """Choose a format and a scope; shows what the format does not carry."""

    exported = Signal(object)  # ExportReport

    def __init__(
        self,
        library: Library,
        prompt_id: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export")
        self.library = library
        self.prompt_id = prompt_id
        self.report: ExportReport | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.format = QComboBox()
        self.format.setObjectName("exportFormat")
        for name, module in exchange.FORMATS.items():
            self.format.addItem(module.LABEL, name)
        form.addRow("Format", self.format)
        scope = QWidget()
        scope_layout = QVBoxLayout(scope)
        scope_layout.setContentsMargins(0, 0, 0, 0)
        name = library.get_prompt(prompt_id).name if prompt_id else None
        self.only_selected = QRadioButton(
            f"The selected prompt: {name}" if name else "The selected prompt (none)"
        )
        self.only_selected.setObjectName("exportSelected")
        self.only_selected.setEnabled(name is not None)
        self.whole = QRadioButton(f"The whole library ({len(library.prompts)} prompts)")
        self.whole.setObjectName("exportWhole")
        group = QButtonGroup(self)
        group.addButton(self.only_selected)
        group.addButton(self.whole)
        (self.only_selected if name else self.whole).setChecked(True)
        scope_layout.addWidget(self.only_selected)
        scope_layout.addWidget(self.whole)
        form.addRow("Prompts", scope)
        layout.addLayout(form)
        self.losses = QLabel()
        self.losses.setObjectName("exportLosses")
        self.losses.setWordWrap(True)
        layout.addWidget(self.losses)
        self.message = QLabel()
        self.message.setObjectName("exportMessage")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export…", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setObjectName("exportChoose")
        buttons.accepted.connect(self._choose_target)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._show_losses)
        self.whole.toggled.connect(self._show_losses)
        self._show_losses()
        self.resize(560, 300)

    @property
    def format_name(self) -> str:
        return str(self.format.currentData())

    def selection(self) -> list[str] | None:
        if self.only_selected.isChecked() and self.prompt_id:
            return [self.prompt_id]
        return None

    def needs_folder(self) -> bool:
        module = exchange.format_module(self.format_name)
        count = 1 if self.selection() else len(self.library.prompts)
        return module.ONE_PROMPT_PER_FILE and count > 1

    def _show_losses(self) -> None:
        module = exchange.format_module(self.format_name)
        title = "Carries everything:" if module.LOSSLESS else "Not carried over:"
        where = " One file per prompt, in a folder you choose." if self.needs_folder() else ""
        self.losses.setText(
            f"{title}<ul>"
            + "".join(f"<li>{loss}</li>" for loss in module.EXPORT_LOSSES)
            + f"</ul>{where}"
        )

    def _choose_target(self) -> None:
        module = exchange.format_module(self.format_name)
        if self.needs_folder():
            target = QFileDialog.getExistingDirectory(self, "Export into folder")
        else:
            suggested = "library" if self.selection() is None else "prompt"
            target, _ = QFileDialog.getSaveFileName(
                self,
                "Export",
                suggested + module.EXTENSIONS[0],
                f"{module.LABEL} ({' '.join('*' + e for e in module.EXTENSIONS)})",
            )
        if not target:
            return
        try:  # a folder: its files of the same names are replaced only when confirmed
            self.export_to(Path(target), overwrite=not self.needs_folder())
        except exchange.ExportWouldOverwrite as exc:
            answer = QMessageBox.question(
                self,
                "Replace files?",
                f"{exc}. Replace them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.export_to(Path(target))

    def export_to(self, target: Path, overwrite: bool = True) -> ExportReport | None:
        """Export to `target` (a file, or a folder for one file per prompt); on failure
        the dialog stays open with the reason. Without `overwrite`, files that exist
        raise ExportWouldOverwrite (for the caller to ask) and nothing is written."""
        try:
            with busy_cursor():
                self.report = exchange.export(
                    self.library, self.format_name, target, self.selection(), overwrite
                )
        except exchange.ExportWouldOverwrite:
            raise
        except (OSError, ValueError, LibraryError) as exc:
            self.message.setText(f"Not exported: {exc}")
            self.message.setStyleSheet(ERROR_STYLE)
            return None
        self.exported.emit(self.report)
        self.accept()
        return self.report
