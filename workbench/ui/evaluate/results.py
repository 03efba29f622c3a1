"""The results of an evaluation: the grid of cases × variants (answers marked ✓ or ✗ and
coloured by pass or fail of the run's primary metric), the full case in a tooltip, and
the aggregate table of metrics × variants."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from workbench.core.evaluation import COST_METRICS, primary_metric
from workbench.core.flows.report import METRIC_LABELS, count, format_latency, format_score
from workbench.core.models import CaseResult, EvalRun, TestRow, TestSet
from workbench.ui.evaluate.ratings import rating_marks
from workbench.ui.evaluate.variants import cot_text, few_shot_text, model_text, version_text

_Index = QModelIndex | QPersistentModelIndex

PASS_THRESHOLD = 0.5
"""A case passes when its primary-metric score reaches this (1.0 / 0.0 for the match
metrics; the middle for token F1, whose partial scores would otherwise all be red)."""
PASS_COLOUR = QColor("#c6efce")
FAIL_COLOUR = QColor("#f8cbcb")
CELL_TEXT_COLOUR = QColor("#111111")  # readable on the pale colours in dark themes too
MARK_TIPS = {
    "★": "★ = the best variant",
    "≈": "≈ = not distinguishable from the best (paired test on the same cases)",
}
"""What a mark after a variant's name in the grid's header means (its tooltip)."""


def passed(result: CaseResult, primary: str) -> bool:
    """Whether a case passes the run's primary metric (an error never does)."""
    return result.error is None and result.scores.get(primary, 0.0) >= PASS_THRESHOLD


def verdict_text(result: CaseResult, primary: str) -> str:
    """A grid cell: the verdict mark, then the answer on one line."""
    if result.error:
        return "⚠ error"
    mark = "✓" if passed(result, primary) else "✗"
    return f"{mark} {_one_line(result.answer or result.output)}"


def _wrapping_tooltip(text: str) -> str:
    """A long text as a tooltip Qt wraps (plain-text tooltips run off the screen)."""
    if len(text) <= 80 and "\n" not in text:
        return text
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"


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
    cost = [f"latency {format_latency(result.latency_s)}"]
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
        self._marks: list[str] = []  # per variant: "★" (best), "≈" (its equals) or ""

    def set_marks(self, marks: list[str]) -> None:
        """Marks after the variant names in the header (the best and its equals)."""
        self._marks = list(marks)
        if self._run is not None and self._run.variants:
            columns = self.variant_columns()
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, columns[0], columns[-1])

    def _mark(self, variant: int) -> str:
        return self._marks[variant] if 0 <= variant < len(self._marks) else ""

    def replace_result(self, run: EvalRun, variant: int, result: CaseResult) -> None:
        """The shown run again with one case changed (a rating): that cell is redrawn."""
        self._run = run
        self._cells[(variant, result.row)] = result
        if result.row in self._position:
            index = self.index(self._position[result.row], self._variant_column(variant))
            self.dataChanged.emit(index, index)

    @property
    def primary(self) -> str:
        """The metric the verdicts (✓ ✗ and the colours) are of."""
        return self._primary

    def set_run(self, run: EvalRun | None, test_set: TestSet | None) -> None:
        """Show `run` (results included); `test_set` None = its rows are unknown."""
        self.beginResetModel()
        self._run = run
        self._test_set = test_set
        self._cells = {}
        self._rows = []
        self._position = {}
        self._marks = []
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

    def lead_columns(self) -> list[int]:
        """The columns of the case itself: its variables, then the expected value."""
        return list(range(len(self._lead_columns())))

    def results_of(self, grid_row: int) -> list[CaseResult | None]:
        """Each variant's result for a grid row (None where it has not run yet)."""
        if self._run is None or not 0 <= grid_row < len(self._rows):
            return []
        row = self._rows[grid_row]
        return [self._cells.get((v, row)) for v in range(len(self._run.variants))]

    def row_failed(self, grid_row: int) -> bool:
        """Whether any variant failed (or erred on) this case."""
        return any(
            r is not None and not passed(r, self._primary) for r in self.results_of(grid_row)
        )

    def case_at(self, grid_row: int) -> TestRow | None:
        """The test-set row of a grid row (None when the run's test set is gone)."""
        if not 0 <= grid_row < len(self._rows):
            return None
        return self._case(self._rows[grid_row])

    def shown_run(self) -> EvalRun | None:
        return self._run

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
                mark = self._mark(variant)
                name = self._run.variants[variant].name
                return f"{name} {mark}" if mark else name
        if role == Qt.ItemDataRole.ToolTipRole:
            variant = section - len(lead)
            if 0 <= variant < len(self._run.variants):
                spec = self._run.variants[variant]
                return (
                    f"{spec.name}: prompt {version_text(spec.prompt_version)}, "
                    f"model {model_text(spec.model)}, few-shot {few_shot_text(spec.few_shot_count)}"
                    f", CoT {cot_text(spec.cot_mode)}; ✓ and green = passes "
                    f"{METRIC_LABELS.get(self._primary, self._primary)}"
                    + (f"; {MARK_TIPS[mark]}" if (mark := self._mark(variant)) in MARK_TIPS else "")
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
            marks = rating_marks(result.rating)
            text = verdict_text(result, self._primary)
            return f"{marks} {text}" if marks else text
        if role == Qt.ItemDataRole.BackgroundRole:
            return PASS_COLOUR if passed(result, self._primary) else FAIL_COLOUR
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
        return _one_line(text) if role == Qt.ItemDataRole.DisplayRole else _wrapping_tooltip(text)


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
            label = METRIC_LABELS.get(metric, metric)
            if group:
                return f"{label} over the cases of group {group!r}"
            if metric == self._primary:
                return f"{label}: what the grid's ✓ and ✗ are of"
            return label
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self._run is None or not index.isValid():
            return None
        if not (0 <= index.row() < len(self._rows) and 0 <= index.column() < self.columnCount()):
            return None
        metric, group = self._rows[index.row()]
        value = self.value(metric, index.column(), group)
        if role == Qt.ItemDataRole.DisplayRole:
            return format_score(metric, value)
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
            return f"{METRIC_LABELS.get(metric, metric)} over {count(cases, 'case')}"
        return None
