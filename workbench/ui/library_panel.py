"""The library sidebar: search and tag filter, new/duplicate/rename/delete (with undo),
and the selected prompt's version history with a diff view and restore."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.library import Library, LibraryError
from workbench.core.models import Prompt
from workbench.core.names import unique_name
from workbench.core.prompt_diff import changes_text
from workbench.ui.editor import monospace
from workbench.ui.models import PromptListModel, VersionListModel
from workbench.ui.widgets import named, titled_column

ALL_TAGS = "All tags"


ADDED = QColor("#1e7b34")
REMOVED = QColor("#b3261e")


class DiffHighlighter(QSyntaxHighlighter):
    """Colours `prompt_diff.changes_text`: field headings, added and removed lines (a
    tinted background under a coloured text, readable on light and dark palettes)."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.added = QTextCharFormat()
        self.added.setForeground(ADDED)
        self.added.setBackground(QColor(30, 123, 52, 40))
        self.removed = QTextCharFormat()
        self.removed.setForeground(REMOVED)
        self.removed.setBackground(QColor(179, 38, 30, 40))
        self.header = QTextCharFormat()
        self.header.setFontWeight(QFont.Weight.Bold)

    def highlightBlock(self, text: str) -> None:
        if text.startswith("── ") or text.startswith("From v"):
            self.setFormat(0, len(text), self.header)
        elif text.startswith("+ "):
            self.setFormat(0, len(text), self.added)
        elif text.startswith("- "):
            self.setFormat(0, len(text), self.removed)


def _when(moment: datetime, now: datetime | None = None) -> str:
    """12:03 today, 3 Dec 12:03 this year, 3 Dec 2025 12:03 before."""
    local = moment.astimezone()
    now = now or datetime.now().astimezone()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return f"{local.day} {local.strftime('%b %H:%M')}"
    return f"{local.day} {local.strftime('%b %Y %H:%M')}"


class HistoryModel(VersionListModel):
    """A prompt's versions, newest first, each saying what made it: v4 · edited · 12:03."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.note_of: Callable[[Prompt], str] = lambda p: ""

    def row_text(self, row: int) -> str:
        version = self.version_at(row)
        if version is None:
            return ""
        parts = [f"v{version.version}", self.note_of(version), _when(version.updated)]
        current = "  (current)" if row == 0 else ""
        return " · ".join(p for p in parts if p) + current

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if index.isValid() and role == Qt.ItemDataRole.DisplayRole:
            return self.row_text(index.row())
        if index.isValid() and role == Qt.ItemDataRole.ToolTipRole:
            version = self.version_at(index.row())
            if version is not None:
                when = version.updated.astimezone().strftime("%d %b %Y %H:%M:%S")
                return f"Version {version.version}, {self.note_of(version)}, saved {when}"
        return super().data(index, role)


class LibraryPanel(QWidget):
    """Browses the library; the main window reacts to `prompt_selected`."""

    prompt_selected = Signal(object)  # prompt id, or None
    version_restored = Signal(str)
    message = Signal(str)  # for the status bar

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self.last_deleted: str | None = None
        self._open: str | None = None  # the prompt the user opened
        self._quiet = False  # the list's current row moves without the user picking

        self.search = named(QLineEdit(), "searchBox")
        self.search.setPlaceholderText("Search prompts (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.tag_filter = named(QComboBox(), "tagFilter")
        self.model = PromptListModel(library, self)
        self.list = named(QListView(), "promptList")
        self.list.setModel(self.model)
        self.list.selectionModel().currentChanged.connect(self._current_changed)

        self.new_button = named(QPushButton("New"), "newPrompt")
        self.duplicate_button = named(QPushButton("Duplicate"), "duplicatePrompt")
        self.rename_button = named(QPushButton("Rename"), "renamePrompt")
        self.delete_button = named(QPushButton("Delete"), "deletePrompt")
        self.undo_button = named(QPushButton("Undo delete"), "undoDelete")
        self.undo_button.hide()
        buttons = QHBoxLayout()
        for button in (
            self.new_button,
            self.duplicate_button,
            self.rename_button,
            self.delete_button,
        ):
            buttons.addWidget(button)

        self.empty_banner = named(QWidget(), "emptyBanner")
        banner = QVBoxLayout(self.empty_banner)
        banner.addWidget(QLabel("Your library is empty."))
        self.seed_button = named(QPushButton("Load the sample library"), "seedButton")
        banner.addWidget(self.seed_button)

        self.versions = HistoryModel(self)
        self.versions.note_of = library.version_note
        self.version_list = named(QListView(), "versionList")
        self.version_list.setModel(self.versions)
        self.version_list.selectionModel().currentChanged.connect(self._show_diff)
        self.diff = named(QPlainTextEdit(readOnly=True), "diffView")
        self.diff.setFont(monospace())
        self.diff.setPlaceholderText(
            "Select an older version to see, field by field, what changed since."
        )
        self.diff_highlighter = DiffHighlighter(self.diff.document())
        self.restore_button = named(QPushButton("Restore this version…"), "restoreVersion")
        self.restore_button.setEnabled(False)
        self.restore_button.clicked.connect(self.restore_selected)
        # asked before a restore: (title, question) -> yes; tests may answer instead
        self.confirm: Callable[[str, str], bool] = self._ask

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.search)
        top_layout.addWidget(self.tag_filter)
        top_layout.addWidget(self.empty_banner)
        top_layout.addWidget(self.list, 1)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.undo_button)
        history = QSplitter(Qt.Orientation.Vertical)
        history.setObjectName("historySplitter")
        history.setChildrenCollapsible(False)
        history.addWidget(self.version_list)
        history.addWidget(self.diff)
        history.setStretchFactor(0, 1)
        history.setStretchFactor(1, 3)
        bottom = titled_column("History", (history, 1), self.restore_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.search.textChanged.connect(self._filter)
        self.tag_filter.currentIndexChanged.connect(self._filter)
        self.new_button.clicked.connect(lambda: self.new_prompt())
        self.duplicate_button.clicked.connect(self.duplicate_current)
        self.rename_button.clicked.connect(lambda: self.rename_current())
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_button.clicked.connect(self.undo_delete)
        self.refresh()

    # -- list ---------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        """Reload from the library, keeping the open prompt (or opening `select`); a
        prompt that is gone (deleted) gives way to the first one listed."""
        keep = select or self._open
        current_tag = self.tag_filter.currentText()
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem(ALL_TAGS)
        self.tag_filter.addItems(self.library.tags())
        index = self.tag_filter.findText(current_tag)
        self.tag_filter.setCurrentIndex(max(index, 0))
        self.tag_filter.blockSignals(False)
        self._apply_filter()
        self.empty_banner.setVisible(self.library.is_empty())
        if keep is not None and keep in self.library.prompts:
            self.select(keep)
        else:
            first = self.model.prompt_at(0) if self.model.rowCount() > 0 else None
            self._open_prompt(first.id if first else None)
        self.refresh_history()

    def _filter(self) -> None:
        """The search or tag filter changed: list what matches, and leave the open
        prompt open (highlighted when it is listed) — only a pick opens another."""
        self._apply_filter()

    def _apply_filter(self) -> None:
        tag = self.tag_filter.currentText()
        self._quiet = True
        try:
            self.model.set_filter(self.search.text(), [] if tag in ("", ALL_TAGS) else [tag])
        finally:
            self._quiet = False
        self._show_open()

    def _show_open(self) -> None:
        """Highlight the open prompt in the list, or nothing when it is filtered out."""
        row = self.model.row_of(self._open) if self._open else -1
        self._quiet = True
        try:
            if row >= 0:
                self.list.selectionModel().setCurrentIndex(
                    self.model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
                )
            else:
                self.list.selectionModel().clear()
        finally:
            self._quiet = False

    def select(self, prompt_id: str) -> None:
        """Open a prompt (as a pick in the list does); a filter that hides it is cleared."""
        if prompt_id not in self.library.prompts:
            return
        if self.model.row_of(prompt_id) < 0:
            self.search.blockSignals(True)
            self.search.clear()
            self.search.blockSignals(False)
            self.tag_filter.blockSignals(True)
            self.tag_filter.setCurrentIndex(0)
            self.tag_filter.blockSignals(False)
            self._apply_filter()
        self._open_prompt(prompt_id)

    def current_id(self) -> str | None:
        """The open prompt (listed or not under the current filter)."""
        return self._open if self._open in self.library.prompts else None

    def _open_prompt(self, prompt_id: str | None) -> None:
        changed = prompt_id != self._open
        self._open = prompt_id
        self._show_open()
        if changed:
            self.refresh_history()
            self.prompt_selected.emit(prompt_id)

    def _current_changed(self) -> None:
        if self._quiet:
            return
        index = self.list.currentIndex()
        summary = self.model.prompt_at(index.row()) if index.isValid() else None
        if summary is not None:
            self._open_prompt(summary.id)

    # -- actions ---------------------------------------------------------------------

    def new_prompt(self, name: str | None = None) -> str:
        taken = (s.name for s in self.library.search())
        candidate = unique_name(name or "Untitled prompt", taken)
        prompt = self.library.new_prompt(candidate)
        self.search.clear()
        self.refresh(select=prompt.id)
        self.message.emit(f"Created {candidate!r}")
        return prompt.id

    def duplicate_current(self) -> None:
        prompt_id = self.current_id()
        if prompt_id:
            copy = self.library.duplicate_prompt(prompt_id)
            self.refresh(select=copy.id)
            self.message.emit(f"Created {copy.name!r}")

    def rename_current(self, name: str | None = None) -> None:
        prompt_id = self.current_id()
        if not prompt_id:
            return
        if name is None:
            current = self.library.get_prompt(prompt_id).name
            name, ok = QInputDialog.getText(self, "Rename prompt", "New name:", text=current)
            if not ok:
                return
        try:
            self.library.rename_prompt(prompt_id, name)
        except LibraryError as exc:
            self.message.emit(str(exc))
            return
        self.refresh(select=prompt_id)

    def delete_current(self) -> None:
        """Delete to the trash; 'Undo delete' brings it back."""
        prompt_id = self.current_id()
        if not prompt_id:
            return
        name = self.library.get_prompt(prompt_id).name
        self.library.delete_prompt(prompt_id)
        self.last_deleted = prompt_id
        self.undo_button.setText(f"Undo delete of {name!r}")
        self.undo_button.show()
        self.refresh()
        self.message.emit(f"Deleted {name!r} (Undo delete brings it back)")

    def undo_delete(self) -> None:
        if self.last_deleted is None:
            return
        try:
            prompt = self.library.undelete_prompt(self.last_deleted)
        except LibraryError as exc:
            self.message.emit(str(exc))
            return
        self.last_deleted = None
        self.undo_button.hide()
        self.refresh(select=prompt.id)
        self.message.emit(f"Restored {prompt.name!r}")

    # -- history ------------------------------------------------------------------------

    def refresh_history(self) -> None:
        prompt_id = self.current_id()
        self.versions.set_versions(self.library.history(prompt_id) if prompt_id else [])
        self.diff.clear()
        self.restore_button.setEnabled(False)

    def _show_diff(self) -> None:
        prompt_id = self.current_id()
        row = self.version_list.currentIndex().row()
        version = self.versions.version_at(row)
        if prompt_id is None or version is None:
            return
        if row == 0:
            self.diff.setPlainText("This is the current version.")
            self.restore_button.setEnabled(False)
            return
        current = self.versions.version_at(0)
        assert current is not None
        changes = changes_text(self.library.changes(prompt_id, version.version))
        heading = (
            f"From v{version.version} to the current v{current.version} "
            f"(restoring v{version.version} undoes these):"
        )
        self.diff.setPlainText(f"{heading}\n\n{changes}" if changes else "No changes in content.")
        self.restore_button.setEnabled(bool(changes))  # restoring the same text does nothing

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def restore_selected(self) -> None:
        prompt_id = self.current_id()
        version = self.versions.version_at(self.version_list.currentIndex().row())
        current = self.versions.version_at(0)
        if prompt_id is None or version is None or current is None or version is current:
            return
        drafted = self.library.draft(prompt_id) is not None
        question = (
            f"Restore version {version.version} ({self.library.version_note(version)}, "
            f"{_when(version.updated)})?\n\nIt replaces the current version "
            f"{current.version} ({self.library.version_note(current)}, "
            f"{_when(current.updated)}) as a new version {current.version + 1}; "
            f"version {current.version} stays in History."
        )
        if drafted:
            question += "\n\nYour unsaved edits to this prompt are discarded."
        if not self.confirm(f"Restore version {version.version}", question):
            return
        restored = self.library.restore_version(prompt_id, version.version)
        self.library.discard_draft(prompt_id)
        self.refresh_history()
        self.version_restored.emit(prompt_id)
        self.message.emit(f"Restored version {version.version} as version {restored.version}")
