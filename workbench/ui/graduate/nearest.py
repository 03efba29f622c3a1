"""The nearest vocabulary tokens of each virtual token: the table model, and the cache
of what was found, filled by jobs running `flows.nearest.nearest_for_soft_prompt`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from workbench.core.flows.nearest import NEAREST_K
from workbench.core.models import ModelSpec
from workbench.ui.jobs import Job, JobRunner

log = logging.getLogger(__name__)

_Index = QModelIndex | QPersistentModelIndex

Neighbours = list[list[tuple[str, float]]]
"""For each virtual token, its nearest (token text, cosine) pairs, nearest first."""


def token_text(text: str) -> str:
    """A vocabulary token made visible: quotes keep leading spaces and newlines readable."""
    return repr(text)


class NearestTokensModel(QAbstractTableModel):
    """One row per virtual token; one column per neighbour: the token and its cosine."""

    SimilarityRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QObject | None = None, k: int = NEAREST_K) -> None:
        super().__init__(parent)
        self._k = k
        self._rows: Neighbours = []

    def set_tokens(self, rows: Sequence[Sequence[tuple[str, float]]]) -> None:
        self.beginResetModel()
        self._rows = [list(r) for r in rows]
        self.endResetModel()

    def tokens(self) -> Neighbours:
        return [list(r) for r in self._rows]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._k

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return f"#{section + 1}" if 0 <= section < self._k else None
        return f"v{section + 1}" if 0 <= section < len(self._rows) else None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._rows) and 0 <= column < self._k):
            return None
        neighbours = self._rows[row]
        if column >= len(neighbours):
            return None
        text, similarity = neighbours[column]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{token_text(text)}  {similarity:.2f}"
        if role == self.SimilarityRole:
            return similarity
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{token_text(t)}  cosine {s:.3f}" for t, s in neighbours]
            return f"virtual token {row + 1}:\n" + "\n".join(lines)
        return None


class NearestTokens:
    """What was found per soft prompt id, and the jobs finding the rest (one per soft
    prompt at a time). The cheap path: the embedding matrix and the tokenizer, or a
    loaded transformers backend of the same model, never a second full model."""

    def __init__(self, jobs: JobRunner) -> None:
        self.jobs = jobs
        self._found: dict[str, Neighbours] = {}
        self._pending: set[str] = set()

    def get(self, soft_id: str) -> Neighbours | None:
        return self._found.get(soft_id)

    def busy_with(self, soft_id: str) -> bool:
        return soft_id in self._pending

    def find(
        self,
        soft_id: str,
        name: str,
        spec: ModelSpec,
        tensor_path: Path,
        backend: Any,
        on_found: Callable[[Neighbours], None],
        on_failed: Callable[[BaseException], None],
    ) -> Job | None:
        """Start a job (None when found or being found already); `backend` is the
        session's loaded backend, used when it is a transformers backend of `spec`."""
        if soft_id in self._found or soft_id in self._pending:
            return None
        self._pending.add(soft_id)

        def work(cancel: threading.Event) -> Neighbours:
            from workbench.core.flows.nearest import nearest_for_soft_prompt
            from workbench.core.softprompt import load_soft_prompt_tensor

            return nearest_for_soft_prompt(spec, load_soft_prompt_tensor(tensor_path), backend)

        def done(rows: Neighbours) -> None:
            self._pending.discard(soft_id)
            self._found[soft_id] = rows
            on_found(rows)

        def failed(exc: BaseException, trace: str) -> None:
            log.error("nearest tokens of %s failed: %s\n%s", name, exc, trace)
            self._pending.discard(soft_id)
            on_failed(exc)

        return self.jobs.run(
            f"nearest tokens of {name}",
            work,
            on_done=done,
            on_error=failed,
            on_cancelled=lambda: self._pending.discard(soft_id),
        )
