"""The test-set panel: a prompt's test sets, their rows as an editable table, and splits.

`TestRowsModel` adapts a list of `TestRow`; the rows live only there, never in widgets.
`TestSetPanel` picks, creates, renames and deletes the prompt's test sets, imports and
exports rows (CSV, JSONL), splits them into train/validation/test, and edits the label
set. Every change is saved to the library at once and announced with `test_set_changed`.

Problems never open dialogs: they go to the panel's message line. Dialogs ask only for
what a user must type or pick (a name, a file, split fractions), and each such action
has a method taking that value, which is what tests drive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.lookup import FileReadError, read_test_rows_file
from workbench.core.fsutil import atomic_write_text
from workbench.core.library import Library, LibraryError
from workbench.core.models import Prompt, TestRow, TestSet
from workbench.core.names import unique_name
from workbench.core.templates import TemplateError
from workbench.core.templates import template_variables as find_template_variables
from workbench.core.testsets_io import (
    SPLITS,
    TestSetFormatError,
    split_test_set,
    test_set_to_csv,
    test_set_to_jsonl,
)
from workbench.ui.rows import RowList
from workbench.ui.widgets import (
    ERROR_COLOR,
    delete_selected_rows,
    make_button,
    selected_rows,
    sentence,
    show_message,
)

_Index = QModelIndex | QPersistentModelIndex
_MAX_LISTED_ANSWERS = 8  # without a label set, list expected answers only when this few


@dataclass(frozen=True)
class Column:
    """One table column: a variable, or one of the row's own fields."""

    kind: Literal["var", "expected", "group", "split"]
    name: str


class TestRowsModel(RowList, QAbstractTableModel):
    """A list of `TestRow` as a table: one column per variable (the prompt's template
    variables, then any other variable the rows carry), then expected, group and split.

    Variable columns keep their places while the rows change: a variable no row has any
    more, and the template does not use, loses its column; a new one is appended.
    """

    __test__ = False  # not a pytest class

    rows_edited = Signal()
    """Emitted once per user-level change of the rows (not by `set_rows`)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[TestRow] = []
        self._template_variables: list[str] = []
        self._variables: list[str] = []
        self._labels: frozenset[str] | None = None

    # -- content ---------------------------------------------------------------

    def set_rows(self, rows: Sequence[TestRow], template_variables: Sequence[str] = ()) -> None:
        """Show `rows` (copied); the template's variables get columns even when empty."""
        self.beginResetModel()
        self._rows = [r.model_copy(deep=True) for r in rows]
        self._template_variables = list(template_variables)
        self._variables = self._wanted_variables([])
        self.endResetModel()

    def rows(self) -> list[TestRow]:
        return [r.model_copy(deep=True) for r in self._rows]

    def variables(self) -> list[str]:
        return list(self._variables)

    def columns(self) -> list[Column]:
        fixed = [Column("expected", "expected"), Column("group", "group"), Column("split", "split")]
        return [Column("var", name) for name in self._variables] + fixed

    def column_kind(self, column: int) -> str | None:
        columns = self.columns()
        return columns[column].kind if 0 <= column < len(columns) else None

    def set_labels(self, labels: Iterable[str] | None) -> None:
        """The test set's fixed labels: other expected answers are marked."""
        wanted = None if labels is None else frozenset(labels)
        if wanted != self._labels:
            self._labels = wanted
            if self._rows:
                column = len(self._variables)
                self.dataChanged.emit(
                    self.index(0, column),
                    self.index(len(self._rows) - 1, column),
                    [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole],
                )

    def _wanted_variables(self, keep: Sequence[str]) -> list[str]:
        """The template's variables, then `keep` (the shown order) and the rows' others
        in first-seen order, leaving out those neither the template nor a row has."""
        used: dict[str, None] = {}
        for row in self._rows:
            used.update(dict.fromkeys(row.vars))
        names = list(self._template_variables)
        for name in [*keep, *used]:
            if name not in names and name in used:
                names.append(name)
        return names

    def _sync_columns(self) -> None:
        """Drop the columns of variables gone from every row, append new ones."""
        wanted = self._wanted_variables(self._variables)
        for position in reversed(range(len(self._variables))):
            if self._variables[position] not in wanted:
                self.beginRemoveColumns(QModelIndex(), position, position)
                del self._variables[position]
                self.endRemoveColumns()
        new = [name for name in wanted if name not in self._variables]
        if new:
            # removing only ever leaves `wanted` minus the new names, so they go at the end
            start = len(self._variables)
            self.beginInsertColumns(QModelIndex(), start, start + len(new) - 1)
            self._variables += new
            self.endInsertColumns()

    def _row_list(self) -> list[TestRow]:
        return self._rows

    def _rows_changed(self, moved: bool) -> None:
        self._sync_columns()  # variable columns follow what the rows carry
        self._edited()

    def _announce_edit(self) -> None:
        self.rows_edited.emit()

    # -- read ------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._variables) + 3

    def _valid(self, index: _Index) -> bool:
        return (
            index.isValid()
            and not index.parent().isValid()
            and 0 <= index.row() < len(self._rows)
            and 0 <= index.column() < self.columnCount()
        )

    @staticmethod
    def _text(row: TestRow, column: Column) -> str:
        if column.kind == "var":
            return row.vars.get(column.name, "")
        if column.kind == "expected":
            return row.expected
        if column.kind == "group":
            return row.group or ""
        return row.split or ""

    def _off_label(self, row: TestRow) -> bool:
        return self._labels is not None and row.expected not in self._labels

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row = self._rows[index.row()]
        column = self.columns()[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._text(row, column)
        marked = column.kind == "expected" and self._off_label(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            if marked:
                return "Not one of the test set's labels"
            if column.kind == "var" and column.name not in row.vars:
                return "This row has no value for this variable"
            return self._text(row, column) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if marked:
                return QBrush(QColor(ERROR_COLOR))
            if column.kind == "var" and column.name not in row.vars:
                return QGuiApplication.palette().brush(
                    QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
                )
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Vertical:
            if 0 <= section < len(self._rows) and role == Qt.ItemDataRole.DisplayRole:
                return str(section + 1)
            return None
        columns = self.columns()
        if not 0 <= section < len(columns):
            return None
        column = columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.name
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.kind == "var":
                if column.name in self._template_variables:
                    return f"Value of the user template's variable “{column.name}”"
                return f"Variable “{column.name}” (the user template does not use it)"
            return {
                "expected": "The answer this row expects",
                "group": "Optional group, to compare results by group",
                "split": "train, validation or test; empty = not split",
            }[column.kind]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not self._valid(index):
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    # -- edit ------------------------------------------------------------------

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not self._valid(index):
            return False
        text = "" if value is None else str(value)
        row = self._rows[index.row()]
        column = self.columns()[index.column()]
        if column.kind == "var":
            new = row.model_copy(update={"vars": {**row.vars, column.name: text}}, deep=True)
        elif column.kind == "expected":
            new = row.model_copy(update={"expected": text})
        elif column.kind == "group":
            new = row.model_copy(update={"group": text or None})
        else:
            name = text.strip().lower()
            if name and name not in SPLITS:
                return False
            new = row.model_copy(update={"split": name or None})
        if new == row:
            return True
        self._rows[index.row()] = new
        self.dataChanged.emit(index, index)
        self._edited()
        return True

    def _blank(self) -> TestRow:
        return TestRow(vars=dict.fromkeys(self._variables, ""))

    def insertRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return self.insert_test_rows(row, [self._blank() for _ in range(count)], parent)

    def insert_test_rows(
        self,
        row: int,
        rows: Sequence[TestRow],
        parent: _Index = QModelIndex(),  # noqa: B008
    ) -> bool:
        return self.insert_items(row, rows, parent)


class _CellDelegate(QStyledItemDelegate):
    """A combo box for the split column, a small multi-line editor for the rest."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: _Index) -> QWidget:
        model = index.model()
        if isinstance(model, TestRowsModel) and model.column_kind(index.column()) == "split":
            combo = QComboBox(parent)
            combo.addItems(["", *SPLITS])
            return combo
        editor = QPlainTextEdit(parent)
        editor.setTabChangesFocus(True)
        return editor

    def setEditorData(self, editor: QWidget, index: _Index) -> None:
        text = str(index.data(Qt.ItemDataRole.EditRole) or "")
        if isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findText(text)))
        elif isinstance(editor, QPlainTextEdit):
            editor.setPlainText(text)

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: _Index) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
        elif isinstance(editor, QPlainTextEdit):
            model.setData(index, editor.toPlainText(), Qt.ItemDataRole.EditRole)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: _Index
    ) -> None:
        rect = option.rect
        if isinstance(editor, QPlainTextEdit):
            height = max(rect.height(), 4 * editor.fontMetrics().lineSpacing())
            editor.setGeometry(rect.x(), rect.y(), rect.width(), height)
        else:
            editor.setGeometry(rect)


class _SplitDialog(QDialog):
    """Asks for the train and validation shares (the rest is test), a seed and stratifying."""

    def __init__(
        self,
        parent: QWidget | None,
        train: float,
        validation: float,
        seed: int,
        stratify: bool,
        has_labels: bool,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Split test set")
        self.train_spin = self._percent(train)
        self.validation_spin = self._percent(validation)
        self.test_label = QLabel()
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(seed)
        self.seed_spin.setToolTip("The same seed always gives the same split")
        self.stratify_check = QCheckBox("Spread each label in proportion")
        self.stratify_check.setChecked(stratify and has_labels)
        self.stratify_check.setEnabled(has_labels)
        if not has_labels:
            self.stratify_check.setToolTip("Needs the test set's labels")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        form = QFormLayout(self)
        form.addRow("Train", self.train_spin)
        form.addRow("Validation", self.validation_spin)
        form.addRow("Test", self.test_label)
        form.addRow("Seed", self.seed_spin)
        form.addRow("", self.stratify_check)
        form.addRow(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.train_spin.valueChanged.connect(self._update)
        self.validation_spin.valueChanged.connect(self._update)
        self._update()

    @staticmethod
    def _percent(fraction: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0, 100)
        spin.setDecimals(1)
        spin.setSuffix(" %")
        spin.setValue(fraction * 100)
        return spin

    def fractions(self) -> tuple[float, float]:
        return self.train_spin.value() / 100, self.validation_spin.value() / 100

    def _update(self) -> None:
        rest = 100 - self.train_spin.value() - self.validation_spin.value()
        self.test_label.setText(f"{max(rest, 0):.1f} %")
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(rest >= -1e-9)


class TestSetPanel(QWidget):
    """Edits the test sets of one prompt; `test_set_changed` carries the current one.

    `test_set_changed(TestSet | None)` is emitted after every change the user makes:
    with the saved test set after an edit, creation or rename, with the newly picked
    one when the picker changes, and with the one now shown (or None) after a delete.
    `set_prompt` emits nothing.
    """

    __test__ = False  # not a pytest class

    test_set_changed = Signal(object)

    def __init__(self, library: Library, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self._prompt: Prompt | None = None
        self._test_set: TestSet | None = None
        self._loading = False
        self._split_settings: tuple[float, float, int, bool] = (0.5, 0.25, 0, True)

        self.picker = QComboBox()
        self.picker.setObjectName("testSetPicker")
        self.picker.setToolTip("The prompt's test sets")
        self.new_button = make_button("New…", "newTestSet", "Create an empty test set")
        self.rename_button = make_button("Rename…", "renameTestSet", "Rename this test set")
        self.delete_set_button = make_button("Delete", "deleteTestSet", "Delete this test set")
        picker_row = QHBoxLayout()
        picker_row.addWidget(self.picker, 1)
        for button in (self.new_button, self.rename_button, self.delete_set_button):
            picker_row.addWidget(button)

        self.model = TestRowsModel(self)
        self.table = QTableView()
        self.table.setObjectName("testRowsTable")
        self.table.setModel(self.model)
        self.table.setItemDelegate(_CellDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setWordWrap(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        delete_action = QAction("Delete rows", self.table)
        delete_action.setShortcut(QKeySequence.StandardKey.Delete)
        delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete_action.triggered.connect(self.delete_selected)
        self.table.addAction(delete_action)

        self.add_button = make_button("Add row", "addTestRow", "Add an empty row")
        self.delete_rows_button = make_button(
            "Delete rows", "deleteTestRows", "Delete the selected rows"
        )
        self.import_button = make_button(
            "Import…", "importTestSet", "Add rows from a CSV or JSONL file"
        )
        self.export_button = make_button(
            "Export…", "exportTestSet", "Write the rows to a CSV or JSONL file"
        )
        self.split_button = make_button(
            "Split…", "splitTestSet", "Divide the rows into train, validation and test"
        )
        buttons = QHBoxLayout()
        for button in (
            self.add_button,
            self.delete_rows_button,
            self.import_button,
            self.export_button,
            self.split_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.labels_edit = QLineEdit()
        self.labels_edit.setObjectName("testSetLabels")
        self.labels_edit.setPlaceholderText("e.g. positive, negative, neutral")
        self.labels_edit.setToolTip(
            "The fixed set of expected answers, comma separated; empty = free text.\n"
            "Labels allow scoring by likelihood and stratified splits."
        )
        self.counts = QLabel()
        self.counts.setObjectName("testSetCounts")
        self.counts.setWordWrap(True)
        self.counts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Labels", self.labels_edit)
        form.addRow("Rows", self.counts)

        self.message = QLabel()
        self.message.setObjectName("testSetMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(picker_row)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addWidget(self.message)

        self.picker.currentIndexChanged.connect(self._picked)
        self.new_button.clicked.connect(lambda: self.new_test_set())
        self.rename_button.clicked.connect(lambda: self.rename_test_set())
        self.delete_set_button.clicked.connect(self._confirm_delete)
        self.add_button.clicked.connect(self.add_row)
        self.delete_rows_button.clicked.connect(self.delete_selected)
        self.import_button.clicked.connect(self._choose_import_file)
        self.export_button.clicked.connect(self._choose_export_file)
        self.split_button.clicked.connect(self._ask_split)
        self.labels_edit.editingFinished.connect(self._labels_edited)
        self.model.rows_edited.connect(self._rows_edited)
        for signal in (self.model.modelReset, self.model.rowsInserted, self.model.rowsRemoved):
            signal.connect(self._update_buttons)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._show_test_set(None)

    # -- the interface used by the main window -------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show `prompt`'s test sets (none for None); keeps the picked one if it is still
        there, else picks the first. Emits nothing."""
        keep = self._test_set.id if self._test_set is not None else None
        self._prompt = prompt
        self._fill_picker(keep)
        self._show_message("")

    def current_test_set(self) -> TestSet | None:
        return self._test_set.model_copy(deep=True) if self._test_set is not None else None

    # -- test sets ------------------------------------------------------------------

    def new_test_set(self, name: str | None = None) -> TestSet | None:
        """Create an empty test set for the prompt and pick it; asks for the name when
        none is given. Returns the saved test set, or None when nothing was created."""
        if self._prompt is None:
            return None
        if name is None:
            name, ok = QInputDialog.getText(self, "New test set", "Name:")
            if not ok:
                return None
        name = name.strip()
        if not self._name_ok(name):
            return None
        created = self._store(TestSet(name=name, prompt_id=self._prompt.id))
        if created is not None:
            self._fill_picker(created.id)
            self._show_message(f"Created test set “{created.name}”.")
            self.test_set_changed.emit(self.current_test_set())
        return created

    def rename_test_set(self, name: str | None = None) -> bool:
        """Rename the current test set; asks for the name when none is given."""
        if self._test_set is None:
            return False
        if name is None:
            name, ok = QInputDialog.getText(
                self, "Rename test set", "New name:", text=self._test_set.name
            )
            if not ok:
                return False
        name = name.strip()
        if name == self._test_set.name:
            return True
        if not self._name_ok(name):
            return False
        renamed = self._store(self._test_set.model_copy(update={"name": name}))
        if renamed is None:
            return False
        self._fill_picker(renamed.id)
        self.test_set_changed.emit(self.current_test_set())
        return True

    def delete_test_set(self) -> bool:
        """Delete the current test set (no confirmation: the button asks first)."""
        if self._test_set is None:
            return False
        name = self._test_set.name
        try:
            self._library.delete_test_set(self._test_set.id)
        except (LibraryError, OSError) as exc:
            self._show_message(f"Could not delete “{name}”: {exc}", error=True)
            return False
        self._test_set = None
        self._fill_picker(None)
        self._show_message(f"Deleted test set “{name}”.")
        self.test_set_changed.emit(self.current_test_set())
        return True

    def _confirm_delete(self) -> None:
        if self._test_set is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete test set",
            f"Delete the test set “{self._test_set.name}” and its "
            f"{_rows(len(self._test_set.rows))}? This cannot be undone.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_test_set()

    def _name_ok(self, name: str) -> bool:
        if not name:
            self._show_message("A test set needs a name.", error=True)
            return False
        if any(t.name == name for t in self._sets()):
            self._show_message(f"There is already a test set named “{name}”.", error=True)
            return False
        return True

    # -- rows -----------------------------------------------------------------------

    def add_row(self) -> None:
        row = self.model.rowCount()
        if self._test_set is not None and self.model.insertRows(row, 1):
            index = self.model.index(row, 0)
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)
            self.table.edit(index)

    def selected_rows(self) -> list[int]:
        return selected_rows(self.table)

    def delete_selected(self) -> None:
        delete_selected_rows(self.table)

    def import_file(self, path: Path) -> int:
        """Append the rows of a CSV or JSONL file; returns how many were added.

        A file with any problem adds nothing; the problems are shown in the panel.
        Without a current test set, the rows go into a new one named after the file.
        """
        if self._prompt is None:
            return 0
        try:
            rows = read_test_rows_file(path)
        except FileReadError as exc:
            self._show_message(sentence(str(exc)), error=True)
            return 0
        except TestSetFormatError as exc:
            self._show_message(f"Nothing imported — {exc}", error=True)
            return 0
        if not rows:
            self._show_message(f"{path.name} has no rows.")
            return 0
        if self._test_set is None:
            name = unique_name(path.stem, (t.name for t in self._sets()), "{stem} ({n})")
            if self.new_test_set(name) is None:
                return 0
        self.model.insert_test_rows(self.model.rowCount(), rows)
        note = self._variables_note(rows)
        self._show_message(f"Imported {_rows(len(rows))} from {path.name}.{note}")
        return len(rows)

    def _variables_note(self, rows: Sequence[TestRow]) -> str:
        """A word about variables the file and the template do not share."""
        template = self._template_variables()
        found: dict[str, None] = {}
        for row in rows:
            found.update(dict.fromkeys(row.vars))
        unused = [name for name in found if name not in template]
        missing = [name for name in template if name not in found]
        notes = []
        if unused:
            notes.append(f"the template does not use {', '.join(unused)}")
        if missing:
            notes.append(f"no values for {', '.join(missing)}")
        return f" Note: {'; '.join(notes)}." if notes else ""

    def export_file(self, path: Path) -> bool:
        """Write the current test set's rows to `path`, as CSV or JSONL by its suffix."""
        if self._test_set is None:
            self._show_message("No test set to export.", error=True)
            return False
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                text = test_set_to_csv(self._test_set)
            elif suffix in (".jsonl", ".ndjson"):
                text = test_set_to_jsonl(self._test_set)
            else:
                self._show_message("Export to a .csv or .jsonl file.", error=True)
                return False
            atomic_write_text(path, text)
        except (ValueError, OSError) as exc:
            self._show_message(f"Could not export to {path.name}: {exc}", error=True)
            return False
        self._show_message(f"Exported {_rows(len(self._test_set.rows))} to {path.name}.")
        return True

    def split(self, train: float, validation: float, seed: int, stratify: bool = True) -> bool:
        """Give every row a split: `train` and `validation` are fractions, the rest is
        test. Stratified by expected answer when the test set has labels."""
        if self._test_set is None:
            return False
        try:
            result = split_test_set(self._test_set, train, validation, seed, stratify)
        except ValueError as exc:
            self._show_message(f"Not split: {exc}", error=True)
            return False
        self._split_settings = (train, validation, seed, stratify)
        self.model.set_rows(result.rows, self._template_variables())
        self._save(rows=self.model.rows())
        counts = Counter(row.split for row in result.rows)
        parts = ", ".join(f"{counts[name]} {name}" for name in SPLITS)
        self._show_message(f"Split {_rows(len(result.rows))}: {parts}.")
        return True

    def _ask_split(self) -> None:
        if self._test_set is None:
            return
        train, validation, seed, stratify = self._split_settings
        dialog = _SplitDialog(self, train, validation, seed, stratify, bool(self._test_set.labels))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            train, validation = dialog.fractions()
            self.split(
                train, validation, dialog.seed_spin.value(), dialog.stratify_check.isChecked()
            )

    def _choose_import_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Import test rows", "", "Test sets (*.csv *.tsv *.jsonl *.ndjson);;All files (*)"
        )
        if name:
            self.import_file(Path(name))

    def _choose_export_file(self) -> None:
        if self._test_set is None:
            return
        name, chosen = QFileDialog.getSaveFileName(
            self,
            "Export test set",
            f"{self._test_set.name}.csv",
            "CSV (*.csv);;JSON Lines (*.jsonl)",
        )
        if name:
            path = Path(name)
            if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
                path = path.with_name(path.name + (".jsonl" if "jsonl" in chosen else ".csv"))
            self.export_file(path)

    # -- labels ---------------------------------------------------------------------

    def set_labels_text(self, text: str) -> None:
        """Set the label set from comma-separated text, as if typed into the field."""
        self.labels_edit.setText(text)
        self._labels_edited()

    def _labels_edited(self) -> None:
        if self._loading or self._test_set is None:
            return
        labels = _parse_labels(self.labels_edit.text())
        self.labels_edit.setText(", ".join(labels or []))
        if labels != self._test_set.labels:
            self._save(labels=labels)
            self.model.set_labels(labels)

    # -- state ----------------------------------------------------------------------

    def _sets(self) -> list[TestSet]:
        if self._prompt is None:
            return []
        return self._library.test_sets_for(self._prompt.id)

    def _template_variables(self) -> list[str]:
        if self._prompt is None:
            return []
        try:
            return find_template_variables(self._prompt.user_template, "user_template")
        except TemplateError:
            return []  # a broken template: the rows' own variables still show

    def _fill_picker(self, wanted: str | None) -> None:
        """List the prompt's test sets and show `wanted` (else the first), quietly."""
        sets = self._sets()
        self._loading = True
        try:
            self.picker.clear()
            for test_set in sets:
                self.picker.addItem(test_set.name, test_set.id)
            position = self.picker.findData(wanted) if wanted is not None else -1
            if position < 0 and sets:
                position = 0
            self.picker.setCurrentIndex(position)
        finally:
            self._loading = False
        self._show_test_set(sets[position] if position >= 0 else None)

    def _picked(self) -> None:
        if self._loading:
            return
        test_set_id = self.picker.currentData()
        self._show_test_set(self._library.test_sets.get(test_set_id) if test_set_id else None)
        self._show_message("")
        self.test_set_changed.emit(self.current_test_set())

    def _show_test_set(self, test_set: TestSet | None) -> None:
        self._test_set = test_set
        self._loading = True
        try:
            self.model.set_rows(test_set.rows if test_set else [], self._template_variables())
            self.model.set_labels(test_set.labels if test_set else None)
            self.labels_edit.setText(", ".join(test_set.labels or []) if test_set else "")
        finally:
            self._loading = False
        self._update_counts()
        self._update_buttons()

    def _rows_edited(self) -> None:
        self._save(rows=self.model.rows())

    def _store(self, test_set: TestSet) -> TestSet | None:
        try:
            return self._library.save_test_set(test_set)
        except (LibraryError, OSError) as exc:
            self._show_message(f"Not saved: {exc}", error=True)
            return None

    def _save(self, **changes: Any) -> None:
        """Apply `changes` to the current test set, save it, and announce it."""
        if self._test_set is None:
            return
        changed = self._test_set.model_copy(update=changes)
        saved = self._store(changed)
        # a failed save keeps the edit in memory (and on screen); the next change retries
        self._test_set = saved if saved is not None else changed
        self._update_counts()
        self._update_buttons()
        self.test_set_changed.emit(self.current_test_set())

    def _update_counts(self) -> None:
        self.counts.setText(_describe(self._test_set) if self._test_set else "")

    def _update_buttons(self) -> None:
        has_prompt = self._prompt is not None
        has_set = self._test_set is not None
        has_rows = self.model.rowCount() > 0
        self.picker.setEnabled(has_prompt and self.picker.count() > 0)
        self.new_button.setEnabled(has_prompt)
        self.import_button.setEnabled(has_prompt)
        self.rename_button.setEnabled(has_set)
        self.delete_set_button.setEnabled(has_set)
        self.add_button.setEnabled(has_set)
        self.labels_edit.setEnabled(has_set)
        self.table.setEnabled(has_set)
        self.export_button.setEnabled(has_set)
        self.split_button.setEnabled(has_set and has_rows)
        self.delete_rows_button.setEnabled(has_set and bool(self.selected_rows()))

    def _show_message(self, text: str, *, error: bool = False) -> None:
        show_message(self.message, text, error=error)


def _parse_labels(text: str) -> list[str] | None:
    """Comma-separated labels, trimmed and without repeats; None when there are none."""
    labels: list[str] = []
    for part in text.split(","):
        label = part.strip()
        if label and label not in labels:
            labels.append(label)
    return labels or None


def _describe(test_set: TestSet) -> str:
    """Row counts per split and per expected label, e.g.
    "12 rows: 6 train, 3 validation, 3 test · positive 7, negative 5"."""
    rows = test_set.rows
    splits = Counter(row.split for row in rows)
    text = _rows(len(rows))
    if len(rows) and splits[None] == len(rows):
        text += ", not split"
    elif rows:
        parts = [f"{splits[name]} {name}" for name in SPLITS]
        if splits[None]:
            parts.append(f"{splits[None]} not split")
        text += ": " + ", ".join(parts)
    answers = Counter(row.expected for row in rows)
    if test_set.labels:
        parts = [f"{label} {answers.pop(label, 0)}" for label in test_set.labels]
        other = sum(answers.values())
        if other:
            parts.append(f"other {other}")
        text += " · " + ", ".join(parts)
    elif 0 < len(answers) <= _MAX_LISTED_ANSWERS:
        parts = [f"{answer or '(empty)'} {count}" for answer, count in answers.most_common()]
        text += " · " + ", ".join(parts)
    elif answers:
        text += f" · {len(answers)} different expected answers"
    return text


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
