"""The variants table: what each compared variant runs, edited as text in a table.

A *variant* (`VariantSpec`) is the evaluated prompt (its working copy or a stored
version), or another prompt of the library, on a model, with optional few-shot,
chain-of-thought and soft-prompt overrides. One parser and one formatter per
overridable field, so the table, the delegate's combo boxes and typed text all agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from workbench.core.flows.report import display_name
from workbench.core.models import CoTMode, VariantSpec
from workbench.core.names import unique_name

_Index = QModelIndex | QPersistentModelIndex

# Texts of the "no override" choices in the variants table.
CURRENT = "current"
DEFAULT_MODEL = "default"
AS_PROMPT = "as prompt"
ZERO_SHOT = "0 = zero-shot"
THIS_PROMPT = "this prompt"
NO_TUNED = "none"
SOFT_SUFFIX, LORA_SUFFIX = " (soft prompt)", " (LoRA adapter)"  # as in the Run panel


def version_text(version: int | None) -> str:
    return CURRENT if version is None else f"v{version}"


def model_text(model: str | None) -> str:
    return DEFAULT_MODEL if model is None else model


def few_shot_text(count: int | None) -> str:
    if count is None:
        return AS_PROMPT
    return ZERO_SHOT if count == 0 else str(count)


def cot_text(mode: CoTMode | None) -> str:
    return AS_PROMPT if mode is None else display_name(mode.value)


def _parse_version(text: str) -> object:
    text = text.strip()
    if text in ("", CURRENT):
        return None
    return text[1:] if text[:1] in ("v", "V") else text  # pydantic checks it is an int


def _parse_model(text: str) -> object:
    text = text.strip()
    return None if text in ("", DEFAULT_MODEL) else text


def _parse_few_shot(text: str) -> object:
    text = text.strip()
    if text in ("", AS_PROMPT):
        return None
    if text in (ZERO_SHOT, "zero-shot", "zero_shot"):
        return 0
    return text  # pydantic checks it is a whole number ≥ 0


def _parse_cot(text: str) -> object:
    text = text.strip()
    return None if text in ("", AS_PROMPT) else text.replace("-", "_")


def _by_name(choices: dict[str, str], text: str, none_text: str) -> object:
    """The id of the choice named `text`; None for the "no choice" text; False when no
    choice has that name."""
    text = text.strip()
    if text in ("", none_text):
        return None
    if text in choices:  # an id typed as-is
        return text
    found = [key for key, name in choices.items() if name == text]
    return found[0] if found else False


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return str(error["msg"])


class VariantsModel(QAbstractTableModel):
    """The variants to compare, as an editable table over `list[VariantSpec]`.

    Cells are edited as text (the delegate offers the choices from `ChoicesRole`); every
    edit is validated by pydantic, and a rejected one emits `edit_rejected` with why.
    """

    NAME, PROMPT, VERSION, MODEL, FEW_SHOT, COT, TUNED = range(7)
    HEADERS = ("name", "prompt", "version", "model", "few-shot", "CoT", "tuned")
    ChoicesRole = Qt.ItemDataRole.UserRole + 1
    """list[str]: the values a cell offers (None for the free-text name)."""
    SpecRole = Qt.ItemDataRole.UserRole + 2

    edit_rejected = Signal(str)

    _FIELDS = (
        "name",
        "prompt_id",
        "prompt_version",
        "model",
        "few_shot_count",
        "cot_mode",
        "soft_prompt_id",  # or adapter_id: the tuned column sets one of them
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._specs: list[VariantSpec] = []
        self._versions: list[int] = []
        self._models: list[str] = []
        self._prompts: dict[str, str] = {}  # other prompts: id -> name
        # the prompt's soft prompts and LoRA adapters: id -> the text the column shows
        self._tuned: dict[str, str] = {}
        self._adapters: set[str] = set()  # which of them are LoRA adapters
        self._default_model = ""  # what "default" means now, for the tooltip

    # -- content -------------------------------------------------------------

    def variants(self) -> list[VariantSpec]:
        return [s.model_copy() for s in self._specs]

    def set_variants(self, specs: Sequence[VariantSpec]) -> None:
        self.beginResetModel()
        self._specs = [s.model_copy() for s in specs]
        self.endResetModel()

    def set_choices(
        self,
        versions: Sequence[int],
        models: Sequence[str],
        prompts: Sequence[tuple[str, str]] = (),
        soft_prompts: Sequence[tuple[str, str]] = (),
        adapters: Sequence[tuple[str, str]] = (),
    ) -> None:
        """The prompt's stored versions, the catalogue's model ids, the library's other
        prompts, the prompt's soft prompts and LoRA adapters (each as (id, name))."""
        self._versions = list(versions)
        self._models = list(models)
        self._prompts = dict(prompts)
        self._tuned = {id_: name + SOFT_SUFFIX for id_, name in soft_prompts}
        self._tuned.update((id_, name + LORA_SUFFIX) for id_, name in adapters)
        self._adapters = {id_ for id_, _name in adapters}

    def set_default_model(self, description: str) -> None:
        """What the "default" model is now (the session's selected model and backend)."""
        self._default_model = f" (now {description})" if description else ""

    def add_variant(self, spec: VariantSpec) -> int:
        row = len(self._specs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._specs.append(spec.model_copy())
        self.endInsertRows()
        return row

    def unique_name(self, stem: str = "variant") -> str:
        """`stem N` for the next row number N (or the first free one after it)."""
        taken = [s.name for s in self._specs]
        return unique_name(stem, taken, start=len(self._specs) + 1, bare=False)

    def removeRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        if parent.isValid() or count < 1 or row < 0 or row + count > len(self._specs):
            return False
        self.beginRemoveRows(QModelIndex(), row, row + count - 1)
        del self._specs[row : row + count]
        self.endRemoveRows()
        return True

    # -- read ----------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._specs)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def _text(self, spec: VariantSpec, column: int) -> str:
        if column == self.NAME:
            return spec.name
        if column == self.PROMPT:
            if spec.prompt_id is None:
                return THIS_PROMPT
            return self._prompts.get(spec.prompt_id, spec.prompt_id)
        if column == self.TUNED:
            tuned = spec.adapter_id or spec.soft_prompt_id
            return NO_TUNED if tuned is None else self._tuned.get(tuned, tuned)
        if column == self.VERSION:
            return version_text(spec.prompt_version)
        if column == self.MODEL:
            text = model_text(spec.model)
            return f"{text} ({spec.backend})" if spec.backend else text
        if column == self.FEW_SHOT:
            return few_shot_text(spec.few_shot_count)
        return cot_text(spec.cot_mode)

    def choices(self, column: int) -> list[str] | None:
        if column == self.PROMPT:
            return [THIS_PROMPT, *self._prompts.values()]
        if column == self.TUNED:
            return [NO_TUNED, *self._tuned.values()]
        if column == self.VERSION:
            return [CURRENT, *(version_text(v) for v in self._versions)]
        if column == self.MODEL:
            return [DEFAULT_MODEL, *self._models]
        if column == self.FEW_SHOT:
            return [AS_PROMPT, ZERO_SHOT, *(str(k) for k in range(1, 9))]
        if column == self.COT:
            return [AS_PROMPT, *(display_name(m.value) for m in CoTMode)]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._specs):
            return None
        spec = self._specs[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(spec, column)
        if role == Qt.ItemDataRole.EditRole:
            # the backend suffix is display-only: editing picks a model id
            return model_text(spec.model) if column == self.MODEL else self._text(spec, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in (self.NAME, self.MODEL, self.TUNED):  # long names elide: whole here
                return f"{self._text(spec, column)}\n{self._tooltip(column)}"
            return self._tooltip(column)
        if role == self.ChoicesRole:
            return self.choices(column)
        if role == self.SpecRole:
            return spec.model_copy()
        return None

    def _tooltip(self, column: int) -> str:
        return (
            "The column's name in the results",
            "The prompt to run: this one, or another prompt of the library on the same rows",
            "The prompt version to run: the current working copy or a stored version",
            "default = the model picked in the Run panel" + self._default_model,
            "How many few-shot examples: as the prompt says, 0 (zero-shot), or K",
            "Chain-of-thought mode: as the prompt says, or a mode to force",
            "Run with one of this prompt's soft prompts or LoRA adapters (local models "
            "only; a LoRA adapter runs on transformers, or on llama.cpp with a GGUF model, "
            "and is taken out of the model after its variant)",
        )[column]

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return str(section + 1)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    # -- write ---------------------------------------------------------------

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        if not 0 <= index.row() < len(self._specs):
            return False
        column = index.column()
        text = str(value if value is not None else "")
        raw: object
        if column == self.NAME:
            raw = text.strip()
            if not raw:
                self.edit_rejected.emit("A variant needs a name.")
                return False
        elif column == self.PROMPT:
            raw = _by_name(self._prompts, text, THIS_PROMPT)
            if raw is False:
                self.edit_rejected.emit(f"No prompt named {text!r} in the library.")
                return False
        elif column == self.TUNED:
            raw = _by_name(self._tuned, text, NO_TUNED)
            if raw is False:
                self.edit_rejected.emit(
                    f"This prompt has no soft prompt or LoRA adapter named {text!r}."
                )
                return False
        elif column == self.VERSION:
            raw = _parse_version(text)
            if raw is not None and self._specs[index.row()].prompt_id is not None:
                self.edit_rejected.emit(
                    f"Versions are the evaluated prompt's; set the prompt to {THIS_PROMPT!r} first."
                )
                return False
        elif column == self.MODEL:
            raw = _parse_model(text)
            if raw is not None and self._models and raw not in self._models:
                self.edit_rejected.emit(f"No model {raw!r} (known: {', '.join(self._models)}).")
                return False
        elif column == self.FEW_SHOT:
            raw = _parse_few_shot(text)
        else:
            raw = _parse_cot(text)
        spec = self._specs[index.row()]
        data = spec.model_dump()
        if column == self.TUNED:  # a soft prompt or a LoRA adapter, never both
            lora = raw in self._adapters
            data["soft_prompt_id"], data["adapter_id"] = (None, raw) if lora else (raw, None)
        else:
            data[self._FIELDS[column]] = raw
        if column == self.MODEL:
            data["backend"] = None  # a backend override belonged to the previous model
        if column == self.PROMPT:
            data["prompt_version"] = None  # versions belong to the evaluated prompt
        try:
            new = VariantSpec.model_validate(data)
        except ValidationError as exc:
            label = self.HEADERS[column]
            self.edit_rejected.emit(f"{label} {text!r}: {_first_error(exc)}")
            return False
        version = new.prompt_version
        if column == self.VERSION and version is not None and version not in self._versions:
            self.edit_rejected.emit(f"The prompt has no stored version {version}.")
            return False
        if new == spec:
            return True
        self._specs[index.row()] = new
        self.dataChanged.emit(
            index,
            index,
            [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole],
        )
        return True


class VariantDelegate(QStyledItemDelegate):
    """Combo boxes for the choice columns (editable for few-shot, to type any K)."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: _Index) -> QWidget:
        choices = index.data(VariantsModel.ChoicesRole)
        if not choices:
            return super().createEditor(parent, option, index)
        combo = QComboBox(parent)
        combo.addItems(list(choices))
        combo.setEditable(index.column() == VariantsModel.FEW_SHOT)
        # one click on a choice commits it: no extra Enter needed
        combo.activated.connect(lambda _i: self._commit(combo))
        return combo

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)

    def setEditorData(self, editor: QWidget, index: _Index) -> None:
        if isinstance(editor, QComboBox):
            editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole)))
        else:
            super().setEditorData(editor, index)

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: _Index) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
        else:
            super().setModelData(editor, model, index)
