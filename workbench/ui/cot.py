"""The chain-of-thought panel: edits a prompt's `ChainOfThought` block.

`CoTPanel` offers the four modes (off, zero-shot trigger, reasoning scaffold,
multi-step chain), one page each, and emits `changed` with a freshly validated
`ChainOfThought` after every edit. Problems never open dialogs: schema errors
(an invalid answer regex, a rejected step name) go to an error label and are not
emitted; template problems (syntax errors, a step reading a later step's output)
are shown next to the template but still emitted, so unfinished work is kept.

`ChainStepsModel` adapts the list of `ChainStep` for the step list view.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.models import BUILTIN_TRIGGERS, ChainOfThought, ChainStep, CoTMode, Prompt
from workbench.core.names import unique_name
from workbench.core.templates import TemplateError, template_variables
from workbench.ui.rows import RowList
from workbench.ui.widgets import ERROR_COLOR, ERROR_STYLE

_Index = QModelIndex | QPersistentModelIndex
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Combo box entries, in the order of the stacked pages.
_MODES: tuple[tuple[CoTMode, str], ...] = (
    (CoTMode.OFF, "Off"),
    (CoTMode.ZERO_SHOT, "Zero-shot trigger"),
    (CoTMode.SCAFFOLD, "Reasoning scaffold"),
    (CoTMode.CHAIN, "Multi-step chain"),
)
_FIELD_LABELS = {
    "mode": "Mode",
    "trigger": "Trigger",
    "scaffold": "Scaffold",
    "answer_pattern": "Answer pattern",
    "steps": "Steps",
}


def _braces(name: str) -> str:
    return "{{ " + name + " }}"


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        label = _FIELD_LABELS.get(loc, loc or "Chain of thought")
        parts.append(f"{label}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


@lru_cache(maxsize=512)
def _step_problem(name: str, template: str, system: str | None, later: frozenset[str]) -> str:
    """Why a step cannot render, independent of the values ("" = fine).

    Cached because the list view asks for it on every repaint."""
    problems = []
    sources = [("template", template)] + ([("system", system)] if system else [])
    for field, source in sources:
        try:
            used = template_variables(source, field)
        except TemplateError as exc:
            problems.append(str(exc))
            continue
        too_late = [n for n in used if n in later]
        if too_late:
            names = ", ".join(repr(n) for n in too_late)
            where = "" if field == "template" else " (in its system message)"
            own = " (its own output)" if name in too_late else ""
            problems.append(
                f"step {name!r} uses the output of {names}{own}{where}, which has not run yet: "
                "only earlier steps' outputs are available"
            )
    return "\n".join(problems)


class ChainStepsModel(RowList, QAbstractListModel):
    """The steps of a chain; the display text is the step name, which is editable.

    Steps are never mutated in place (emitted `ChainOfThought`s may share them);
    an edit replaces the step with a validated copy.
    """

    TemplateRole = Qt.ItemDataRole.UserRole + 1
    SystemRole = Qt.ItemDataRole.UserRole + 2
    ErrorRole = Qt.ItemDataRole.UserRole + 3

    nameRejected = Signal(str)
    """A name edit was refused; the argument says why."""

    def __init__(self, steps: Iterable[ChainStep] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._steps: list[ChainStep] = list(steps)

    # -- plain accessors

    def steps(self) -> list[ChainStep]:
        return list(self._steps)

    def set_steps(self, steps: Iterable[ChainStep]) -> None:
        self.beginResetModel()
        self._steps = list(steps)
        self.endResetModel()

    def step(self, row: int) -> ChainStep | None:
        return self._steps[row] if 0 <= row < len(self._steps) else None

    def names(self) -> list[str]:
        return [s.name for s in self._steps]

    def unique_name(self, stem: str = "step") -> str:
        """The first free "step1", "step2", … (always numbered: steps are variables)."""
        return unique_name(stem, self.names(), "{stem}{n}", start=1, bare=False)

    def name_problem(self, row: int, name: str) -> str | None:
        """Why `name` cannot be the name of the step at `row` (None = it can)."""
        if not _IDENT.match(name):
            return f"step name {name!r} must be usable as a variable name (letters, digits, _)"
        if any(s.name == name for i, s in enumerate(self._steps) if i != row):
            return f"there is already a step named {name!r}"
        return None

    def available_outputs(self, row: int) -> list[str]:
        """Names of the steps whose outputs the step at `row` may use."""
        return [s.name for s in self._steps[: max(row, 0)]]

    def step_error(self, row: int) -> str:
        """Why the step at `row` cannot render ("" = fine)."""
        step = self.step(row)
        if step is None:
            return ""
        later = frozenset(s.name for s in self._steps[row:])
        return _step_problem(step.name, step.template, step.system, later)

    def insert_step(self, row: int, step: ChainStep) -> bool:
        if not 0 <= row <= len(self._steps) or self.name_problem(-1, step.name):
            return False
        self.beginInsertRows(QModelIndex(), row, row)
        self._steps.insert(row, step)
        self.endInsertRows()
        return True

    # -- Qt model interface

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._steps)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        step = self.step(index.row()) if index.isValid() else None
        if step is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return step.name
        if role == self.TemplateRole:
            return step.template
        if role == self.SystemRole:
            return step.system
        if role == self.ErrorRole:
            return self.step_error(index.row()) or None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.step_error(index.row()) or step.template
        if role == Qt.ItemDataRole.ForegroundRole and self.step_error(index.row()):
            return QBrush(QColor(ERROR_COLOR))
        return None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        step = self.step(index.row()) if index.isValid() else None
        if step is None:
            return False
        if role == Qt.ItemDataRole.EditRole:
            name = str(value).strip()
            problem = self.name_problem(index.row(), name)
            if problem:
                self.nameRejected.emit(problem)
                return False
            update: dict[str, Any] = {"name": name}
        elif role == self.TemplateRole:
            update = {"template": str(value)}
        elif role == self.SystemRole:
            update = {"system": str(value) if value else None}
        else:
            return False
        new = ChainStep.model_validate({**step.model_dump(), **update})
        if new == step:
            return True
        self._steps[index.row()] = new
        # a rename or template edit can change every other step's error state
        self.dataChanged.emit(self.index(0), self.index(len(self._steps) - 1))
        return True

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return super().flags(index)
        return (
            Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsEditable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names[self.TemplateRole] = QByteArray(b"template")
        names[self.SystemRole] = QByteArray(b"system")
        names[self.ErrorRole] = QByteArray(b"error")
        return names

    def insertRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        """Insert `count` steps with fresh names and empty templates."""
        if parent.isValid() or count < 1 or not 0 <= row <= len(self._steps):
            return False
        self.beginInsertRows(QModelIndex(), row, row + count - 1)
        for offset in range(count):
            step = ChainStep(name=self.unique_name(), template="")
            self._steps.insert(row + offset, step)
        self.endInsertRows()
        return True

    def _row_list(self) -> list[ChainStep]:
        return self._steps  # removeRows and moveRows come from RowList


def _error_label(object_name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setStyleSheet(ERROR_STYLE)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _help_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def _set_error(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


class CoTPanel(QWidget):
    """Edits one prompt's chain-of-thought block; see the module docstring."""

    changed = Signal(object)
    """A new, validated `ChainOfThought`, after each user edit (never from set_prompt)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._prompt: Prompt | None = None
        self._cot = ChainOfThought()
        self._loading = False

        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("cotMode")
        for mode, label in _MODES:
            self.mode_combo.addItem(label, mode.value)

        self.stack = QStackedWidget()
        self.stack.setObjectName("cotPages")
        self.stack.addWidget(self._off_page())
        self.stack.addWidget(self._zero_shot_page())
        self.stack.addWidget(self._scaffold_page())
        self.stack.addWidget(self._chain_page())

        # One answer-pattern field shared by the two modes that use it.
        self.answer_pattern = QLineEdit()
        self.answer_pattern.setObjectName("cotAnswerPattern")
        self.answer_pattern.setPlaceholderText("empty = the whole output is the answer")
        self.answer_pattern.setToolTip(
            "Regular expression whose first group extracts the final answer from the "
            "reasoning (the last match wins)."
        )
        self.answer_row = QWidget()
        answer_layout = QHBoxLayout(self.answer_row)
        answer_layout.setContentsMargins(0, 0, 0, 0)
        answer_layout.addWidget(QLabel("Answer pattern:"))
        answer_layout.addWidget(self.answer_pattern, 1)

        self.error_label = _error_label("cotError")

        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Chain of thought:"))
        mode_row.addWidget(self.mode_combo, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(mode_row)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.answer_row)
        layout.addWidget(self.error_label)

        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.trigger_combo.currentTextChanged.connect(self._emit)
        self.answer_pattern.textChanged.connect(self._emit)
        self.scaffold_edit.textChanged.connect(self._scaffold_changed)
        self.step_template.textChanged.connect(self._step_template_changed)
        self.step_system.textChanged.connect(self._step_system_changed)
        for signal in (
            self.steps_model.dataChanged,
            self.steps_model.rowsInserted,
            self.steps_model.rowsRemoved,
            self.steps_model.rowsMoved,
        ):
            signal.connect(self._steps_changed)
        self.steps_model.nameRejected.connect(self._show_error)
        self.steps_view.selectionModel().currentChanged.connect(self._load_step_editors)
        self.add_button.clicked.connect(self._add_step)
        self.remove_button.clicked.connect(self._remove_step)
        self.up_button.clicked.connect(lambda: self._move_step(-1))
        self.down_button.clicked.connect(lambda: self._move_step(+1))

        self._load(self._cot)

    # -- pages

    def _off_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("cotPageOff")
        layout = QVBoxLayout(page)
        layout.addWidget(
            _help_label(
                "No chain of thought: the model gets the prompt as written and answers "
                "directly. Pick a mode above to make it reason first."
            )
        )
        layout.addStretch(1)
        return page

    def _zero_shot_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("cotPageZeroShot")
        self.trigger_combo = QComboBox()
        self.trigger_combo.setObjectName("cotTrigger")
        self.trigger_combo.setEditable(True)
        self.trigger_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.trigger_combo.addItems(list(BUILTIN_TRIGGERS))
        layout = QVBoxLayout(page)
        layout.addWidget(
            _help_label(
                "A trigger sentence is appended to the user turn. Pick one or type your own."
            )
        )
        layout.addWidget(self.trigger_combo)
        layout.addStretch(1)
        return page

    def _scaffold_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("cotPageScaffold")
        self.scaffold_edit = QPlainTextEdit()
        self.scaffold_edit.setObjectName("cotScaffold")
        self.scaffold_variables = QLabel()
        self.scaffold_variables.setObjectName("cotScaffoldVariables")
        self.scaffold_variables.setWordWrap(True)
        self.scaffold_variables.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout = QVBoxLayout(page)
        layout.addWidget(
            _help_label(
                "The scaffold template wraps the user turn: {{ user }} is the rendered user "
                "turn, and the prompt's own variables can be used too."
            )
        )
        layout.addWidget(self.scaffold_edit, 1)
        layout.addWidget(self.scaffold_variables)
        return page

    def _chain_page(self) -> QWidget:
        page = QWidget()
        page.setObjectName("cotPageChain")
        self.steps_model = ChainStepsModel(parent=self)
        self.steps_view = QListView()
        self.steps_view.setObjectName("chainSteps")
        self.steps_view.setModel(self.steps_model)
        self.steps_view.setToolTip("Double-click a step to rename it.")

        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        buttons = QHBoxLayout()
        for button, name in (
            (self.add_button, "addStep"),
            (self.remove_button, "removeStep"),
            (self.up_button, "stepUp"),
            (self.down_button, "stepDown"),
        ):
            button.setObjectName(name)
            buttons.addWidget(button)

        self.step_template = QPlainTextEdit()
        self.step_template.setObjectName("stepTemplate")
        self.step_system = QPlainTextEdit()
        self.step_system.setObjectName("stepSystem")
        self.step_system.setPlaceholderText("empty = the prompt's system message")
        self.step_hint = QLabel()
        self.step_hint.setObjectName("stepHint")
        self.step_hint.setWordWrap(True)
        self.step_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.step_error = _error_label("stepError")

        steps_side = QVBoxLayout()
        steps_side.addWidget(self.steps_view, 1)
        steps_side.addLayout(buttons)
        editor_side = QVBoxLayout()
        editor_side.addWidget(QLabel("Step template:"))
        editor_side.addWidget(self.step_template, 2)
        editor_side.addWidget(self.step_hint)
        editor_side.addWidget(self.step_error)
        editor_side.addWidget(QLabel("System message for this step:"))
        editor_side.addWidget(self.step_system, 1)
        columns = QHBoxLayout()
        columns.addLayout(steps_side, 1)
        columns.addLayout(editor_side, 2)

        layout = QVBoxLayout(page)
        layout.addWidget(
            _help_label(
                "Each step is its own call; a step's output becomes a variable named after "
                "the step, available to the steps after it. The last step's output is the answer."
            )
        )
        layout.addLayout(columns, 1)
        return page

    # -- public interface

    def set_prompt(self, prompt: Prompt) -> None:
        """Show `prompt`'s chain-of-thought block (emits nothing)."""
        same = (
            self._prompt is not None
            and self._prompt.id == prompt.id
            and prompt.cot == self._cot
            and not self.error_label.text()
        )
        self._prompt = prompt
        self.step_system.setPlaceholderText(
            f"empty = the prompt's system message: {prompt.system}"
            if prompt.system
            else "empty = the prompt's system message (which is empty)"
        )
        # The window may echo our own change back; reloading would move the cursor.
        if not same:
            self._load(prompt.cot)

    def chain_of_thought(self) -> ChainOfThought:
        """The current block: the last valid state (an invalid edit is not included)."""
        return self._cot.model_copy(deep=True)

    # -- loading and emitting

    def _load(self, cot: ChainOfThought) -> None:
        self._loading = True
        try:
            self._cot = cot.model_copy(deep=True)
            self.mode_combo.setCurrentIndex(self._mode_index(cot.mode))
            self._show_mode_page()
            self.trigger_combo.setCurrentIndex(self.trigger_combo.findText(cot.trigger))
            self.trigger_combo.setEditText(cot.trigger)
            self.answer_pattern.setText(cot.answer_pattern or "")
            self.scaffold_edit.setPlainText(cot.scaffold)
            self.steps_model.set_steps(self._cot.steps)
            if self.steps_model.rowCount():
                self.steps_view.setCurrentIndex(self.steps_model.index(0))
        finally:
            self._loading = False
        self._load_step_editors()
        self._refresh_scaffold_label()
        self._show_error("")

    def _read(self) -> ChainOfThought:
        return ChainOfThought(
            mode=self._current_mode(),
            trigger=self.trigger_combo.currentText(),
            scaffold=self.scaffold_edit.toPlainText(),
            answer_pattern=self.answer_pattern.text() or None,
            steps=self.steps_model.steps(),
        )

    def _emit(self) -> None:
        if self._loading:
            return
        try:
            cot = self._read()
        except ValidationError as exc:
            self._show_error(_validation_text(exc))
            return
        self._show_error("")
        self._cot = cot
        self.changed.emit(cot.model_copy(deep=True))

    def _show_error(self, text: str) -> None:
        _set_error(self.error_label, text)

    # -- modes

    @staticmethod
    def _mode_index(mode: CoTMode) -> int:
        return next(i for i, (m, _) in enumerate(_MODES) if m is mode)

    def _current_mode(self) -> CoTMode:
        return _MODES[max(self.mode_combo.currentIndex(), 0)][0]

    def _show_mode_page(self) -> None:
        mode = self._current_mode()
        self.stack.setCurrentIndex(self._mode_index(mode))
        self.answer_row.setVisible(mode in (CoTMode.ZERO_SHOT, CoTMode.SCAFFOLD))

    def _mode_changed(self) -> None:
        self._show_mode_page()
        self._emit()

    # -- scaffold

    def _scaffold_changed(self) -> None:
        self._refresh_scaffold_label()
        self._emit()

    def _refresh_scaffold_label(self) -> None:
        try:
            used = template_variables(self.scaffold_edit.toPlainText(), "scaffold")
        except TemplateError as exc:
            text = f"Template error — line {exc.line}, column {exc.column}: {exc.message}"
            self.scaffold_variables.setStyleSheet(ERROR_STYLE)
        else:
            names = ", ".join(_braces(n) for n in used) or "none"
            text = f"Variables used: {names}"
            if "user" not in used:
                text += " — without {{ user }} the user turn is left out"
            self.scaffold_variables.setStyleSheet("")
        self.scaffold_variables.setText(text)

    # -- chain

    def _current_row(self) -> int:
        index = self.steps_view.currentIndex()
        return index.row() if index.isValid() else -1

    def _steps_changed(self) -> None:
        self._refresh_step_labels()
        self._update_buttons()
        self._emit()

    def _load_step_editors(self) -> None:
        step = self.steps_model.step(self._current_row())
        loading, self._loading = self._loading, True
        try:
            self.step_template.setPlainText(step.template if step else "")
            self.step_system.setPlainText((step.system or "") if step else "")
        finally:
            self._loading = loading
        self.step_template.setEnabled(step is not None)
        self.step_system.setEnabled(step is not None)
        self._refresh_step_labels()
        self._update_buttons()

    def _refresh_step_labels(self) -> None:
        row = self._current_row()
        if self.steps_model.step(row) is None:
            hint = (
                "Select a step to edit it."
                if self.steps_model.rowCount()
                else "Add a step to start the chain."
            )
            self.step_hint.setText(hint)
            _set_error(self.step_error, "")
            return
        earlier = self.steps_model.available_outputs(row)
        if earlier:
            names = ", ".join(_braces(n) for n in earlier)
            self.step_hint.setText(f"available: {names} (and the prompt's variables)")
        else:
            self.step_hint.setText("available: the prompt's variables (this is the first step)")
        _set_error(self.step_error, self.steps_model.step_error(row))

    def _update_buttons(self) -> None:
        row = self._current_row()
        count = self.steps_model.rowCount()
        self.remove_button.setEnabled(row >= 0)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < count - 1)

    def _step_template_changed(self) -> None:
        if not self._loading:
            index = self.steps_view.currentIndex()
            self.steps_model.setData(
                index, self.step_template.toPlainText(), ChainStepsModel.TemplateRole
            )

    def _step_system_changed(self) -> None:
        if not self._loading:
            index = self.steps_view.currentIndex()
            self.steps_model.setData(
                index, self.step_system.toPlainText(), ChainStepsModel.SystemRole
            )

    def _default_template(self, row: int) -> str:
        """The first step starts as the prompt's user turn, later ones read the step before."""
        if row == 0:
            return self._prompt.user_template if self._prompt else ""
        previous = self.steps_model.step(row - 1)
        return _braces(previous.name) if previous else ""

    def _add_step(self) -> None:
        current = self._current_row()
        row = current + 1 if current >= 0 else self.steps_model.rowCount()
        step = ChainStep(name=self.steps_model.unique_name(), template=self._default_template(row))
        if self.steps_model.insert_step(row, step):
            self.steps_view.setCurrentIndex(self.steps_model.index(row))

    def _remove_step(self) -> None:
        row = self._current_row()
        if row >= 0 and self.steps_model.removeRows(row, 1):
            remaining = self.steps_model.rowCount()
            if remaining:
                self.steps_view.setCurrentIndex(self.steps_model.index(min(row, remaining - 1)))
            # the view may already have moved its current index without telling us
            self._load_step_editors()

    def _move_step(self, delta: int) -> None:
        row = self._current_row()
        if row < 0:
            return
        # moveRows takes the destination as a row of the old order
        destination = row - 1 if delta < 0 else row + 2
        self.steps_model.moveRows(QModelIndex(), row, 1, QModelIndex(), destination)
