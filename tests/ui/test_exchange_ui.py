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


def _wait(qtbot, job) -> None:
    """Import and export run as jobs: wait until this one has ended."""
    assert job is not None
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)


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

    _wait(qtbot, window.import_file(bundle))
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
    _wait(qtbot, dialog.job)
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
    _wait(qtbot, window.import_file(bad))
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
    _wait(qtbot, window.import_file(FIXTURES / "basic.prompty"))
    dialog = window.import_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert "model configuration" in dialog.findChild(QLabel, "importNotes").text()
    qtbot.mouseClick(dialog.findChild(QPushButton, "importApply"), Qt.MouseButton.LeftButton)
    _wait(qtbot, dialog.job)
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
    # one plain sentence of what it carries, not a list whose one entry says "nothing:"
    assert "nothing" not in losses.text() and "<li>" not in losses.text()
    assert "prompts, every version, test sets" in losses.text()
    dialog.format.setCurrentIndex(dialog.format.findData("prompty"))
    assert "Not carried over" in losses.text() and "test sets" in losses.text()
    dialog.whole.setChecked(True)
    assert "One file per prompt" in losses.text()
    _wait(qtbot, dialog.export_to(tmp_path / "out"))
    report = dialog.report
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
    _wait(qtbot, third.export_to(tmp_path / "out", overwrite=False))
    caught = third.would_overwrite
    assert isinstance(caught, exchange.ExportWouldOverwrite)
    assert [p.name for p in caught.paths] == ["Capital.prompty", "Greeting.prompty"]
    assert (tmp_path / "out" / "Capital.prompty").read_text() == "edited by hand"
    _wait(qtbot, third.export_to(tmp_path / "out"))  # the user said yes
    assert third.report is not None
    assert snapshot(tmp_path / "out") == before

    window.show_export()
    again = window.export_dialog
    again.format.setCurrentIndex(again.format.findData("prompty"))
    again.whole.setChecked(True)
    _wait(qtbot, again.export_to(tmp_path / "one.prompty"))
    assert again.report is None  # needs a folder
    assert "choose a folder" in again.findChild(QLabel, "exportMessage").text()
    assert again.isVisible()


def test_reading_an_import_runs_on_the_worker_and_stop_ends_it(
    qtbot, library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from PySide6.QtWidgets import QProgressDialog

    source = Library(tmp_path / "source")
    rich_library(source)
    bundle = tmp_path / "big.zip"
    exchange.export(source, "bundle", bundle)
    window = open_window(qtbot, library_dir)
    before = snapshot(library_dir)
    read_in: list[str] = []
    real_read = exchange.read_package

    def slow_read(path: Path, name: str | None = None, cancel=None) -> exchange.Package:
        read_in.append(threading.current_thread().name)
        assert cancel is not None and cancel.wait(10)  # a 2 GiB bundle, until Stop
        return real_read(path, name, cancel)

    monkeypatch.setattr(exchange, "read_package", slow_read)
    job = window.import_file(bundle)
    progress = window.findChild(QProgressDialog, "exchangeProgress")
    assert progress is not None and progress.isVisible()
    qtbot.waitUntil(lambda: read_in != [], timeout=5000)
    assert read_in == ["workbench-jobs"]  # never the GUI thread
    assert window.import_file(bundle) is None  # one at a time
    stop = progress.findChild(QPushButton)
    assert stop is not None and stop.text() == "Stop"
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    _wait(qtbot, job)
    assert "stopped" in window.statusBar().currentMessage()
    assert window.import_dialog is None
    assert snapshot(library_dir) == before
    assert QApplication.overrideCursor() is None  # no wait cursor: the GUI stays live


def test_stopping_an_import_while_it_is_written_keeps_the_library(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    import threading

    source = Library(tmp_path / "source")
    rich_library(source)
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    window = open_window(qtbot, library_dir)
    window.library_panel.new_prompt("Mine")
    window.autosave()
    before = snapshot(library_dir)
    _wait(qtbot, window.import_file(bundle))
    dialog = window.import_dialog
    real_apply = dialog.plan.apply
    applied_in: list[str] = []

    def slow_apply(cancel: threading.Event):
        applied_in.append(threading.current_thread().name)
        assert cancel.wait(10)  # writing a big bundle, until Stop
        return real_apply(cancel)

    dialog.plan.apply = slow_apply
    job = dialog.apply()
    qtbot.waitUntil(lambda: applied_in != [], timeout=5000)
    dialog.reject()  # Cancel while writing means Stop; the dialog stays
    _wait(qtbot, job)
    assert applied_in == ["workbench-jobs"]
    assert dialog.isVisible() and dialog.import_result is None
    assert "nothing was imported" in dialog.message.text()
    assert snapshot(library_dir) == before
    assert _names(window) == ["Mine"]
    dialog.reject()  # now it closes
    assert window.import_dialog is None


def test_import_preview_lists_templates_over_the_render_limits(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(
        'prompts:\n  - "{{ \'a\' * 100000000 }}"\n  - "Fine: {{ text }}"\n'
        "tests:\n  - vars: {text: x}\n",
        "utf-8",
    )
    window = open_window(qtbot, library_dir)
    before = snapshot(library_dir)
    _wait(qtbot, window.import_file(hostile))
    dialog = window.import_dialog
    qtbot.waitUntil(dialog.isVisible)
    warning = dialog.findChild(QLabel, "importTemplateProblems")
    assert warning is not None and "100,000,000" in warning.text()
    assert "max_value_size" in warning.text()
    assert snapshot(library_dir) == before  # planning rendered and wrote nothing
    dialog.reject()
