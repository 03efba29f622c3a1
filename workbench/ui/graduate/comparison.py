"""The held-out comparison: zero-shot / few-shot / soft prompt or LoRA (rows) by accuracy,
context tokens per call and latency (columns), and the sentence the panel says about it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from workbench.core.evaluation import primary_metric
from workbench.core.flows.report import METRIC_LABELS, count, format_score
from workbench.core.graduation import LORA_VARIANT
from workbench.core.models import EvalRun

_Index = QModelIndex | QPersistentModelIndex


class ComparisonModel(QAbstractTableModel):
    """Zero-shot / few-shot / soft prompt (rows) × accuracy, context tokens per call,
    latency (columns), from a comparison's `EvalRun.summaries`."""

    ValueRole = Qt.ItemDataRole.UserRole + 1
    """The raw float (None when not measured)."""

    COLUMNS = ("accuracy", "tokens per call", "latency")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run: EvalRun | None = None
        self._primary: str | None = None  # no run: the header just says "accuracy"

    @property
    def run(self) -> EvalRun | None:
        return self._run

    def set_run(self, run: EvalRun | None) -> None:
        self.beginResetModel()
        self._run = run
        self._primary = primary_metric(run) if run is not None else None
        self.endResetModel()

    def _key(self, column: int) -> str:
        return (self._primary or "label", "context_tokens", "latency_s")[column]

    def value(self, row: int, column: int) -> float | None:
        if self._run is None or not 0 <= row < len(self._run.summaries):
            return None
        if not 0 <= column < len(self.COLUMNS):
            return None
        return self._run.summaries[row].metrics.get(self._key(column))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._run is None:
            return 0
        return len(self._run.summaries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self.COLUMNS):
                return None
            if role == Qt.ItemDataRole.DisplayRole:
                text = self.COLUMNS[section]
                if section == 0 and self._primary is not None:
                    # the metric actually used: "label accuracy", "normalised match", …
                    text = METRIC_LABELS.get(self._primary, self._primary)
                # on two lines: the table has three narrow columns beside the docks
                return text.replace(" ", "\n", 1)
            if role == Qt.ItemDataRole.ToolTipRole:
                metric = METRIC_LABELS.get(self._primary or "", "accuracy")
                return (
                    f"{metric} on the held-out split: the comparison's primary metric",
                    "mean prompt tokens per call (the virtual tokens count for the soft prompt)",
                    "mean time per case",
                )[section]
            return None
        if self._run is None or not 0 <= section < len(self._run.summaries):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._run.summaries[section].name
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._run is None:
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < self.rowCount() and 0 <= column < len(self.COLUMNS)):
            return None
        value = self.value(row, column)
        if role == Qt.ItemDataRole.DisplayRole:
            return format_score(self._key(column), value)
        if role == self.ValueRole:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        trained = ("soft prompt", LORA_VARIANT)  # the row of what was trained
        if role == Qt.ItemDataRole.FontRole and self._run.summaries[row].name in trained:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            summary = self._run.summaries[row]
            metric = METRIC_LABELS.get(self._key(column), self._key(column))
            return f"{summary.name}: {metric} over {count(summary.cases, 'held-out case')}"
        return None


def comparison_sentence(run: EvalRun) -> str:
    """The comparison in one sentence: each variant's primary metric on the held-out rows."""
    primary = primary_metric(run)
    parts = [f"{s.name} {format_score(primary, s.metrics.get(primary))}" for s in run.summaries]
    stopped = " (stopped early)" if not run.complete else ""
    return f"Held-out {METRIC_LABELS.get(primary, primary)}: {', '.join(parts)}{stopped}."
