"""The results grid as a view: verdicts first, long cells elided, a failures-only filter.

The variant (verdict) columns are moved to the left of the view and get bounded widths,
the expected value follows them, and the case's variables share what is left, the last
one stretching: a long input or a long chain-of-thought answer elides ("…", one line per
case) instead of pushing the verdicts off-screen. The full text is in each cell's
tooltip and in the panel's case detail. The model's own column order (variables,
expected, variants) is unchanged: only the header's visual order moves.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from workbench.core.models import CaseResult
from workbench.ui.evaluate.results import ResultsGridModel

_Index = QModelIndex | QPersistentModelIndex

VERDICT_WIDTH = (96, 190)  # a variant column's width: at least, at most (px)
EXPECTED_WIDTH = (64, 170)
INPUT_MIN_WIDTH = 110


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


def as_label(text: str, labels: list[str]) -> str:
    """The label `text` equals after trimming and case-folding, else "(other)" (as the
    confusion matrix counts it)."""
    from workbench.core.stats import OTHER  # numpy: not at start-up

    for label in labels:
        if text.strip().casefold() == label.strip().casefold():
            return label
    return OTHER


def chosen_label(result: CaseResult, labels: list[str]) -> str:
    return as_label(result.answer or result.output, labels)


class FailuresOnlyProxy(QSortFilterProxyModel):
    """The grid's rows, or only the cases some variant failed (or erred on); and/or only
    the cases where one variant chose a given label for a given expected one (a click on
    the confusion matrix)."""

    def __init__(self, source: ResultsGridModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.grid = source
        self._failures_only = False
        self._cell: tuple[int, str, str, list[str]] | None = None  # variant, expected, chosen
        self.setSourceModel(source)

    @property
    def cell_filter(self) -> tuple[int, str, str] | None:
        return self._cell[:3] if self._cell else None

    def set_cell_filter(self, cell: tuple[int, str, str] | None, labels: list[str]) -> None:
        """Only the cases of variant `cell[0]` expected `cell[1]` and chosen `cell[2]`
        (None = every case)."""
        self._change(lambda: setattr(self, "_cell", (*cell, list(labels)) if cell else None))

    def _change(self, apply: object) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10 and later
            self.beginFilterChange()
            apply()  # type: ignore[operator]
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            apply()  # type: ignore[operator]
            self.invalidateRowsFilter()

    @property
    def failures_only(self) -> bool:
        return self._failures_only

    def set_failures_only(self, on: bool) -> None:
        if on == self._failures_only:
            return
        if hasattr(self, "endFilterChange"):  # Qt 6.10 and later
            self.beginFilterChange()
            self._failures_only = on
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._failures_only = on
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if self._failures_only and not self.grid.row_failed(source_row):
            return False
        if self._cell is None:
            return True
        variant, expected, chosen, labels = self._cell
        results = self.grid.results_of(source_row)
        result = results[variant] if 0 <= variant < len(results) else None
        case = self.grid.case_at(source_row)
        if result is None or case is None:
            return False
        return as_label(case.expected, labels) == expected and (
            chosen_label(result, labels) == chosen
        )


class ResultsGridView(QTableView):
    """A read-only, one-line-per-case view of a `FailuresOnlyProxy`; call `arrange` after
    the model shows another run."""

    def __init__(self, proxy: FailuresOnlyProxy, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.proxy = proxy
        self.grid = proxy.grid
        self.setModel(proxy)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rows = self.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setTextElideMode(Qt.TextElideMode.ElideRight)
        # fitting columns to contents looks at this many rows, not at all of a big run
        header.setResizeContentsPrecision(100)

    def arrange(self) -> None:
        """Verdicts first at bounded widths, then the expected value, then the variables
        sharing the rest (a model reset puts the header back in model order)."""
        header = self.horizontalHeader()
        verdicts = self.grid.variant_columns()
        lead = self.grid.lead_columns()
        order = [*verdicts, *lead[-1:], *lead[:-1]]
        for position, column in enumerate(order):
            header.moveSection(header.visualIndex(column), position)
        for column in verdicts:
            self.setColumnWidth(column, _clamp(self._wanted(column), VERDICT_WIDTH))
        if lead:
            self.setColumnWidth(lead[-1], _clamp(self._wanted(lead[-1]), EXPECTED_WIDTH))
        self._share_the_rest()

    def _wanted(self, column: int) -> int:
        title = str(self.grid.headerData(column, Qt.Orientation.Horizontal) or "")
        return max(self.fontMetrics().horizontalAdvance(title) + 28, self.sizeHintForColumn(column))

    def _share_the_rest(self) -> None:
        lead = self.grid.lead_columns()
        inputs = lead[:-1]
        if not inputs:
            return
        fixed = [*self.grid.variant_columns(), lead[-1]]
        free = self.viewport().width() - sum(self.columnWidth(c) for c in fixed)
        each = max(INPUT_MIN_WIDTH, free // len(inputs))
        for column in inputs:
            self.setColumnWidth(column, each)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._share_the_rest()

    def source_row(self, index: QModelIndex) -> int:
        """The grid-model row of a view index (-1 for none)."""
        return self.proxy.mapToSource(index).row() if index.isValid() else -1
