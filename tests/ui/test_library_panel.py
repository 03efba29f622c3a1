"""The library sidebar as a user meets it: the search filters the list without
switching the open prompt, an import that replaces the open prompt keeps the list,
History, the editor and the Run panel on it, and History reads as what changed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from tests.core.exchange_helpers import add_soft_prompt
from workbench.core import exchange
from workbench.core.library import Library
from workbench.core.models import new_id
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


def _import_replacing(qtbot, window: MainWindow, bundle: Path) -> None:
    """File → Import… of `bundle`, every clash resolved as Replace, then Import."""
    job = window.import_file(bundle)
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    dialog = window.import_dialog
    qtbot.waitUntil(dialog.isVisible)
    replace = dialog.all_clashes.findData("replace")
    dialog.all_clashes.setCurrentIndex(replace)
    dialog.all_clashes.activated.emit(replace)
    qtbot.mouseClick(dialog.findChild(QPushButton, "importApply"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.import_dialog is None, timeout=10_000)


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


def test_an_import_that_replaces_the_open_prompt_keeps_list_history_editor_and_run_on_it(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    first_id, open_id = sorted([new_id(), new_id()])  # the open one is not imported first
    source = Library(tmp_path / "source")
    source.new_prompt("Alpha", id=first_id, user_template="A {{ a }}")
    source.new_prompt("Beta", id=open_id, user_template="Imported {{ b }}")
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    mine = Library(library_dir)
    mine.new_prompt("Beta", id=open_id, user_template="Mine {{ b }}")
    mine.new_prompt("Other", user_template="Other {{ c }}")
    soft = add_soft_prompt(mine, "beta soft", open_id)

    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    panel.select(open_id)
    run = window.run_panel
    run.soft_prompt.setCurrentIndex(run.soft_prompt.findData(soft.id))  # the user's choice

    _import_replacing(qtbot, window, bundle)
    assert "1 added, 1 replaced" in window.statusBar().currentMessage()

    assert window.working is not None and window.working.id == open_id
    assert window.editor.template.toPlainText() == "Imported {{ b }}"
    assert panel.current_id() == open_id
    highlighted = panel.model.prompt_at(panel.list.currentIndex().row())
    assert highlighted is not None and highlighted.id == open_id
    assert [v.version for v in panel.versions._versions] == [2, 1]  # Beta's, replaced
    assert panel.versions.version_at(1).user_template == "Mine {{ b }}"
    assert run.current_prompt().id == open_id
    assert run.soft_prompt.currentData() == soft.id  # the Run panel kept its choice


def test_a_replace_over_unsaved_edits_shows_the_import_and_keeps_the_edits_in_history(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    mine = Library(library_dir)
    beta = mine.new_prompt("Beta", user_template="Mine {{ b }}")
    source = Library(tmp_path / "source")
    source.add_prompt_verbatim(beta.model_copy(update={"user_template": "Imported {{ b }}"}))
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    panel.select(beta.id)
    window.apply_update({"user_template": "Mine, edited {{ b }}"})  # not saved (Ctrl+S)
    assert window.has_draft()

    _import_replacing(qtbot, window, bundle)  # the edits are autosaved as a draft first

    assert window.editor.template.toPlainText() == "Imported {{ b }}"  # not the old draft
    assert not window.has_draft() and Library(library_dir).draft(beta.id) is None
    assert "unsaved edits of Beta were saved" in window.statusBar().currentMessage()
    assert [v.version for v in panel.versions._versions] == [3, 2, 1]
    assert panel.versions.version_at(1).user_template == "Mine, edited {{ b }}"
    window.autosave()  # nothing brings the draft back
    assert Library(library_dir).draft(beta.id) is None


def _line_colour(view, prefix: str) -> str:
    """The text colour the highlighter gives the first line that starts with `prefix`."""
    block = view.document().firstBlock()
    while block.isValid():
        if block.text().startswith(prefix):
            formats = block.layout().formats()
            assert formats, f"{block.text()!r} is not highlighted"
            return formats[0].format.foreground().color().name()
        block = block.next()
    raise AssertionError(f"no line starts with {prefix!r}")


def test_history_reads_what_happened_and_what_changed_and_restore_asks_first(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    v1 = library.new_prompt(
        "Sentiment", user_template="Label the review.\nReview: {{ review }}\nOne word."
    )
    library.save_prompt(
        v1.model_copy(update={"user_template": "Label the review.\nReview: {{ review }}\nTwo."})
    )
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    panel.select(v1.id)
    rows = [panel.versions.row_text(r) for r in range(panel.versions.rowCount())]
    assert rows[0].startswith("v2 · edited · ") and rows[0].endswith("(current)")
    assert rows[1].startswith("v1 · created · ")

    panel.version_list.setCurrentIndex(panel.versions.index(1))
    text = panel.diff.toPlainText()
    assert text.startswith("From v1 to the current v2")
    assert "── User template ──" in text
    assert "  Review: {{ review }}\n- One word.\n+ Two." in text  # lines, not JSON
    assert "\\n" not in text and '"user_template"' not in text
    added, removed = _line_colour(panel.diff, "+ "), _line_colour(panel.diff, "- ")
    assert added != removed and "#000000" not in (added, removed)
    assert panel.diff.height() > panel.version_list.height()  # the diff gets the room

    asked: list[tuple[str, str]] = []
    panel.confirm = lambda title, question: asked.append((title, question)) or False
    window.apply_update({"system": "unsaved"})
    window.autosave()
    qtbot.mouseClick(panel.restore_button, Qt.MouseButton.LeftButton)
    ((title, question),) = asked
    assert title == "Restore version 1"
    assert "replaces the current version 2" in question and "new version 3" in question
    assert "unsaved edits" in question
    assert len(Library(library_dir).history(v1.id)) == 2  # declined: nothing changed

    panel.confirm = lambda title, question: True
    qtbot.mouseClick(panel.restore_button, Qt.MouseButton.LeftButton)
    assert len(Library(library_dir).history(v1.id)) == 3
    assert window.editor.template.toPlainText().endswith("One word.")
    assert panel.versions.row_text(0).startswith("v3 · restored v1 · ")
