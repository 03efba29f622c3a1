"""The Evaluate panel: run prompt variants over a test set and compare them.

A *variant* (`VariantSpec`) is the working prompt, or one of its stored versions, on a
model, with optional few-shot and chain-of-thought overrides. `EvaluatePanel` lists the
variants (`VariantsModel`), the options (test set, split, mode, metrics, limit), and runs
them as ONE background job through the window's `JobRunner` — the core `evaluate()`
generator runs on the worker thread; its events arrive here in batches and fill the
results grid (`ResultsGridModel`: one row per case, one column per variant) and the
aggregate table (`SummaryModel`: metrics × variants) live. The finished (or stopped)
`EvalRun` is stored in the library and listed in the panel's history, from where any
earlier run can be shown again and exported as CSV or JSON.

The GUI thread never calls a model: backends are loaded and used only inside the job.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

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
from PySide6.QtGui import QColor, QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import Backend, BackendError, BackendSettings
from workbench.core.backends.registry import load_backend
from workbench.core.evaluation import (
    COST_METRICS,
    DEFAULT_METRICS,
    TEXT_METRICS,
    CaseDone,
    EvalEvent,
    EvalFinished,
    EvaluationError,
    Mode,
    Progress,
    choose_mode,
    evaluate,
    primary_metric,
    summarise,
)
from workbench.core.evaluation import export_csv as run_to_csv
from workbench.core.evaluation import export_json as run_to_json
from workbench.core.fsutil import atomic_write_text
from workbench.core.library import Library, LibraryError
from workbench.core.models import (
    CaseResult,
    CoTMode,
    EvalRun,
    ModelSpec,
    Prompt,
    TestRow,
    TestSet,
    VariantSpec,
)
from workbench.core.softprompt import load_soft_prompt_tensor
from workbench.core.testsets_io import rows_in_split
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.models import NewestFirstModel
from workbench.ui.run import RunPanel, describe_error
from workbench.ui.widgets import named, side_by_side, titled_column

_Index = QModelIndex | QPersistentModelIndex
_W = TypeVar("_W", bound=QWidget)
Split = Literal["train", "validation", "test"]
BackendKey = tuple[str, str]
"""(model id, backend name) — the same key as `RunPanel._backend_key`."""

# Texts of the "no override" choices in the variants table.
CURRENT = "current"
DEFAULT_MODEL = "default"
AS_PROMPT = "as prompt"
ZERO_SHOT = "0 = zero-shot"
THIS_PROMPT = "this prompt"
NO_SOFT_PROMPT = "none"

PASS_THRESHOLD = 0.5
"""A case passes when its primary-metric score reaches this (1.0 / 0.0 for the match
metrics; the middle for token F1, whose partial scores would otherwise all be red)."""
PASS_COLOUR = QColor("#c6efce")
FAIL_COLOUR = QColor("#f8cbcb")
CELL_TEXT_COLOUR = QColor("#111111")  # readable on the pale colours in dark themes too

METRIC_LABELS: dict[str, str] = {
    "label": "label accuracy",
    "exact": "exact match",
    "normalised": "normalised match",
    "contains": "contains",
    "regex": "regex match",
    "f1": "token F1",
    "latency_s": "latency",
    "context_tokens": "context tokens",
    "completion_tokens": "completion tokens",
    "errors": "errors",
}


# ---------------------------------------------------------------------------
# Variant cell texts: one parser and one formatter per overridable field, so the
# table, the delegate's combo boxes and typed text all agree.


def version_text(version: int | None) -> str:
    return CURRENT if version is None else f"v{version}"


def model_text(model: str | None) -> str:
    return DEFAULT_MODEL if model is None else model


def few_shot_text(count: int | None) -> str:
    if count is None:
        return AS_PROMPT
    return ZERO_SHOT if count == 0 else str(count)


def cot_text(mode: CoTMode | None) -> str:
    return AS_PROMPT if mode is None else mode.value


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


def format_metric(key: str, value: float | None) -> str:
    """A metric value as the summary shows it (the CLI's `format_table` conventions)."""
    if value is None:
        return "–"
    if key == "latency_s":
        return f"{value * 1000:.0f} ms"
    if key in ("context_tokens", "completion_tokens", "errors"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


# ---------------------------------------------------------------------------
# The variants table


class VariantsModel(QAbstractTableModel):
    """The variants to compare, as an editable table over `list[VariantSpec]`.

    Cells are edited as text (the delegate offers the choices from `ChoicesRole`); every
    edit is validated by pydantic, and a rejected one emits `edit_rejected` with why.
    """

    NAME, PROMPT, VERSION, MODEL, FEW_SHOT, COT, SOFT = range(7)
    HEADERS = ("name", "prompt", "prompt version", "model", "few-shot", "CoT", "soft prompt")
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
        "soft_prompt_id",
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._specs: list[VariantSpec] = []
        self._versions: list[int] = []
        self._models: list[str] = []
        self._prompts: dict[str, str] = {}  # other prompts: id -> name
        self._soft: dict[str, str] = {}  # the prompt's soft prompts: id -> name

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
    ) -> None:
        """The prompt's stored versions, the catalogue's model ids, the library's other
        prompts and the prompt's soft prompts (each as (id, name))."""
        self._versions = list(versions)
        self._models = list(models)
        self._prompts = dict(prompts)
        self._soft = dict(soft_prompts)

    def add_variant(self, spec: VariantSpec) -> int:
        row = len(self._specs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._specs.append(spec.model_copy())
        self.endInsertRows()
        return row

    def unique_name(self, stem: str = "variant") -> str:
        taken = {s.name for s in self._specs}
        n = len(self._specs) + 1
        while f"{stem} {n}" in taken:
            n += 1
        return f"{stem} {n}"

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
        if column == self.SOFT:
            if spec.soft_prompt_id is None:
                return NO_SOFT_PROMPT
            return self._soft.get(spec.soft_prompt_id, spec.soft_prompt_id)
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
        if column == self.SOFT:
            return [NO_SOFT_PROMPT, *self._soft.values()]
        if column == self.VERSION:
            return [CURRENT, *(version_text(v) for v in self._versions)]
        if column == self.MODEL:
            return [DEFAULT_MODEL, *self._models]
        if column == self.FEW_SHOT:
            return [AS_PROMPT, ZERO_SHOT, *(str(k) for k in range(1, 9))]
        if column == self.COT:
            return [AS_PROMPT, *(m.value for m in CoTMode)]
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
            "default = the model picked in the Run panel",
            "How many few-shot examples: as the prompt says, 0 (zero-shot), or K",
            "Chain-of-thought mode: as the prompt says, or a mode to force",
            "Run with one of this prompt's soft prompts (local models only)",
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
        elif column == self.SOFT:
            raw = _by_name(self._soft, text, NO_SOFT_PROMPT)
            if raw is False:
                self.edit_rejected.emit(f"This prompt has no soft prompt named {text!r}.")
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


# ---------------------------------------------------------------------------
# Results


def _passed(result: CaseResult, primary: str) -> bool:
    return result.error is None and result.scores.get(primary, 0.0) >= PASS_THRESHOLD


def _one_line(text: str, limit: int = 120) -> str:
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    if len(line) > limit:
        return line[: limit - 1] + "…"
    return line + (" …" if line != stripped else "")


def case_tooltip(result: CaseResult, metrics: Sequence[str]) -> str:
    """Everything about one case: the full output, scores, label scores, cost, error."""
    parts: list[str] = []
    if result.error:
        parts.append(f"<b>Error:</b> {html.escape(result.error)}")
    parts.append(f"<b>Output:</b><pre>{html.escape(result.output) or '(empty)'}</pre>")
    if result.answer != result.output:
        parts.append(f"<b>Answer:</b> {html.escape(result.answer)}")
    scores = [
        f"{METRIC_LABELS.get(m, m)} {result.scores[m]:.3f}" for m in metrics if m in result.scores
    ]
    if scores:
        parts.append("<b>Scores:</b> " + html.escape(" · ".join(scores)))
    if result.label_scores:
        best = sorted(result.label_scores.items(), key=lambda kv: kv[1], reverse=True)
        rows = "<br>".join(f"{html.escape(label)}: {score:.3f}" for label, score in best)
        parts.append(f"<b>Label log-likelihoods:</b><br>{rows}")
    cost = [f"latency {result.latency_s * 1000:.0f} ms"]
    if result.context_tokens is not None:
        cost.append(f"{result.context_tokens} context tokens")
    if result.completion_tokens:
        cost.append(f"{result.completion_tokens} generated")
    parts.append(" · ".join(cost))
    return "<qt>" + "<br>".join(parts) + "</qt>"


class ResultsGridModel(QAbstractTableModel):
    """One row per case (in the order results arrive), then one column per variant.

    The first columns are the case's variables and expected value (or a single
    "variables" column reading "unknown" when the run's test set is gone). A variant
    cell shows the answer, green when it passes the run's primary metric, red when not.
    """

    ResultRole = Qt.ItemDataRole.UserRole + 1
    """The cell's `CaseResult` (None for a case the variant has not reached)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run: EvalRun | None = None
        self._test_set: TestSet | None = None
        self._var_names: list[str] = []
        self._rows: list[int] = []  # the test-set row of each grid row
        self._position: dict[int, int] = {}  # and back: test-set row -> grid row
        self._cells: dict[tuple[int, int], CaseResult] = {}
        self._primary = "normalised"

    def set_run(self, run: EvalRun | None, test_set: TestSet | None) -> None:
        """Show `run` (results included); `test_set` None = its rows are unknown."""
        self.beginResetModel()
        self._run = run
        self._test_set = test_set
        self._cells = {}
        self._rows = []
        self._position = {}
        if test_set is not None:
            self._var_names = sorted({k for row in test_set.rows for k in row.vars})
        else:
            self._var_names = []
        if run is not None:
            self._primary = primary_metric(run)
            for variant, results in enumerate(run.results):
                for result in results:
                    self._put(variant, result)
        self.endResetModel()

    def _put(self, variant: int, result: CaseResult) -> None:
        self._cells[(variant, result.row)] = result
        if result.row not in self._position:
            self._position[result.row] = len(self._rows)
            self._rows.append(result.row)

    def add_results(self, items: Sequence[tuple[int, CaseResult]]) -> None:
        """Live results of the run shown (already appended to its `results`)."""
        for variant, result in items:
            if result.row in self._position:
                self._cells[(variant, result.row)] = result
                index = self.index(self._position[result.row], self._variant_column(variant))
                self.dataChanged.emit(index, index)
            else:
                position = len(self._rows)
                self.beginInsertRows(QModelIndex(), position, position)
                self._put(variant, result)
                self.endInsertRows()

    # -- layout ---------------------------------------------------------------

    def _lead_columns(self) -> list[str]:
        if self._run is None:
            return []
        names = self._var_names if self._test_set is not None else ["variables"]
        return [*names, "expected"]

    def _variant_column(self, variant: int) -> int:
        return len(self._lead_columns()) + variant

    def case_rows(self) -> list[int]:
        """The test-set row index of each grid row."""
        return list(self._rows)

    def variant_columns(self) -> list[int]:
        lead = len(self._lead_columns())
        return [lead + i for i in range(len(self._run.variants if self._run else []))]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._run is None:
            return 0
        return len(self._lead_columns()) + len(self._run.variants)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if self._run is None:
            return None
        if orientation == Qt.Orientation.Vertical:
            if not 0 <= section < len(self._rows):
                return None
            row = self._rows[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return str(row + 1)  # the row number as the test-set panel counts
            case = self._case(row)
            if role == Qt.ItemDataRole.ToolTipRole and case is not None and case.group:
                return f"group {case.group}"
            return None
        lead = self._lead_columns()
        if role == Qt.ItemDataRole.DisplayRole:
            if 0 <= section < len(lead):
                return lead[section]
            variant = section - len(lead)
            if 0 <= variant < len(self._run.variants):
                return self._run.variants[variant].name
        if role == Qt.ItemDataRole.ToolTipRole:
            variant = section - len(lead)
            if 0 <= variant < len(self._run.variants):
                spec = self._run.variants[variant]
                return (
                    f"{spec.name}: prompt {version_text(spec.prompt_version)}, "
                    f"model {model_text(spec.model)}, few-shot {few_shot_text(spec.few_shot_count)}"
                    f", CoT {cot_text(spec.cot_mode)}; colour = {self._primary}"
                )
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._run is None or not index.isValid():
            return None
        if not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        lead = self._lead_columns()
        column = index.column()
        if 0 <= column < len(lead):
            return self._lead_data(row, lead[column], column == len(lead) - 1, role)
        variant = column - len(lead)
        if not 0 <= variant < len(self._run.variants):
            return None
        result = self._cells.get((variant, row))
        if role == self.ResultRole:
            return result
        if result is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return ""
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "⚠ error" if result.error else _one_line(result.answer or result.output)
        if role == Qt.ItemDataRole.BackgroundRole:
            return PASS_COLOUR if _passed(result, self._primary) else FAIL_COLOUR
        if role == Qt.ItemDataRole.ForegroundRole:
            return CELL_TEXT_COLOUR
        if role == Qt.ItemDataRole.ToolTipRole:
            return case_tooltip(result, self._run.metrics)
        return None

    def _case(self, row: int) -> TestRow | None:
        test_set = self._test_set
        return test_set.rows[row] if test_set is not None and row < len(test_set.rows) else None

    def _lead_data(self, row: int, name: str, expected: bool, role: int) -> Any:
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        case = self._case(row)
        if case is None:
            if role == Qt.ItemDataRole.ToolTipRole:
                name = self._run.test_set_name if self._run else ""
                return f"The test set {name!r} is no longer in the library"
            return "unknown"
        text = case.expected if expected else case.vars.get(name, "")
        return _one_line(text) if role == Qt.ItemDataRole.DisplayRole else text


class SummaryModel(QAbstractTableModel):
    """Aggregates: one row per metric (scores, then latency and tokens, then errors),
    then the primary metric per group; one column per variant."""

    ValueRole = Qt.ItemDataRole.UserRole + 1
    """The raw float (None when not measured)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run: EvalRun | None = None
        self._rows: list[tuple[str, str | None]] = []  # (metric, group or None)
        self._primary = ""

    def set_run(self, run: EvalRun | None) -> None:
        """Show the run's `summaries` (the panel keeps them current while it runs)."""
        self.beginResetModel()
        self._run = run
        self._rows = []
        if run is not None:
            self._primary = primary_metric(run)
            measured = [c for c in COST_METRICS if any(c in s.metrics for s in run.summaries)]
            self._rows = [(m, None) for m in [*run.metrics, *measured, "errors"]]
            groups = sorted({g for s in run.summaries for g in s.groups})
            self._rows += [(self._primary, g) for g in groups]
        self.endResetModel()

    def row_of(self, metric: str, group: str | None = None) -> int:
        return self._rows.index((metric, group)) if (metric, group) in self._rows else -1

    def value(self, metric: str, variant: int, group: str | None = None) -> float | None:
        """A variant's aggregate of `metric` (over a group's cases when given)."""
        if self._run is None or not 0 <= variant < len(self._run.summaries):
            return None
        summary = self._run.summaries[variant]
        source = summary.metrics if group is None else summary.groups.get(group, {})
        return source.get(metric)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._run is None:
            return 0
        return len(self._run.summaries)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if self._run is None:
            return None
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self._run.summaries):
                return self._run.summaries[section].name
            return None
        if not 0 <= section < len(self._rows):
            return None
        metric, group = self._rows[section]
        if role == Qt.ItemDataRole.DisplayRole:
            label = METRIC_LABELS.get(metric, metric)
            return f"{label} · {group}" if group else label
        if role == Qt.ItemDataRole.ToolTipRole:
            if group:
                return f"{metric} over the cases of group {group!r}"
            if metric == self._primary:
                return f"{metric}: the primary metric (the grid's colours)"
            return metric
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._run is None or not index.isValid():
            return None
        if not (0 <= index.row() < len(self._rows) and 0 <= index.column() < self.columnCount()):
            return None
        metric, group = self._rows[index.row()]
        value = self.value(metric, index.column(), group)
        if role == Qt.ItemDataRole.DisplayRole:
            return format_metric(metric, value)
        if role == self.ValueRole:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and metric == self._primary and group is None:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            cases = self._run.summaries[index.column()].cases
            return f"{METRIC_LABELS.get(metric, metric)} over {cases} case(s)"
        return None


class EvalRunListModel(NewestFirstModel):
    """A prompt's stored evaluations, newest first."""

    def _text(self, run: EvalRun) -> str:
        when = run.created.astimezone().strftime("%d %b %H:%M:%S")
        primary = primary_metric(run)
        scores = " / ".join(format_metric(primary, s.metrics.get(primary)) for s in run.summaries)
        stopped = " (stopped)" if not run.complete else ""
        return (
            f"{when} · {run.test_set_name or 'test set'} · {len(run.variants)} variant(s)"
            f" · {primary} {scores}{stopped}"
        )

    def _tooltip(self, run: EvalRun) -> str:
        return f"{self._text(run)}\nvariants: {', '.join(v.name for v in run.variants)}"


# ---------------------------------------------------------------------------
# The panel


@dataclass
class _LiveRun:
    """The evaluation in progress: the job, and the run as its events fill it in."""

    job: Job | None
    run: EvalRun
    test_set: TestSet
    prompt_id: str
    shown: bool = True  # False once the user shows another run meanwhile


class EvaluatePanel(QWidget):
    """Compare prompt variants over a test set; see the module docstring."""

    evaluation_finished = Signal(object)
    """The stored `EvalRun` (complete, or partial after Stop)."""

    SPLITS: tuple[tuple[str, Split | None], ...] = (
        ("all", None),
        ("train", "train"),
        ("validation", "validation"),
        ("test", "test"),
    )
    MODES: tuple[Mode, ...] = ("auto", "generate", "likelihood")

    def __init__(self, library: Library, jobs: JobRunner, run_panel: RunPanel) -> None:
        super().__init__()
        self.library = library
        self.jobs = jobs
        self.run_panel = run_panel
        self._prompt: Prompt | None = None
        self._live: _LiveRun | None = None
        self._shown: tuple[EvalRun, TestSet | None] | None = None

        # -- options
        self.test_set_combo = named(QComboBox(), "evalTestSet")
        self.test_set_combo.setToolTip("The prompt's test sets (edit them in the Test sets panel)")
        self.split_combo = named(QComboBox(), "evalSplit")
        for label, value in self.SPLITS:
            self.split_combo.addItem(label, value)
        self.mode_combo = named(QComboBox(), "evalMode")
        for mode in self.MODES:
            self.mode_combo.addItem(mode, mode)
        self.mode_combo.setToolTip(
            "auto: score the labels by likelihood when the test set has a label set, "
            "else generate\ngenerate: sample an answer and compare it with the metrics\n"
            "likelihood: pick the most likely label (needs a label set)"
        )
        self.limit = named(QSpinBox(), "evalLimit")
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Only the first N cases of the split (0 = all)")
        self.metric_boxes: dict[str, QCheckBox] = {}
        metrics_row = QHBoxLayout()
        metrics_row.addWidget(QLabel("Metrics:"))
        for name in TEXT_METRICS:
            box = named(QCheckBox(METRIC_LABELS.get(name, name)), f"evalMetric_{name}")
            box.setChecked(name in DEFAULT_METRICS)
            self.metric_boxes[name] = box
            metrics_row.addWidget(box)
        metrics_row.addStretch(1)
        options_row = QHBoxLayout()
        for label, widget, stretch in (
            ("Test set:", self.test_set_combo, 2),
            ("Split:", self.split_combo, 0),
            ("Mode:", self.mode_combo, 0),
            ("Limit:", self.limit, 0),
        ):
            options_row.addWidget(QLabel(label))
            options_row.addWidget(widget, stretch)

        # -- variants
        self.variants_model = VariantsModel(self)
        self.variants_view = named(QTableView(), "evalVariants")
        self.variants_view.setModel(self.variants_model)
        self.variants_view.setItemDelegate(VariantDelegate(self.variants_view))
        self.variants_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.variants_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.variants_view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.SelectedClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.variants_view.setMaximumHeight(150)
        self.add_variant_button = named(QPushButton("Add variant"), "addVariant")
        self.remove_variant_button = named(QPushButton("Remove"), "removeVariant")
        self.preset_button = named(QPushButton("Zero-shot / few-shot / CoT"), "presetZeroFewCot")
        self.preset_button.setToolTip(
            "Three variants: zero-shot (no examples, no CoT), few-shot (as the prompt), "
            "and zero-shot chain of thought"
        )
        variant_buttons = QVBoxLayout()
        for button in (self.add_variant_button, self.remove_variant_button, self.preset_button):
            variant_buttons.addWidget(button)
        variant_buttons.addStretch(1)
        variants_box = QGroupBox("Variants")
        variants_layout = QHBoxLayout(variants_box)
        variants_layout.addWidget(self.variants_view, 1)
        variants_layout.addLayout(variant_buttons)

        # -- run controls
        self.run_button = named(QPushButton("Run evaluation"), "evalRun")
        self.stop_button = named(QPushButton("Stop"), "evalStop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the cases done so far are kept as a partial run")
        self.progress = named(QProgressBar(), "evalProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.eta = named(QLabel(), "evalEta")
        self.message = named(QLabel(), "evalMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.stop_button)
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.eta)

        # -- results
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
        self.grid_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.grid_view.horizontalHeader().setStretchLastSection(True)
        # fitting columns to contents looks at this many rows, not at all of a big run
        self.grid_view.horizontalHeader().setResizeContentsPrecision(100)
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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(options_row)
        layout.addLayout(metrics_row)
        layout.addWidget(variants_box)
        layout.addLayout(run_row)
        layout.addWidget(self.message)
        layout.addWidget(lower, 1)

        # -- wiring
        self.test_set_combo.currentIndexChanged.connect(self._test_set_picked)
        self.add_variant_button.clicked.connect(self.add_variant)
        self.remove_variant_button.clicked.connect(self.remove_selected_variants)
        self.preset_button.clicked.connect(self.preset_zero_few_cot)
        self.variants_model.edit_rejected.connect(self._show_message)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.history.selectionModel().currentChanged.connect(
            lambda current, _previous: self.show_history_row(current.row())
        )
        # a click on the current row shows it again (after a new run replaced it)
        self.history.clicked.connect(lambda index: self.show_history_row(index.row()))
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))

        self.set_prompt(None)

    # -- prompt, test sets, history ----------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show the working copy of the selected prompt; call again after each edit."""
        previous = self._prompt
        same = prompt is not None and previous is not None and prompt.id == previous.id
        self._prompt = prompt
        if same:
            # an edit of the working copy (called per keystroke): re-read the stored
            # versions only after a save made a new one
            if prompt and previous and prompt.version != previous.version:
                self.refresh()
            return
        # another prompt: its own default variant, test sets and history
        self.variants_model.set_variants([VariantSpec(name=prompt.name)] if prompt else [])
        self.history_model.set_items(self.library.eval_runs_for(prompt.id) if prompt else [])
        if self._live is not None:
            self._live.shown = False  # the run goes on (and is saved) out of sight
        self._show(None, None)
        self._show_message("")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the prompt's test sets, versions and the model list."""
        self.refresh_test_sets()
        versions: list[int] = []
        if self._prompt is not None:
            try:
                versions = [p.version for p in self.library.history(self._prompt.id)]
            except LibraryError:
                versions = []  # a prompt not (yet) in the library has no stored versions
        others: list[tuple[str, str]] = []
        soft: list[tuple[str, str]] = []
        if self._prompt is not None:
            others = [(p.id, p.name) for p in self.library.search() if p.id != self._prompt.id]
            soft = [(sp.id, sp.name) for sp in self.library.soft_prompts_for(self._prompt.id)]
        self.variants_model.set_choices(
            versions, [s.id for s in self.run_panel.catalog.all()], others, soft
        )
        self._update_buttons()

    def refresh_test_sets(self) -> None:
        """Re-list the prompt's test sets, keeping the current pick when it still exists."""
        current = self.test_set_combo.currentData()
        sets = self.library.test_sets_for(self._prompt.id) if self._prompt else []
        self.test_set_combo.blockSignals(True)
        self.test_set_combo.clear()
        for test_set in sets:
            self.test_set_combo.addItem(f"{test_set.name} ({len(test_set.rows)} rows)", test_set.id)
        index = self.test_set_combo.findData(current) if current is not None else -1
        self.test_set_combo.setCurrentIndex(index if index >= 0 else (0 if sets else -1))
        self.test_set_combo.blockSignals(False)
        if self.test_set_combo.currentData() != current:
            self._test_set_picked()
        else:
            self._update_split_counts()

    def selected_test_set(self) -> TestSet | None:
        test_set_id = self.test_set_combo.currentData()
        return self.library.test_sets.get(test_set_id) if test_set_id else None

    def _test_set_picked(self) -> None:
        test_set = self.selected_test_set()
        # rows carrying splits: the held-out test split is the honest default
        has_splits = test_set is not None and any(r.split for r in test_set.rows)
        self.split_combo.setCurrentIndex(self.split_combo.findData("test" if has_splits else None))
        self._update_split_counts()
        self._update_buttons()

    def _update_split_counts(self) -> None:
        test_set = self.selected_test_set()
        for i, (label, value) in enumerate(self.SPLITS):
            count = len(rows_in_split(test_set, value)) if test_set else 0
            self.split_combo.setItemText(i, f"{label} ({count})" if test_set else label)

    def showEvent(self, event: QShowEvent) -> None:
        # test sets are edited in another panel: pick up changes when this one is shown
        if self._prompt is not None and self._live is None:
            self.refresh_test_sets()
        super().showEvent(event)

    # -- variants --------------------------------------------------------------------

    def add_variant(self) -> None:
        row = self.variants_model.add_variant(VariantSpec(name=self.variants_model.unique_name()))
        self.variants_view.setCurrentIndex(self.variants_model.index(row, 0))
        self._update_buttons()

    def remove_selected_variants(self) -> None:
        rows = sorted(
            {i.row() for i in self.variants_view.selectionModel().selectedIndexes()}
            or ({self.variants_view.currentIndex().row()} - {-1}),
            reverse=True,
        )
        for row in rows:
            self.variants_model.removeRows(row, 1)
        self._update_buttons()

    def preset_zero_few_cot(self) -> None:
        """Zero-shot vs few-shot vs chain of thought, the classic three-way comparison."""
        self.variants_model.set_variants(
            [
                VariantSpec(name="zero-shot", few_shot_count=0, cot_mode=CoTMode.OFF),
                VariantSpec(name="few-shot"),
                VariantSpec(name="chain-of-thought", cot_mode=CoTMode.ZERO_SHOT),
            ]
        )
        if self._prompt is not None and not self._prompt.few_shot.examples:
            self._show_message(
                "This prompt has no few-shot examples, so its few-shot variant runs zero-shot."
            )
        self._update_buttons()

    # -- running ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._live is not None

    def selected_split(self) -> Split | None:
        value: Split | None = self.split_combo.currentData()
        return value

    def selected_mode(self) -> Mode:
        mode: Mode = self.mode_combo.currentData()
        return mode

    def selected_metrics(self) -> list[str]:
        return [name for name, box in self.metric_boxes.items() if box.isChecked()]

    def run(self) -> None:
        """Start the evaluation as one background job (nothing runs on this thread)."""
        if self._live is not None:
            return
        try:
            plan = self._plan()
        except (EvaluationError, LibraryError, BackendError, ValueError) as exc:
            self._show_message(describe_error(exc))
            return
        assert self._prompt is not None
        metric_list = list(plan.metrics)
        if plan.chosen_mode == "likelihood" and "label" not in metric_list:
            metric_list.insert(0, "label")
        # the run as the job's events will fill it in (evaluate() builds the same one)
        live_run = EvalRun(
            prompt_id=self._prompt.id,
            test_set_id=plan.test_set.id,
            test_set_name=plan.test_set.name,
            split=plan.split,
            mode=plan.chosen_mode,
            metrics=metric_list,
            variants=[spec for spec, _ in plan.variants],
            results=[[] for _ in plan.variants],
            complete=False,
        )
        live = _LiveRun(None, live_run, plan.test_set, self._prompt.id)
        self._live = live
        self._show(live_run, plan.test_set)
        self.history.setCurrentIndex(QModelIndex())
        total = len(plan.variants) * len(plan.rows)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.eta.setText(f"0 of {total}")
        self._show_message("Loading models…" if plan.backends.needs_loading else "Running…")
        self._update_buttons()
        live.job = self.jobs.run(
            "evaluate",
            lambda cancel: run_plan(plan, cancel),
            on_events=lambda events: self._on_events(live, events),
            on_done=lambda last: self._on_done(live, last),
            on_error=lambda exc, trace: self._on_error(live, exc),
        )

    def _plan(self) -> _Plan:
        """Everything the job needs, checked here so mistakes show before anything loads."""
        prompt = self._prompt
        if prompt is None:
            raise EvaluationError("Select a prompt to evaluate.")
        test_set = self.selected_test_set()
        if test_set is None:
            raise EvaluationError(
                "This prompt has no test set: create one in the Test sets panel first."
            )
        split = self.selected_split()
        rows = rows_in_split(test_set, split)
        if self.limit.value() > 0:
            rows = rows[: self.limit.value()]
        if not rows:
            where = f"the {split} split of " if split else ""
            raise EvaluationError(f"There are no rows in {where}{test_set.name!r} to evaluate.")
        specs = self.variants_model.variants()
        if not specs:
            raise EvaluationError("Add at least one variant to evaluate.")
        mode = self.selected_mode()
        chosen = choose_mode(test_set, mode)
        metrics = self.selected_metrics()
        if chosen == "generate" and not metrics:
            raise EvaluationError("Pick at least one metric to score generated answers with.")
        variants = [(spec, self._variant_prompt(prompt, spec)) for spec in specs]
        soft_paths: dict[str, Path] = {}
        for spec in specs:
            if spec.soft_prompt_id is not None:
                soft = self.library.soft_prompts.get(spec.soft_prompt_id)
                if soft is None:
                    raise EvaluationError(f"Variant {spec.name!r}: its soft prompt is gone.")
                soft_paths[soft.id] = self.library.soft_prompt_tensor_path(soft)
        return _Plan(
            variants,
            test_set,
            rows,
            split,
            metrics,
            mode,
            chosen,
            self._backend_plan(specs),
            soft_paths,
        )

    def _variant_prompt(self, prompt: Prompt, spec: VariantSpec) -> Prompt:
        base = prompt
        if spec.prompt_id is not None and spec.prompt_id != prompt.id:
            base = self.library.get_prompt(spec.prompt_id)
        if spec.prompt_version is not None:
            base = self.library.version(base.id, spec.prompt_version)
        return base

    def _backend_plan(self, specs: Sequence[VariantSpec]) -> _BackendPlan:
        """Which model each variant runs on, and whether the run panel's loaded one serves."""
        picked, picked_backend = self.run_panel.selected_model()
        shared_key = self.run_panel._backend_key
        shared = self.run_panel.backend
        keys: dict[tuple[str | None, str | None], BackendKey] = {}
        models: dict[BackendKey, ModelSpec] = {}
        for spec in specs:
            if spec.model is None:  # the model picked in the run panel
                model = picked
                backend = spec.backend or picked_backend
            else:
                model = self.run_panel.catalog.get(spec.model)
                backend = spec.backend or model.default_backend()
            key = (model.id, backend)
            keys[(spec.model, spec.backend)] = key
            models[key] = model
            if key == shared_key and shared is None:
                # the run panel is loading this very model: loading it twice wastes memory
                raise EvaluationError(
                    f"{model.name} is still loading in the Run panel; run the evaluation "
                    "when it is ready."
                )
        return _BackendPlan(
            keys,
            models,
            shared_key if shared is not None else None,
            shared,
            self.run_panel.settings,
        )

    def stop(self) -> None:
        """Ask the running evaluation to stop; what is done is saved as a partial run."""
        if self._live is not None and self._live.job is not None:
            self._live.job.stop()
            self.stop_button.setEnabled(False)
            self._show_message("Stopping…")

    def _on_events(self, live: _LiveRun, events: list[Any]) -> None:
        new: list[tuple[int, CaseResult]] = []
        progress: Progress | None = None
        finished: EvalRun | None = None
        for event in events:
            if isinstance(event, CaseDone):
                live.run.results[event.variant].append(event.result)
                new.append((event.variant, event.result))
            elif isinstance(event, Progress):
                progress = event
            elif isinstance(event, EvalFinished):
                finished = event.run
        if new and live.shown:
            live.run.summaries = [
                summarise(spec.name, results, live.test_set, live.run.metrics)
                for spec, results in zip(live.run.variants, live.run.results, strict=True)
            ]
            self.grid_model.add_results(new)
            self.summary_model.set_run(live.run)
        if progress is not None:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
            eta = f" · about {format_duration(progress.eta_s)} left" if progress.eta_s else ""
            self.eta.setText(f"{progress.done} of {progress.total}{eta}")
            if not self._live_cancelled():
                self._show_message("Running…")  # replaces "Loading models…"
        if finished is not None:
            self._finished(live, finished)

    def _finished(self, live: _LiveRun, run: EvalRun) -> None:
        cases = sum(len(r) for r in run.results)
        if cases == 0:  # stopped while loading: an empty run would only clutter the history
            self._show_message("Stopped before any case finished; nothing was saved.")
            return
        if live.shown:
            self._show(run, live.test_set)
        try:
            self.library.save_eval_run(run)
        except (LibraryError, OSError) as exc:
            self._show_message(f"The evaluation finished but could not be saved: {exc}")
            return
        if self._prompt is not None and self._prompt.id == live.prompt_id:
            self.history_model.add(run)
        if run.complete:
            self._show_message(f"Finished: {cases} case(s) over {len(run.variants)} variant(s).")
        else:
            total = self.progress.maximum()
            self._show_message(f"Stopped: the partial run ({cases} of {total} cases) was saved.")
        self.evaluation_finished.emit(run)

    def _on_done(self, live: _LiveRun, last: Any) -> None:
        if last is None:  # stopped before the worker reached it
            self._show_message("Stopped before it started; nothing was saved.")
        self._end(live)

    def _on_error(self, live: _LiveRun, exc: BaseException) -> None:
        self._end(live)
        self._show_message(f"The evaluation failed: {describe_error(exc)}")

    def _end(self, live: _LiveRun) -> None:
        if self._live is live:
            self._live = None
        self.eta.setText("")
        self._update_buttons()

    # -- showing and exporting results -----------------------------------------------

    def _show(self, run: EvalRun | None, test_set: TestSet | None) -> None:
        self._shown = (run, test_set) if run is not None else None
        self.grid_model.set_run(run, test_set)
        self.summary_model.set_run(run)
        self.grid_view.resizeColumnsToContents()
        self._update_buttons()

    def show_run(self, run: EvalRun) -> None:
        """Show a stored evaluation (its test set from the library; unknown when gone)."""
        if self._live is not None:
            self._live.shown = False
        test_set = self.library.test_sets.get(run.test_set_id) if run.test_set_id else None
        self._show(run, test_set)
        if test_set is None:
            self._show_message(
                f"The test set {run.test_set_name!r} of this run is no longer in the library: "
                "its variables are unknown."
            )

    def show_history_row(self, row: int) -> None:
        run = self.history_model.at(row)
        if run is not None:
            self.show_run(run)

    def shown_run(self) -> EvalRun | None:
        return self._shown[0] if self._shown else None

    def export_csv(self, path: str | Path) -> None:
        """Write the shown run as CSV (one line per case and variant), atomically."""
        run, test_set = self._exportable()
        # a deleted test set exports blank variables rather than failing
        atomic_write_text(Path(path), run_to_csv(run, test_set or TestSet(name=run.test_set_name)))

    def export_json(self, path: str | Path) -> None:
        """Write the shown run as JSON, atomically."""
        run, _ = self._exportable()
        atomic_write_text(Path(path), run_to_json(run))

    def _exportable(self) -> tuple[EvalRun, TestSet | None]:
        if self._shown is None:
            raise ValueError("no evaluation is shown to export")
        return self._shown

    def _export_dialog(self, kind: Literal["csv", "json"]) -> None:
        run = self.shown_run()
        if run is None:
            return
        name = f"{run.test_set_name or 'evaluation'}-{run.id}.{kind}"
        pattern = "CSV files (*.csv)" if kind == "csv" else "JSON files (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export as {kind.upper()}", name, pattern)
        if not path:
            return
        try:
            self.export_csv(path) if kind == "csv" else self.export_json(path)
        except (OSError, ValueError) as exc:
            self._show_message(f"Could not export: {exc}")
            return
        self._show_message(f"Exported to {path}")

    # -- state --------------------------------------------------------------------------

    def _show_message(self, text: str) -> None:
        self.message.setText(text)

    def _update_buttons(self) -> None:
        idle = self._live is None
        has_prompt = self._prompt is not None
        self.run_button.setEnabled(
            idle
            and has_prompt
            and self.test_set_combo.count() > 0
            and self.variants_model.rowCount() > 0
        )
        self.stop_button.setEnabled(not idle and not self._live_cancelled())
        for widget in (
            self.add_variant_button,
            self.remove_variant_button,
            self.preset_button,
            self.test_set_combo,
            self.split_combo,
            self.mode_combo,
            self.limit,
            *self.metric_boxes.values(),
        ):
            widget.setEnabled(idle and has_prompt)
        self.variants_view.setEnabled(idle and has_prompt)
        exportable = idle and self._shown is not None
        self.export_csv_button.setEnabled(exportable)
        self.export_json_button.setEnabled(exportable)

    def _live_cancelled(self) -> bool:
        job = self._live.job if self._live else None
        return job is not None and job.cancel.is_set()


@dataclass(frozen=True)
class _BackendPlan:
    """Built on the GUI thread, read on the worker: which model serves which variant."""

    keys: dict[tuple[str | None, str | None], BackendKey]
    models: dict[BackendKey, ModelSpec]
    shared_key: BackendKey | None
    shared: Backend | None
    settings: BackendSettings

    @property
    def needs_loading(self) -> bool:
        return any(key != self.shared_key for key in self.models)


@dataclass(frozen=True)
class _Plan:
    """One evaluation, fully resolved on the GUI thread before the job starts."""

    variants: list[tuple[VariantSpec, Prompt]]
    test_set: TestSet
    rows: list[int]
    split: Split | None
    metrics: list[str]
    mode: Mode
    chosen_mode: Literal["generate", "likelihood"]
    backends: _BackendPlan
    soft_paths: dict[str, Path] = field(default_factory=dict)  # soft prompt id -> tensor


def run_plan(plan: _Plan, cancel: threading.Event) -> Iterator[EvalEvent]:
    """The job's body, on the worker thread (it touches no widget): loads the models the
    run panel has not loaded, evaluates, and closes what it loaded."""
    loaded: dict[BackendKey, Backend] = {}
    backends = plan.backends

    def backend_for(spec: VariantSpec) -> Backend:
        key = backends.keys[(spec.model, spec.backend)]
        if backends.shared is not None and key == backends.shared_key:
            return backends.shared
        if key not in loaded:
            loaded[key] = load_backend(backends.models[key], key[1], backends.settings)
        return loaded[key]

    try:
        yield from evaluate(
            plan.variants,
            plan.test_set,
            plan.rows,
            backend_for,
            plan.metrics,
            plan.mode,
            cancel,
            split=plan.split,
            soft_prompt_for=lambda soft_id: load_soft_prompt_tensor(plan.soft_paths[soft_id]),
        )
    finally:
        # only the models this job loaded: the run panel's stays loaded for it
        for backend in loaded.values():
            backend.close()
