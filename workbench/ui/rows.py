"""Row editing shared by the item models over a list of core objects (few-shot examples,
test rows, chain steps): insert, remove and move rows with Qt's model protocol, and
batch several user edits into one "edited" notification.

A model mixes `RowList` in before its Qt base class and says where its list is
(`_row_list`), what happens after rows come or go (`_rows_changed`, e.g. re-deriving
columns and announcing the edit) and how an edit is announced (`_announce_edit`, its
own signal).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

_Index = QModelIndex | QPersistentModelIndex


class RowList:
    """Mixin for a QAbstractItemModel whose rows are the items of one Python list."""

    _quiet = 0
    _pending = False

    # -- what the model says -------------------------------------------------------

    def _row_list(self) -> list[Any]:
        """The model's list itself (edited in place)."""
        raise NotImplementedError

    def _rows_changed(self, moved: bool) -> None:
        """After rows were inserted or removed (`moved` False) or moved (True)."""

    def _announce_edit(self) -> None:
        """Emit the model's own "edited" signal."""

    # -- batching ------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several edits that are announced once, at the end."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1
            if not self._quiet and self._pending:
                self._pending = False
                self._announce_edit()

    def _edited(self) -> None:
        if self._quiet:
            self._pending = True
        else:
            self._announce_edit()

    # -- rows ----------------------------------------------------------------------

    def insert_items(
        self,
        row: int,
        items: Sequence[Any],
        parent: _Index = QModelIndex(),  # noqa: B008
    ) -> bool:
        """Insert copies of `items` before `row`."""
        rows = self._row_list()
        if parent.isValid() or not items or not 0 <= row <= len(rows):
            return False
        self.beginInsertRows(QModelIndex(), row, row + len(items) - 1)  # type: ignore[attr-defined]
        rows[row:row] = [item.model_copy(deep=True) for item in items]
        self.endInsertRows()  # type: ignore[attr-defined]
        self._rows_changed(moved=False)
        return True

    def removeRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        rows = self._row_list()
        if parent.isValid() or count < 1 or row < 0 or row + count > len(rows):
            return False
        self.beginRemoveRows(QModelIndex(), row, row + count - 1)  # type: ignore[attr-defined]
        del rows[row : row + count]
        self.endRemoveRows()  # type: ignore[attr-defined]
        self._rows_changed(moved=False)
        return True

    def moveRows(
        self,
        sourceParent: _Index,
        sourceRow: int,
        count: int,
        destinationParent: _Index,
        destinationChild: int,
    ) -> bool:
        """Move rows so they end up before `destinationChild` (a row in the old order)."""
        rows = self._row_list()
        size = len(rows)
        if (
            sourceParent.isValid()
            or destinationParent.isValid()
            or count < 1
            or sourceRow < 0
            or sourceRow + count > size
            or not 0 <= destinationChild <= size
            or sourceRow <= destinationChild <= sourceRow + count  # a no-op or into itself
        ):
            return False
        last = sourceRow + count - 1
        if not self.beginMoveRows(  # type: ignore[attr-defined]
            QModelIndex(), sourceRow, last, QModelIndex(), destinationChild
        ):
            return False
        moving = rows[sourceRow : last + 1]
        del rows[sourceRow : last + 1]
        at = destinationChild - count if destinationChild > sourceRow else destinationChild
        rows[at:at] = moving
        self.endMoveRows()  # type: ignore[attr-defined]
        self._rows_changed(moved=True)
        return True

    def remove_rows(self, rows: Iterable[int]) -> bool:
        """Remove any set of rows (as runs of neighbours), announced once."""
        size = len(self._row_list())
        wanted = sorted({r for r in rows if 0 <= r < size}, reverse=True)
        if not wanted:
            return False
        with self.batch():
            start = end = wanted[0]
            for row in [*wanted[1:], -2]:
                if row == start - 1:
                    start = row
                    continue
                self.removeRows(start, end - start + 1)
                start = end = row
        return True
