"""The main window's menus and texts: View toggles the docks, Help opens the guide and
lists the shortcuts, Compare closes, the last prompt reopens, counts read as words."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QMenu, QTableWidget

from workbench.core.library import Library
from workbench.core.models import GenerationParams, RunRecord, RunStats
from workbench.ui import app
from workbench.ui.app import MainWindow
from workbench.ui.run_views import CompareDialog


def _window(qtbot, library_dir: Path) -> MainWindow:
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    return window


def _menu(window: MainWindow, title: str) -> QMenu:
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title:
            menu = action.menu()
            assert isinstance(menu, QMenu)
            return menu
    raise AssertionError(f"no {title} menu")


def test_view_menu_hides_and_shows_the_docks(qtbot, library_dir) -> None:
    window = _window(qtbot, library_dir)
    toggles = {a.text(): a for a in _menu(window, "View").actions()}
    assert set(toggles) == {"Library", "Run"}
    for name, dock in (("Library", window.library_dock), ("Run", window.run_dock)):
        toggle = toggles[name]
        assert toggle.isEnabled() and toggle.isChecked()
        toggle.trigger()
        assert not dock.isVisible() and not toggle.isChecked()
        toggle.trigger()
        assert dock.isVisible() and toggle.isChecked()


class _Opened(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_user_guide_opens_the_guides_contents_page(qtbot, library_dir) -> None:
    window = _window(qtbot, library_dir)
    opened = _Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")  # no viewer starts
    try:
        assert "User guide" in [a.text() for a in _menu(window, "Help").actions()]
        window.guide_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert len(opened.urls) == 1
    page = Path(opened.urls[0].toLocalFile())
    assert page.name == "README.md" and page.parent.name == "docs"
    assert "## User guide" in page.read_text(encoding="utf-8")
    assert (page.parent / "guide" / "few-shot.md").is_file()
    assert "Opened the user guide" in window.statusBar().currentMessage()


def test_user_guide_missing_says_where_it_would_be(qtbot, library_dir, monkeypatch) -> None:
    window = _window(qtbot, library_dir)
    monkeypatch.setattr(app, "user_guide_page", lambda: None)
    assert window.open_user_guide() is False
    box = window.help_box
    assert box is not None and box.isVisible()
    assert "not part of this installation" in box.text() and "docs/guide" in box.text()


def test_keyboard_shortcuts_are_read_from_the_actions(qtbot, library_dir) -> None:
    window = _window(qtbot, library_dir)
    # an action added later, in a panel, is listed too: nothing is written by hand
    extra = QAction("Frobnicate the examples", window.few_shot.table)
    extra.setShortcut(QKeySequence("Ctrl+Alt+F"))
    extra.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    window.few_shot.table.addAction(extra)
    assert "Keyboard shortcuts" in [a.text() for a in _menu(window, "Help").actions()]
    window.shortcuts_action.trigger()
    dialog = window.shortcuts_dialog
    assert dialog is not None and dialog.isVisible()
    table = dialog.findChild(QTableWidget, "shortcutsTable")
    rows = {
        tuple(table.item(r, c).text() for c in range(table.columnCount()))
        for r in range(table.rowCount())
    }
    native = QKeySequence.SequenceFormat.NativeText
    save = window.save_action.shortcut().toString(native)
    assert ("Save version", save, "Everywhere") in rows
    assert ("Import", "Ctrl+I", "Everywhere") in rows
    paste = QKeySequence(QKeySequence.StandardKey.Paste).toString(native)
    assert ("Paste examples", paste, "Few-shot tab") in rows
    assert ("Frobnicate the examples", "Ctrl+Alt+F", "Few-shot tab") in rows
    with_keys = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert table.rowCount() == len(with_keys)


def _run(temperature: float, seed: int, output: str) -> RunRecord:
    return RunRecord(
        model="SmolLM2",
        backend="llama.cpp",
        output=output,
        params=GenerationParams(temperature=temperature, seed=seed, stop=["\n"]),
        variables={"country": "France", "notes": "line one\nline two"},
        stats=RunStats(completion_tokens=3, tokens_per_s=12.5),
    )


def test_compare_shows_name_value_lines_and_closes(qtbot) -> None:
    dialog = CompareDialog(_run(0.7, 1, "Blue."), _run(1.0, 2, "Red."))
    qtbot.addWidget(dialog)
    dialog.show()
    left, right = (label.text() for label in dialog.settings_labels)
    assert "{" not in left and "}" not in left
    assert "  temperature: 0.7" in left.splitlines()
    assert "  seed: 2" in right.splitlines() and '  stop string: ["\\n"]' in right.splitlines()
    assert "  country: France" in left.splitlines()
    assert "  notes: line one…" in left.splitlines()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    dialog.show()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_the_app_reopens_on_the_last_prompt_used(qtbot, library_dir) -> None:
    library = Library(library_dir)
    first = library.new_prompt("First")
    second = library.new_prompt("Second")
    library.close()
    window = _window(qtbot, library_dir)
    window.library_panel.select(second.id)
    assert window.working is not None and window.working.id == second.id
    window.close()
    again = _window(qtbot, library_dir)
    assert again.working is not None and again.working.id == second.id
    assert again.library_panel.current_id() == second.id
    again.library.delete_prompt(second.id)
    again.close()
    third = _window(qtbot, library_dir)  # the last one is gone: the first in the list
    assert third.working is not None and third.working.id == first.id


def test_loading_the_samples_counts_prompts_and_test_sets(qtbot, library_dir) -> None:
    window = _window(qtbot, library_dir)
    window.load_sample_library()
    message = window.statusBar().currentMessage()
    library = Library(library_dir)
    prompts, test_sets = len(library.prompts), len(library.test_sets)
    assert prompts > 1 and test_sets > 1
    assert message == f"Added {prompts} prompts and {test_sets} test sets"
    assert not re.search(r"\(s\)", message)
    window.load_sample_library()
    assert window.statusBar().currentMessage() == "The samples are already here"
