"""File → Import… and Export… driven for real: the import preview with its clashes and
their resolution, a malformed file refused with every problem, and the export dialog."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QPushButton

from tests.core.exchange_helpers import FIXTURES, rich_library, snapshot
from workbench.core import exchange
from workbench.core.library import Library
from workbench.ui.app import MainWindow


def open_window(qtbot, library_dir: Path) -> MainWindow:
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.resize(1300, 820)
    window.show()
    return window


def _names(window: MainWindow) -> list[str]:
    model = window.library_panel.model
    return [model.prompt_at(r).name for r in range(model.rowCount())]


def test_file_menu_offers_import_and_export(qtbot, library_dir: Path) -> None:
    window = open_window(qtbot, library_dir)
    file_menu = window.menuBar().actions()[0].menu()
    texts = [a.text() for a in file_menu.actions()]
    assert "Import…" in texts and "Export…" in texts
    assert window.import_action.shortcut().toString() == "Ctrl+I"


def test_import_preview_shows_clashes_and_applies_the_chosen_resolution(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    source = Library(tmp_path / "source")
    prompt = rich_library(source)
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    # the library already holds an edited "Capital" with the same id
    rich = Library(library_dir)
    rich.add_prompt_verbatim(
        source.get_prompt(prompt.id).model_copy(update={"user_template": "Mine: {{ country }}"})
    )
    window = open_window(qtbot, library_dir)
    before = snapshot(library_dir)

    window.import_file(bundle)
    dialog = window.import_dialog
    qtbot.waitUntil(dialog.isVisible)
    model = dialog.model
    rows = {model.index(r, 1).data(): r for r in range(model.rowCount())}
    assert set(rows) == {"Capital", "Greeting", "capitals", "capital soft"}
    clash = rows["Capital"]
    assert model.index(clash, 2).data() == "Add as a copy ▾"
    assert "id is taken" in model.index(clash, 3).data()
    assert model.index(rows["Greeting"], 2).data() == "Add"
    assert "1 clash with the library" in dialog.clash_label.text()
    notes = dialog.findChild(QLabel, "importNotes")
    assert notes is None  # the bundle carries everything
    assert snapshot(library_dir) == before  # the preview wrote nothing

    # the user picks "Replace" in the clash row's combo box
    index = model.index(clash, 2)
    dialog.table.setCurrentIndex(index)
    dialog.table.edit(index)
    editor = dialog.table.findChild(QComboBox)
    assert editor is not None
    assert [editor.itemText(i) for i in range(editor.count())] == [
        "Add as a copy",
        "Replace (new version)",
        "Skip",
    ]
    editor.setCurrentIndex(1)
    editor.activated.emit(1)
    assert model.index(clash, 2).data() == "Replace (new version) ▾"
    # a skipped prompt takes its test set along
    skip = dialog.all_clashes.findData("skip")
    dialog.all_clashes.setCurrentIndex(skip)
    dialog.all_clashes.activated.emit(skip)
    assert model.index(rows["capitals"], 2).data() == "Skip (follows its prompt)"
    replace = dialog.all_clashes.findData("replace")
    dialog.all_clashes.setCurrentIndex(replace)
    dialog.all_clashes.activated.emit(replace)

    qtbot.mouseClick(dialog.findChild(QPushButton, "importApply"), Qt.MouseButton.LeftButton)
    assert window.import_dialog is None  # closed, and its plan let go
    assert "Imported: 3 added, 1 replaced" in window.statusBar().currentMessage()
    assert sorted(_names(window)) == ["Capital", "Greeting"]
    stored = Library(library_dir)
    current = stored.get_prompt(prompt.id)
    assert current.user_template == "What is the capital of {{ country }}?"
    assert stored.history(prompt.id)[-2].user_template == "Mine: {{ country }}"
    assert len(stored.test_sets_for(prompt.id)) == 1


def test_a_malformed_file_is_refused_with_its_problems_and_nothing_changes(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    window = open_window(qtbot, library_dir)
    window.library_panel.new_prompt("Keep me")
    before = snapshot(library_dir)
    bad = tmp_path / "broken.yaml"
    bad.write_text("prompts:\n  - file://elsewhere.txt\ntests: 7\n")
    window.import_file(bad)
    box = window.import_problems_box
    qtbot.waitUntil(box.isVisible)
    assert "broken.yaml cannot be imported; nothing was added" in box.text()
    assert "prompts[0]" in box.text() and "tests" in box.detailedText()
    box.close()
    assert QApplication.overrideCursor() is None  # the wait cursor is gone again
    assert snapshot(library_dir) == before
    assert _names(window) == ["Keep me"]


def test_import_of_another_format_lists_what_it_does_not_carry(qtbot, library_dir: Path) -> None:
    window = open_window(qtbot, library_dir)
    window.import_file(FIXTURES / "basic.prompty")
    dialog = window.import_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert "model configuration" in dialog.findChild(QLabel, "importNotes").text()
    qtbot.mouseClick(dialog.findChild(QPushButton, "importApply"), Qt.MouseButton.LeftButton)
    assert _names(window) == ["Basic Prompt"]
    assert window.working is not None and window.working.name == "Basic Prompt"
    assert window.editor.template.toPlainText() == "{{question}}"


def test_export_dialog_shows_losses_and_writes_the_chosen_format(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    rich_library(Library(library_dir))
    window = open_window(qtbot, library_dir)
    window.library_panel.select(next(s.id for s in window.library.search() if s.name == "Capital"))
    window.show_export()
    dialog = window.export_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.only_selected.isChecked() and "Capital" in dialog.only_selected.text()
    losses = dialog.findChild(QLabel, "exportLosses")
    assert "Carries everything" in losses.text()
    dialog.format.setCurrentIndex(dialog.format.findData("prompty"))
    assert "Not carried over" in losses.text() and "test sets" in losses.text()
    dialog.whole.setChecked(True)
    assert "One file per prompt" in losses.text()
    report = dialog.export_to(tmp_path / "out")
    assert report is not None and not dialog.isVisible()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "Capital.prompty",
        "Greeting.prompty",
    ]
    assert "Exported to" in window.statusBar().currentMessage()

    # exporting into the same folder again: nothing is replaced without asking
    window.show_export()
    third = window.export_dialog
    third.format.setCurrentIndex(third.format.findData("prompty"))
    third.whole.setChecked(True)
    before = snapshot(tmp_path / "out")
    (tmp_path / "out" / "Capital.prompty").write_text("edited by hand")
    with pytest.raises(exchange.ExportWouldOverwrite) as caught:
        third.export_to(tmp_path / "out", overwrite=False)
    assert [p.name for p in caught.value.paths] == ["Capital.prompty", "Greeting.prompty"]
    assert (tmp_path / "out" / "Capital.prompty").read_text() == "edited by hand"
    assert third.export_to(tmp_path / "out") is not None  # the user said yes
    assert snapshot(tmp_path / "out") == before

    window.show_export()
    again = window.export_dialog
    again.format.setCurrentIndex(again.format.findData("prompty"))
    again.whole.setChecked(True)
    assert again.export_to(tmp_path / "one.prompty") is None  # needs a folder
    assert "choose a folder" in again.findChild(QLabel, "exportMessage").text()
    assert again.isVisible()
