"""The few-shot panel: a prompt's examples as an editable table, plus how they are used.

`FewShotTableModel` adapts the list of `FewShotExample`; the data lives only there, never
in widgets. `FewShotPanel` adds the buttons (add, delete, move, paste, import) and the
controls for count, order, style and the inline format, and emits `changed` with a new,
validated `FewShot` after every user change.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCursor,
    QDrag,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.examples_io import ExamplesFormatError, parse_pasted
from workbench.core.flows.lookup import FileReadError, read_examples_file
from workbench.core.models import FewShot, FewShotExample, FewShotOrder, FewShotStyle, Prompt
from workbench.core.templates import TemplateError, check_template, select_examples
from workbench.core.templates import template_variables as find_template_variables
from workbench.ui.rows import RowList
from workbench.ui.widgets import (
    delete_selected_rows,
    make_button,
    selected_rows,
    sentence,
    show_message,
)

_Index = QModelIndex | QPersistentModelIndex

ROWS_MIME = "application/x-workbench-fewshot-rows"
"""Private drag-and-drop format: the dragged row numbers, valid only inside one model."""

_MAX_COUNT = 9999


@dataclass(frozen=True)
class Column:
    """One table column: a template variable, the plain `input`, or the `output`."""

    kind: Literal["var", "input", "output"]
    name: str


class FewShotTableModel(RowList, QAbstractTableModel):
    """A list of `FewShotExample` as a table: one column per user-template variable, an
    `input` column when some example has plain text instead of variable values (or the
    template has no variables), and `output`.

    An example is either plain (`input`, empty `vars`) or variable-based; editing a
    variable cell of a plain example makes it variable-based.
    """

    examples_edited = Signal()
    """Emitted once per user-level change of the examples (not by `set_examples`)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._examples: list[FewShotExample] = []
        self._variables: list[str] = []
        self._columns: list[Column] = self._wanted_columns()
        self._excluded: frozenset[int] = frozenset()
        self._token = uuid.uuid4().hex  # tells this model's drags from another model's

    # -- content ---------------------------------------------------------------

    def set_examples(self, examples: Sequence[FewShotExample], variables: Sequence[str]) -> None:
        """Show `examples` (copied) with one column per name in `variables`."""
        self.beginResetModel()
        self._examples = [e.model_copy(deep=True) for e in examples]
        self._variables = list(variables)
        self._columns = self._wanted_columns()
        self._excluded = frozenset()
        self.endResetModel()

    def examples(self) -> list[FewShotExample]:
        return [e.model_copy(deep=True) for e in self._examples]

    def variables(self) -> list[str]:
        return list(self._variables)

    def columns(self) -> list[Column]:
        return list(self._columns)

    def input_columns(self) -> list[str]:
        """The input cells of a pasted row, in order: the variables, else `input`."""
        return list(self._variables) or ["input"]

    def set_excluded(self, rows: Iterable[int]) -> None:
        """Rows that the count leaves out of the prompt; they are drawn dimmed."""
        excluded = frozenset(rows)
        if excluded != self._excluded:
            self._excluded = excluded
            if self._examples and self._columns:
                self.dataChanged.emit(
                    self.index(0, 0),
                    self.index(len(self._examples) - 1, len(self._columns) - 1),
                    [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole],
                )

    def _blank(self) -> FewShotExample:
        return FewShotExample(vars=dict.fromkeys(self._variables, ""), output="")

    def _wanted_columns(self) -> list[Column]:
        columns = [Column("var", name) for name in self._variables]
        if not self._variables or any(not e.vars for e in self._examples):
            columns.append(Column("input", "input"))
        columns.append(Column("output", "output"))
        return columns

    def _sync_columns(self) -> None:
        """Show or hide the `input` column (it sits right after the variable columns)."""
        wanted = self._wanted_columns()
        if wanted == self._columns:
            return
        position = len(self._variables)
        if len(wanted) > len(self._columns):
            self.beginInsertColumns(QModelIndex(), position, position)
            self._columns = wanted
            self.endInsertColumns()
        else:
            self.beginRemoveColumns(QModelIndex(), position, position)
            self._columns = wanted
            self.endRemoveColumns()

    def _row_list(self) -> list[FewShotExample]:
        return self._examples

    def _rows_changed(self, moved: bool) -> None:
        if not moved:
            self._sync_columns()  # the `input` column follows which kinds of example exist
        self._edited()

    def _announce_edit(self) -> None:
        self.examples_edited.emit()

    # -- read ------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._examples)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def _input_editable(self, example: FewShotExample) -> bool:
        # with template variables, a variable-based example's `input` is never rendered
        return not example.vars or not self._variables

    def _text(self, example: FewShotExample, column: Column) -> str:
        if column.kind == "var":
            return example.vars.get(column.name, "")
        if column.kind == "input":
            return example.input if self._input_editable(example) else ""
        return example.output

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row = index.row()
        example = self._examples[row]
        column = self._columns[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._text(example, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row in self._excluded:
                return "Not included in the prompt (see “Include”)"
            if column.kind == "input" and example.vars:
                if self._variables:
                    return "This example fills the variable columns"
                values = "\n".join(f"{k}: {v}" for k, v in example.vars.items())
                return f"Variable values the user template does not use:\n{values}"
            return self._text(example, column) or None
        if role == Qt.ItemDataRole.ForegroundRole and row in self._excluded:
            return QGuiApplication.palette().brush(
                QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
            )
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Vertical:
            if 0 <= section < len(self._examples) and role == Qt.ItemDataRole.DisplayRole:
                return str(section + 1)
            return None
        if not 0 <= section < len(self._columns):
            return None
        column = self._columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            if column.kind == "input" and "input" in self._variables:
                return "input (plain text)"
            return column.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return {
                "var": f"Value of the user template's variable “{column.name}”",
                "input": "The user turn as plain text, for examples without variable values",
                "output": "The assistant's answer",
            }[column.kind]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled  # drops go between rows, never onto cells
        flags = (
            Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        )
        if self._valid(index):
            column = self._columns[index.column()]
            if column.kind != "input" or self._input_editable(self._examples[index.row()]):
                flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def _valid(self, index: _Index) -> bool:
        return (
            index.isValid()
            and not index.parent().isValid()
            and 0 <= index.row() < len(self._examples)
            and 0 <= index.column() < len(self._columns)
        )

    # -- edit ------------------------------------------------------------------

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not self._valid(index):
            return False
        text = "" if value is None else str(value)
        row = index.row()
        example = self._examples[row]
        column = self._columns[index.column()]
        if column.kind == "output":
            new = FewShotExample(input=example.input, vars=dict(example.vars), output=text)
        elif column.kind == "var":
            values = {**dict.fromkeys(self._variables, ""), **example.vars, column.name: text}
            new = FewShotExample(input=example.input, vars=values, output=example.output)
        elif self._input_editable(example):
            # the template has no variables, so stale variable values are dropped
            new = FewShotExample(input=text, output=example.output)
        else:
            return False
        if new == example:
            return True
        self._examples[row] = new
        # the whole row: turning a plain example into a variable-based one blanks its input
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self._columns) - 1))
        self._sync_columns()
        self._edited()
        return True

    def insertRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return self.insert_examples(row, [self._blank() for _ in range(count)], parent)

    def insert_examples(
        self,
        row: int,
        examples: Sequence[FewShotExample],
        parent: _Index = QModelIndex(),  # noqa: B008
    ) -> bool:
        return self.insert_items(row, examples, parent)

    def move_rows(self, rows: Iterable[int], destination: int) -> bool:
        """Move any set of rows, keeping their order, to just before row `destination`
        (numbered before the move), emitting `examples_edited` once."""
        n = len(self._examples)
        wanted = sorted({r for r in rows if 0 <= r < n})
        if not wanted or not 0 <= destination <= n:
            return False
        above = [r for r in wanted if r < destination]
        below = [r for r in wanted if r >= destination]
        with self.batch():
            # rows above gather, last first, into a block ending just before `destination`
            for placed, row in enumerate(reversed(above)):
                if row != destination - placed - 1:
                    self.moveRows(QModelIndex(), row, 1, QModelIndex(), destination - placed)
            # rows below follow the block, first first; rows further down keep their places
            for placed, row in enumerate(below):
                if row != destination + placed:
                    self.moveRows(QModelIndex(), row, 1, QModelIndex(), destination + placed)
        return True

    def shift_rows(self, rows: Iterable[int], delta: Literal[-1, 1]) -> bool:
        """Move a set of rows one place up (-1) or down (1); False at the top or bottom."""
        wanted = sorted({r for r in rows if 0 <= r < len(self._examples)})
        if not wanted or (delta < 0 and wanted[0] == 0):
            return False
        if delta > 0 and wanted[-1] == len(self._examples) - 1:
            return False
        with self.batch():
            for row in wanted if delta < 0 else reversed(wanted):
                self.moveRows(
                    QModelIndex(), row, 1, QModelIndex(), row - 1 if delta < 0 else row + 2
                )
        return True

    # -- drag and drop -----------------------------------------------------------

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [ROWS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        rows = sorted({i.row() for i in indexes if self._valid(i)})
        data = QMimeData()
        data.setData(ROWS_MIME, json.dumps({"model": self._token, "rows": rows}).encode())
        return data

    def _dragged_rows(self, data: QMimeData) -> list[int] | None:
        """The rows a drag carries, if it came from this model and they still exist."""
        if not data.hasFormat(ROWS_MIME):
            return None
        try:
            payload = json.loads(bytes(data.data(ROWS_MIME).data()).decode())
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("model") != self._token:
            return None
        rows = payload.get("rows")
        if not isinstance(rows, list) or not rows:
            return None
        if not all(isinstance(r, int) and 0 <= r < len(self._examples) for r in rows):
            return None
        return rows

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: _Index
    ) -> bool:
        return action == Qt.DropAction.MoveAction and self._dragged_rows(data) is not None

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: _Index
    ) -> bool:
        if action == Qt.DropAction.IgnoreAction:
            return True
        rows = self._dragged_rows(data)
        if action != Qt.DropAction.MoveAction or rows is None:
            return False
        if row < 0:
            row = parent.row() if parent.isValid() else len(self._examples)
        return self.move_rows(rows, row)


class _ExampleTable(QTableView):
    """The examples table; rows are reordered by dragging them within the view.

    The view runs its drags itself: how Qt ends a move drag varies between versions
    (before 6.8 it removes the dragged rows after a drop it did not make itself), so here
    an internal drop asks the model's `dropMimeData` to move the rows, and nothing
    happens when the drag ends.
    """

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        model = self.model()
        indexes = [
            i for i in self.selectedIndexes() if model.flags(i) & Qt.ItemFlag.ItemIsDragEnabled
        ]
        if not indexes:
            return
        drag = QDrag(self)
        drag.setMimeData(model.mimeData(indexes))
        area = QRect()
        for index in indexes:
            area = area.united(self.visualRect(index))
        area = area.intersected(self.viewport().rect())
        if not area.isEmpty():
            drag.setPixmap(self.viewport().grab(area))
            drag.setHotSpot(self.viewport().mapFromGlobal(QCursor.pos()) - area.topLeft())
        drag.exec(Qt.DropAction.MoveAction)

    def drop_row(self, position: QPoint) -> int:
        """Where rows dropped at `position` (viewport coordinates) go: before this row.

        Rows are not drop targets, so, as the drop indicator shows, the upper half of a
        row drops above it and the lower half below it; empty space drops at the end.
        """
        index = self.indexAt(position)
        if not index.isValid():
            return self.model().rowCount()
        return index.row() + int(position.y() >= self.visualRect(index).center().y())

    def dropEvent(self, event: QDropEvent) -> None:
        if event.source() is not self:
            super().dropEvent(event)
            return
        row = self.drop_row(event.position().toPoint())
        if self.model().dropMimeData(
            event.mimeData(), Qt.DropAction.MoveAction, row, -1, QModelIndex()
        ):
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
        else:
            event.ignore()
        self.stopAutoScroll()
        self.setState(QAbstractItemView.State.NoState)
        self.viewport().update()


class _TextDelegate(QStyledItemDelegate):
    """Edits cells in a small multi-line editor: examples often span several lines."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: _Index) -> QWidget:
        editor = QPlainTextEdit(parent)
        editor.setTabChangesFocus(True)
        return editor

    def setEditorData(self, editor: QWidget, index: _Index) -> None:
        if isinstance(editor, QPlainTextEdit):
            editor.setPlainText(str(index.data(Qt.ItemDataRole.EditRole) or ""))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: _Index) -> None:
        if isinstance(editor, QPlainTextEdit):
            model.setData(index, editor.toPlainText(), Qt.ItemDataRole.EditRole)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: _Index
    ) -> None:
        rect = option.rect
        height = max(rect.height(), 4 * editor.fontMetrics().lineSpacing())
        editor.setGeometry(rect.x(), rect.y(), rect.width(), height)


class FewShotPanel(QWidget):
    """Edits a prompt's few-shot block; `changed` carries each new `FewShot`."""

    changed = Signal(object)
    optimise_requested = Signal()  # the window opens the Optimise dialog on the prompt

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._user_template = ""
        self._few_shot = FewShot()
        self._loading = False

        self.model = FewShotTableModel(self)
        self.table = _ExampleTable()
        self.table.setObjectName("fewShotTable")
        self.table.setModel(self.model)
        self.table.setItemDelegate(_TextDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.table.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.table.setDragDropOverwriteMode(False)
        self.table.setDropIndicatorShown(True)
        self.table.setWordWrap(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        paste_action = QAction("Paste examples", self.table)
        paste_action.setShortcut(QKeySequence.StandardKey.Paste)
        paste_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        paste_action.triggered.connect(self.paste_clipboard)
        self.table.addAction(paste_action)

        self.add_button = make_button("Add", "addExample", "Add an empty example")
        self.delete_button = make_button("Delete", "deleteExample", "Delete the selected rows")
        self.up_button = make_button("Move up", "moveExampleUp", "Move the selected rows up")
        self.down_button = make_button(
            "Move down", "moveExampleDown", "Move the selected rows down"
        )
        self.paste_button = make_button(
            "Paste",
            "pasteExamples",
            "Add rows copied from a spreadsheet: the input columns first, the output last",
        )
        self.import_button = make_button(
            "Import…", "importExamples", "Add examples from a CSV or JSONL file"
        )
        self.optimise_button = make_button(
            "Optimise…",
            "optimiseFewShot",
            "Search which examples to show, how many, in what order and style, scoring each "
            "choice on the validation split of this prompt's test set; the winner is compared "
            "on the held-out rows and saved as a new version only if you apply it",
        )
        buttons = QHBoxLayout()
        for button in (
            self.add_button,
            self.delete_button,
            self.up_button,
            self.down_button,
            self.paste_button,
            self.import_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.optimise_button)

        self.message = QLabel()
        self.message.setObjectName("fewShotMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.count_spin = QSpinBox()
        self.count_spin.setObjectName("fewShotCount")
        self.count_spin.setRange(-1, _MAX_COUNT)  # -1 reads "All"; 0 is zero-shot
        self.count_spin.setSpecialValueText("All")
        self.count_spin.setToolTip(
            "How many examples the prompt includes (after ordering); 0 = none (zero-shot)"
        )

        self.order_combo = QComboBox()
        self.order_combo.setObjectName("fewShotOrder")
        for label, order in (
            ("As written", FewShotOrder.AS_WRITTEN),
            ("Reversed", FewShotOrder.REVERSED),
            ("Random", FewShotOrder.RANDOM),
        ):
            self.order_combo.addItem(label, order.value)
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("fewShotSeed")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("The same seed always gives the same shuffle")
        order_row = QHBoxLayout()
        order_row.addWidget(self.order_combo, 1)
        order_row.addWidget(self.seed_spin)

        self.style_combo = QComboBox()
        self.style_combo.setObjectName("fewShotStyle")
        self.style_combo.addItem("Chat turns", FewShotStyle.CHAT.value)
        self.style_combo.addItem("Inline block", FewShotStyle.INLINE.value)
        self.style_combo.setToolTip(
            "Chat turns: each example is a user and an assistant message.\n"
            "Inline block: all examples are written into the user message."
        )

        self.header_edit = QLineEdit()
        self.header_edit.setObjectName("fewShotHeader")
        self.header_edit.setToolTip("Text above the inline examples")
        self.format_edit = QPlainTextEdit()
        self.format_edit.setObjectName("fewShotFormat")
        self.format_edit.setTabChangesFocus(True)
        self.format_edit.setFixedHeight(4 * self.format_edit.fontMetrics().lineSpacing() + 12)
        self.format_edit.setToolTip(
            "Template of one inline example; it may use input, output and the variables"
        )
        self.format_error = QLabel()
        self.format_error.setObjectName("fewShotFormatError")
        self.format_error.setWordWrap(True)
        self.format_error.hide()

        form = QFormLayout()
        form.addRow("Include", self.count_spin)
        form.addRow("Order", order_row)
        form.addRow("Style", self.style_combo)
        form.addRow("Inline header", self.header_edit)
        form.addRow("Example format", self.format_edit)
        form.addRow("", self.format_error)

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addLayout(form)

        self.add_button.clicked.connect(self.add_example)
        self.delete_button.clicked.connect(self.delete_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.paste_button.clicked.connect(self.paste_clipboard)
        self.import_button.clicked.connect(self._choose_import_file)
        self.optimise_button.clicked.connect(lambda: self.optimise_requested.emit())
        self.model.examples_edited.connect(self._examples_edited)
        self.model.modelReset.connect(self._update_buttons)
        self.model.rowsRemoved.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._update_buttons)
        self.model.rowsMoved.connect(self._update_buttons)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.count_spin.valueChanged.connect(
            lambda value: self._update(count=value if value >= 0 else None)
        )
        self.order_combo.currentIndexChanged.connect(
            lambda: self._update(order=FewShotOrder(self.order_combo.currentData()))
        )
        self.seed_spin.valueChanged.connect(lambda value: self._update(seed=value))
        self.style_combo.currentIndexChanged.connect(
            lambda: self._update(style=FewShotStyle(self.style_combo.currentData()))
        )
        self.header_edit.textChanged.connect(lambda text: self._update(inline_header=text))
        self.format_edit.textChanged.connect(
            lambda: self._update(example_format=self.format_edit.toPlainText())
        )
        self._show_settings()
        self._update_buttons()

    # -- the interface used by the main window -------------------------------------

    def set_prompt(self, prompt: Prompt) -> None:
        """Show `prompt`'s few-shot block; emits nothing."""
        self._user_template = prompt.user_template
        self._few_shot = prompt.few_shot.model_copy(deep=True)
        self.model.set_examples(self._few_shot.examples, self._variable_columns())
        self._show_settings()
        self._show_message("")
        self._update_buttons()

    def few_shot(self) -> FewShot:
        return self._few_shot.model_copy(deep=True)

    def show_message(self, text: str, *, error: bool = False) -> None:
        """A line under the table (the window's answer to Optimise…, for one)."""
        self._show_message(text, error=error)

    # -- actions ----------------------------------------------------------------

    def add_example(self) -> None:
        row = self.model.rowCount()
        if self.model.insertRows(row, 1):
            index = self.model.index(row, 0)
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)
            self.table.edit(index)

    def selected_rows(self) -> list[int]:
        return selected_rows(self.table)

    def delete_selected(self) -> None:
        delete_selected_rows(self.table)

    def move_selected(self, delta: Literal[-1, 1]) -> None:
        # the selection follows the rows: the selection model tracks them by persistent index
        self.model.shift_rows(self.selected_rows(), delta)

    def paste_clipboard(self) -> int:
        return self.paste_text(QGuiApplication.clipboard().text())

    def paste_text(self, text: str) -> int:
        """Append rows pasted from a spreadsheet; returns how many were added."""
        try:
            examples = parse_pasted(text, self.model.input_columns(), self.model.variables())
        except ExamplesFormatError as exc:
            self._show_message(f"Nothing pasted — {exc}", error=True)
            return 0
        self.model.insert_examples(self.model.rowCount(), examples)
        self._show_message(f"Pasted {_plural(len(examples))}.")
        return len(examples)

    def import_file(self, path: Path) -> int:
        """Append the examples of a CSV or JSONL file; returns how many were added.

        A file with any problem adds nothing; the problems are shown in the panel.
        """
        try:
            examples = read_examples_file(path, self._template_variables())
        except FileReadError as exc:
            self._show_message(sentence(str(exc)), error=True)
            return 0
        except ExamplesFormatError as exc:
            self._show_message(f"Nothing imported — {exc}", error=True)
            return 0
        if examples:
            self.model.insert_examples(self.model.rowCount(), examples)
        self._show_message(f"Imported {_plural(len(examples))} from {path.name}.")
        return len(examples)

    def _choose_import_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self,
            "Import examples",
            "",
            "Examples (*.csv *.tsv *.jsonl *.ndjson);;All files (*)",
        )
        if name:
            self.import_file(Path(name))

    # -- state ------------------------------------------------------------------

    def _template_variables(self) -> list[str] | None:
        """The user template's variables, or None when it does not parse."""
        try:
            return find_template_variables(self._user_template, "user_template")
        except TemplateError:
            return None

    def _variable_columns(self) -> list[str]:
        variables = self._template_variables()
        if variables is not None:
            return variables
        # a broken template: keep the examples' own variables visible meanwhile
        names: list[str] = []
        for example in self._few_shot.examples:
            names += [name for name in example.vars if name not in names]
        return names

    def _show_settings(self) -> None:
        """Put the current FewShot's settings into the controls, without emitting."""
        few_shot = self._few_shot
        self._loading = True
        try:
            self.count_spin.setValue(-1 if few_shot.count is None else few_shot.count)
            self.order_combo.setCurrentIndex(self.order_combo.findData(few_shot.order.value))
            self.seed_spin.setValue(few_shot.seed)
            self.style_combo.setCurrentIndex(self.style_combo.findData(few_shot.style.value))
            self.header_edit.setText(few_shot.inline_header)
            if self.format_edit.toPlainText() != few_shot.example_format:
                self.format_edit.setPlainText(few_shot.example_format)
        finally:
            self._loading = False
        self._update_enabled()
        self._check_format()
        self.model.set_excluded(self._excluded_rows())

    def _update(self, **changes: Any) -> None:
        """A control changed: validate the new FewShot, keep it, and announce it."""
        if self._loading:
            return
        data = self._few_shot.model_dump()
        data.update(changes)
        data["examples"] = [e.model_dump() for e in self.model.examples()]
        self._few_shot = FewShot.model_validate(data)
        self._update_enabled()
        if "example_format" in changes:
            self._check_format()
        self.model.set_excluded(self._excluded_rows())
        self.changed.emit(self.few_shot())

    def _examples_edited(self) -> None:
        self._update()

    def _excluded_rows(self) -> set[int]:
        included = set(select_examples(self._few_shot))
        return set(range(len(self._few_shot.examples))) - included

    def _update_enabled(self) -> None:
        inline = self._few_shot.style is FewShotStyle.INLINE
        self.header_edit.setEnabled(inline)
        self.format_edit.setEnabled(inline)
        self.seed_spin.setEnabled(self._few_shot.order is FewShotOrder.RANDOM)

    def _check_format(self) -> None:
        try:
            check_template(self._few_shot.example_format, "few_shot.example_format")
        except TemplateError as exc:
            self.format_error.setText(str(exc))
            self.format_error.show()
        else:
            self.format_error.clear()
            self.format_error.hide()

    def _update_buttons(self) -> None:
        rows = self.selected_rows()
        count = self.model.rowCount()
        self.delete_button.setEnabled(bool(rows))
        self.up_button.setEnabled(bool(rows) and rows[0] > 0)
        self.down_button.setEnabled(bool(rows) and rows[-1] < count - 1)

    def _show_message(self, text: str, *, error: bool = False) -> None:
        show_message(self.message, text, error=error)


def _plural(count: int) -> str:
    return f"{count} example" if count == 1 else f"{count} examples"
