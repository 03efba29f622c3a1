"""The library sidebar as a user meets it: the search filters the list without
switching the open prompt, an import that replaces the open prompt keeps the list,
History, the editor and the Run panel on it, and History reads as what changed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from workbench.core.library import Library
from workbench.ui.app import MainWindow


def open_window(qtbot, library_dir: Path) -> MainWindow:
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    return window


def _listed(window: MainWindow) -> list[str]:
    model = window.library_panel.model
    return [model.prompt_at(r).name for r in range(model.rowCount())]


def test_typing_in_the_search_filters_the_list_and_keeps_the_open_prompt(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    library.new_prompt("Sentiment", user_template="Review: {{ review }}")
    summary = library.new_prompt("Summary", user_template="Summarise: {{ text }}")
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    panel.select(summary.id)
    assert window.working is not None and window.working.id == summary.id
    opened: list[object] = []
    panel.prompt_selected.connect(opened.append)

    qtbot.keyClicks(panel.search, "senti")  # every keystroke filters; Summary is hidden
    assert _listed(window) == ["Sentiment"]
    assert opened == []
    assert window.working.id == summary.id
    assert window.editor.template.toPlainText() == "Summarise: {{ text }}"
    assert panel.current_id() == summary.id
    assert [v.version for v in panel.versions._versions] == [1]
    assert not panel.list.currentIndex().isValid()  # nothing else is highlighted

    qtbot.keyClicks(panel.search, "zzz")  # nothing matches: still nothing switches
    assert _listed(window) == [] and opened == [] and window.working.id == summary.id

    panel.search.clear()  # the open prompt is listed again, and highlighted
    assert opened == [] and window.working.id == summary.id
    assert panel.model.prompt_at(panel.list.currentIndex().row()).id == summary.id

    qtbot.keyClicks(panel.search, "senti")  # a pick opens the other one
    rect = panel.list.visualRect(panel.model.index(0))
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.working.id != summary.id and window.working.name == "Sentiment"
    assert window.editor.template.toPlainText() == "Review: {{ review }}"
    assert len(opened) == 1
