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

from workbench.ui.evaluate.results import ResultsGridModel

_Index = QModelIndex | QPersistentModelIndex

VERDICT_WIDTH = (96, 190)  # a variant column's width: at least, at most (px)
EXPECTED_WIDTH = (64, 170)
INPUT_MIN_WIDTH = 110


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


class FailuresOnlyProxy(QSortFilterProxyModel):
    """The grid's rows, or only the cases some variant failed (or erred on)."""

    def __init__(self, source: ResultsGridModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.grid = source
        self._failures_only = False
        self.setSourceModel(source)

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
        return not self._failures_only or self.grid.row_failed(source_row)


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
