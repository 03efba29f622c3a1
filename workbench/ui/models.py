"""Qt item models that adapt core objects; the data itself stays in the core library."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from workbench.core.library import Library, PromptSummary
from workbench.core.models import Prompt, RunRecord

_Index = QModelIndex | QPersistentModelIndex


class PromptListModel(QAbstractListModel):
    """The library's prompts (filtered by a search text and tags), sorted by name."""

    PromptIdRole = Qt.ItemDataRole.UserRole + 1
    TagsRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, library: Library, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self._text = ""
        self._tags: list[str] = []
        self._rows: list[PromptSummary] = library.search()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        prompt = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return prompt.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return prompt.description or prompt.name
        if role == self.PromptIdRole:
            return prompt.id
        if role == self.TagsRole:
            return list(prompt.tags)
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names[self.PromptIdRole] = QByteArray(b"promptId")
        names[self.TagsRole] = QByteArray(b"tags")
        return names

    def prompt_at(self, row: int) -> PromptSummary | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, prompt_id: str) -> int:
        return next((i for i, p in enumerate(self._rows) if p.id == prompt_id), -1)

    def set_filter(self, text: str, tags: list[str] | None = None) -> None:
        self._text = text
        if tags is not None:
            self._tags = tags
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._rows = self._library.search(self._text, self._tags)
        self.endResetModel()


class NewestFirstModel(QAbstractListModel):
    """Stored documents with an `id` and a `created` time (runs, evaluations, soft
    prompts), newest first. Subclasses say how an item reads: `_text`, `_tooltip`."""

    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[Any] = []

    def set_items(self, items: Sequence[Any]) -> None:
        self.beginResetModel()
        self._items = sorted(items, key=lambda item: item.created, reverse=True)
        self.endResetModel()

    def add(self, item: Any) -> int:
        """Put a new item on top, or refresh the one with its id; returns its row."""
        existing = self.row_of(item.id)
        if existing >= 0:
            self._items[existing] = item
            index = self.index(existing, 0)
            self.dataChanged.emit(index, index)
            return existing
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._items.insert(0, item)
        self.endInsertRows()
        return 0

    def at(self, row: int) -> Any:
        return self._items[row] if 0 <= row < len(self._items) else None

    def row_of(self, item_id: str) -> int:
        return next((i for i, item in enumerate(self._items) if item.id == item_id), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(item)
        if role == self.IdRole:
            return item.id
        return None

    def _text(self, item: Any) -> str:
        raise NotImplementedError

    def _tooltip(self, item: Any) -> str:
        return self._text(item)


class RunListModel(NewestFirstModel):
    """A prompt's stored runs, newest first."""

    def _text(self, run: RunRecord) -> str:
        when = run.created.astimezone().strftime("%d %b %H:%M:%S")
        first_line = run.output.strip().splitlines()[0] if run.output.strip() else "(empty)"
        return f"{when} · {run.model} · {first_line[:60]}"

    def _tooltip(self, run: RunRecord) -> str:
        return run.output[:2000]


class VersionListModel(QAbstractListModel):
    """A prompt's versions, newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._versions: list[Prompt] = []

    def set_versions(self, versions: list[Prompt]) -> None:
        self.beginResetModel()
        self._versions = list(reversed(versions))
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._versions)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._versions):
            return None
        version = self._versions[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            when = version.updated.astimezone().strftime("%d %b %Y %H:%M")
            current = "  (current)" if index.row() == 0 else ""
            return f"v{version.version} · {when}{current}"
        if role == Qt.ItemDataRole.UserRole:
            return version.version
        return None

    def version_at(self, row: int) -> Prompt | None:
        return self._versions[row] if 0 <= row < len(self._versions) else None
