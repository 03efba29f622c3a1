"""The main window driven for real with pytest-qt (offscreen), on the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton, QTableView

from workbench.core.library import Library
from workbench.core.models import CoTMode
from workbench.ui.app import MainWindow
from workbench.ui.models import PromptListModel, RunListModel, VersionListModel

MODEL_TIMEOUT_MS = 60_000


def open_window(qtbot, library_dir: Path, load_model: bool = False) -> MainWindow:
    window = MainWindow(Library(library_dir), load_model=load_model)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    if load_model:
        qtbot.waitUntil(lambda: window.run_panel.backend is not None, timeout=MODEL_TIMEOUT_MS)
    return window


def test_empty_library_offers_the_samples_and_loads_them(qtbot, library_dir: Path) -> None:
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    assert panel.empty_banner.isVisible()
    qtbot.mouseClick(panel.seed_button, Qt.MouseButton.LeftButton)
    assert not panel.empty_banner.isVisible()
    names = [panel.model.prompt_at(r).name for r in range(panel.model.rowCount())]
    assert "Review sentiment" in names
    assert "Review sentiment" in [s.name for s in Library(library_dir).search()]


def test_create_a_prompt_type_a_template_and_see_form_and_preview(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    qtbot.mouseClick(window.library_panel.new_button, Qt.MouseButton.LeftButton)
    assert window.working is not None and window.working.name == "Untitled prompt"
    editor = window.editor
    qtbot.keyClicks(editor.system, "You are terse.")
    qtbot.keyClicks(editor.template, "Translate {{ text }} into {{ language }}")
    assert list(editor.var_fields) == ["text", "language"]
    field = window.findChild(QLineEdit, "var_language")
    qtbot.keyClicks(field, "French")
    qtbot.waitUntil(lambda: "into French" in editor.preview.toPlainText())
    assert "You are terse." in editor.preview.toPlainText()
    assert window.working.sample_values == {"language": "French"}
    assert "unsaved draft" in window.windowTitle()


def test_a_long_description_shows_its_start_and_its_whole_text_on_hover(qtbot, library_dir) -> None:
    long = "Sentiment of product reviews, " * 8 + "the end."
    Library(library_dir).new_prompt("Long", description=long, user_template="{{ text }}")
    window = open_window(qtbot, library_dir)
    window.resize(1366, 768)
    line = window.editor.description
    assert line.text() == long and line.toolTip() == long
    assert line.cursorPosition() == 0  # the view starts at "Sentiment", not "…the end."


def test_template_error_is_shown_and_underlined(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    window.library_panel.new_prompt("Broken")
    qtbot.keyClicks(window.editor.template, "Hello")
    qtbot.keyClick(window.editor.template, Qt.Key.Key_Return)
    qtbot.keyClicks(window.editor.template, "{{ name ")
    qtbot.waitUntil(lambda: window.editor.error.isVisible())
    assert "user_template, line 2" in window.editor.error.text()
    assert window.editor.template.has_error_underline()


def test_few_shot_examples_and_cot_modes_follow_into_the_preview(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    window.library_panel.new_prompt("Labels")
    qtbot.keyClicks(window.editor.template, "Review: {{ review }}")
    window.tabs.setCurrentWidget(window.few_shot)
    add = window.few_shot.findChild(QPushButton, "addExample")
    qtbot.mouseClick(add, Qt.MouseButton.LeftButton)
    model = window.few_shot.findChild(QTableView, "fewShotTable").model()
    model.setData(model.index(0, 0), "Great kettle")
    model.setData(model.index(0, model.columnCount() - 1), "positive")
    assert window.working.few_shot.examples[0].output == "positive"
    qtbot.waitUntil(lambda: "Review: Great kettle" in window.editor.preview.toPlainText())

    window.tabs.setCurrentWidget(window.cot)
    mode = window.cot.findChild(QComboBox, "cotMode")
    mode.setCurrentIndex(mode.findData(CoTMode.ZERO_SHOT))
    assert window.working.cot.mode is CoTMode.ZERO_SHOT
    qtbot.waitUntil(lambda: window.working.cot.trigger in window.editor.preview.toPlainText())


@pytest.mark.integration
def test_run_streams_text_keeps_a_record_and_stop_works(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir, load_model=True)
    window.library_panel.new_prompt("Capital")
    qtbot.keyClicks(
        window.editor.template, "What is the capital of {{ country }}? Answer in one sentence."
    )
    qtbot.keyClicks(window.findChild(QLineEdit, "var_country"), "France")
    qtbot.waitUntil(lambda: "tokens with" in window.editor.token_count.text())
    run = window.run_panel
    run.max_tokens.setValue(24)
    run.temperature.setValue(0.0)
    run.probabilities.setChecked(True)
    window.run_action.trigger()  # Ctrl+Enter
    qtbot.waitUntil(lambda: not run.running, timeout=MODEL_TIMEOUT_MS)
    output = run.output.toPlainText()
    assert "Paris" in output
    assert "tokens/s" in run.stats.text()
    assert run.history_model.rowCount() == 1
    stored = Library(library_dir).runs_for(window.working.id)
    assert [r.output for r in stored] == [output]
    # a coloured token explains itself on hover
    cursor_rect = run.output.cursorRect(run.output.document().find("Paris"))
    assert "p = " in run.output.token_tooltip(cursor_rect.center())

    # stop a long run mid-way: at temperature 0 the embedded model lists numbers until the
    # token limit (an "essay" prompt can end after 7 tokens, before Stop is pressed)
    run.max_tokens.setValue(400)
    window.editor.template.clear()
    qtbot.keyClicks(window.editor.template, "List the numbers from 1 to 1000, separated by spaces.")
    window.run_action.trigger()
    qtbot.waitUntil(lambda: len(run.output.toPlainText()) > 20, timeout=MODEL_TIMEOUT_MS)
    window.stop_action.trigger()  # Esc
    qtbot.waitUntil(lambda: not run.running, timeout=MODEL_TIMEOUT_MS)
    assert "stopped" in run.stats.text()
    # the run just shown (runs_for orders by a creation time in whole seconds, so two
    # runs in the same second may come in either order)
    stored = Library(library_dir).runs_for(window.working.id)
    assert len(stored) == 2
    latest = next(r for r in stored if r.output == run.output.toPlainText())
    assert latest.stats.finish_reason == "cancelled"
    assert latest.stats.completion_tokens < 400


def test_restart_finds_everything_as_it_was(qtbot, library_dir, tmp_path) -> None:
    window = open_window(qtbot, library_dir)
    prompt_id = window.library_panel.new_prompt("Persistent")
    qtbot.keyClicks(window.editor.template, "Hi {{ name }}")
    qtbot.keyClicks(window.findChild(QLineEdit, "var_name"), "Ada")
    mode = window.cot.findChild(QComboBox, "cotMode")
    mode.setCurrentIndex(mode.findData(CoTMode.ZERO_SHOT))
    window.close()  # autosaves the draft

    again = open_window(qtbot, library_dir)
    again.library_panel.select(prompt_id)
    assert again.working.user_template == "Hi {{ name }}"
    assert again.working.sample_values == {"name": "Ada"}
    assert again.working.cot.mode is CoTMode.ZERO_SHOT
    assert again.editor.template.toPlainText() == "Hi {{ name }}"
    assert again.findChild(QLineEdit, "var_name").text() == "Ada"


def test_autosave_writes_a_draft_within_a_second(qtbot, library_dir) -> None:
    from workbench.ui.app import AUTOSAVE_MS

    window = open_window(qtbot, library_dir)
    prompt_id = window.library_panel.new_prompt("Typing")
    assert AUTOSAVE_MS <= 1000 and window.autosave_timer.isSingleShot()
    # event-based: the typing starts the autosave timer; its timeout writes the draft
    with qtbot.waitSignal(window.autosave_timer.timeout, timeout=5000):
        qtbot.keyClicks(window.editor.system, "Be brief.")
        assert window.autosave_timer.isActive()
        assert window.autosave_timer.interval() == AUTOSAVE_MS
    assert Library(library_dir).draft(prompt_id) is not None
    assert Library(library_dir).draft(prompt_id).system == "Be brief."


def test_save_version_history_diff_and_restore(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    prompt_id = window.library_panel.new_prompt("Versioned")
    qtbot.keyClicks(window.editor.system, "First.")
    window.save_action.trigger()  # Ctrl+S
    qtbot.keyClicks(window.editor.system, " Second.")
    window.save_action.trigger()
    panel = window.library_panel
    assert panel.versions.rowCount() == 3
    assert "v3" in panel.versions.data(panel.versions.index(0))
    assert "unsaved draft" not in window.windowTitle()
    panel.version_list.setCurrentIndex(panel.versions.index(1))  # v2
    assert "── System message ──\n- First.\n+ First. Second." in panel.diff.toPlainText()
    panel.confirm = lambda title, question: True  # "Restore version 2?" answered Yes
    qtbot.mouseClick(panel.restore_button, Qt.MouseButton.LeftButton)
    assert window.working.system == "First."
    assert window.editor.system.toPlainText() == "First."
    assert Library(library_dir).get_prompt(prompt_id).version == 4


def test_delete_and_undo(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    keep = panel.new_prompt("Keep")
    doomed = panel.new_prompt("Doomed")
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert doomed not in Library(library_dir).prompts
    assert panel.undo_button.isVisible()
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert doomed in Library(library_dir).prompts and keep in Library(library_dir).prompts
    assert panel.current_id() == doomed


def test_search_and_tag_filter(qtbot, library_dir) -> None:
    library = Library(library_dir)
    library.new_prompt("Sentiment", tags=["classification"])
    library.new_prompt("Summary", tags=["writing"])
    window = open_window(qtbot, library_dir)
    panel = window.library_panel
    qtbot.keyClicks(panel.search, "senti")
    assert panel.model.rowCount() == 1 and panel.model.prompt_at(0).name == "Sentiment"
    panel.search.clear()
    panel.tag_filter.setCurrentText("writing")
    assert [panel.model.prompt_at(r).name for r in range(panel.model.rowCount())] == ["Summary"]


def test_item_models_pass_the_model_tester(qtmodeltester, library_dir: Path) -> None:
    library = Library(library_dir)
    for name in ("a", "b", "c"):
        library.new_prompt(name, tags=[name])
    prompts = PromptListModel(library)
    qtmodeltester.check(prompts)
    prompts.set_filter("b")
    qtmodeltester.check(prompts)
    assert prompts.data(prompts.index(0), PromptListModel.TagsRole) == ["b"]

    from workbench.core.models import RunRecord

    runs = RunListModel()
    runs.set_items([RunRecord(model="m", backend="b", output="one\ntwo")])
    runs.add(RunRecord(model="m", backend="b", output=""))
    qtmodeltester.check(runs)
    assert "(empty)" in runs.data(runs.index(0))

    p = library.find_prompt("a")
    library.save_prompt(p.model_copy(update={"system": "changed"}))
    versions = VersionListModel()
    versions.set_versions(library.history(p.id))
    qtmodeltester.check(versions)
    assert versions.data(versions.index(0), Qt.ItemDataRole.UserRole) == 2


def test_the_window_module_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nimport workbench.ui.app\n"
        "print(','.join(m for m in ('torch', 'transformers', 'llama_cpp', 'peft')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_adding_a_missing_model_shows_an_actionable_message(qtbot, library_dir, tmp_path) -> None:
    window = open_window(qtbot, library_dir)
    window.run_panel.add_model_location(str(tmp_path / "missing.gguf"))
    assert "Could not add the model" in window.run_panel.model_status.text()
    assert "does not exist" in window.run_panel.model_status.text()


def test_a_server_is_added_with_its_model_name_and_key_variable(qtbot, library_dir) -> None:
    from workbench.ui.run import ServerDialog

    window = open_window(qtbot, library_dir)
    dialog = ServerDialog(window)
    qtbot.addWidget(dialog)
    dialog.url.setText("http://127.0.0.1:9/v1")  # nothing listens there
    qtbot.keyClicks(dialog.remote_model, "llama-3-8b")
    qtbot.keyClicks(dialog.api_key_env, "MY_KEY")
    url, options = dialog.values()
    assert options == {"remote_model": "llama-3-8b", "api_key_env": "MY_KEY"}
    window.run_panel.add_model_location(url, **options)
    added = [m for m in window.run_panel.catalog.user_models if m.source == "openai"]
    assert [(m.url, m.remote_model, m.api_key_env) for m in added] == [
        ("http://127.0.0.1:9/v1", "llama-3-8b", "MY_KEY")
    ]
    # the new model is picked and loaded at once; its key is missing, and it says so
    assert window.run_panel.selected_model()[0].id == added[0].id
    status = window.run_panel.model_status
    qtbot.waitUntil(lambda: "Could not load the model" in status.text(), timeout=30_000)
    assert "environment variable MY_KEY (the API key) is not set" in status.text()


def test_window_layout_is_remembered(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    window.run_dock.hide()
    window.close()
    again = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(again)
    again.restore_layout()
    again.show()
    assert not again.run_dock.isVisible()
    assert again.library_dock.isVisible()


@pytest.mark.integration
def test_two_runs_compare_side_by_side(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir, load_model=True)
    window.library_panel.new_prompt("Twice")
    qtbot.keyClicks(window.editor.template, "Name a colour.")
    run = window.run_panel
    run.max_tokens.setValue(6)
    for seed in (1, 2):
        run.temperature.setValue(1.0)
        run.seed.setValue(seed)
        run.run()
        qtbot.waitUntil(lambda: not run.running, timeout=MODEL_TIMEOUT_MS)
    assert run.history_model.rowCount() == 2
    run.history.selectAll()
    dialog = run.compare_selected()
    assert dialog is not None
    qtbot.addWidget(dialog)
    older, newer = run.history_model.at(1), run.history_model.at(0)
    assert [p.toPlainText() for p in dialog.panes] == [older.output, newer.output]


def test_test_sets_tab_shows_the_prompts_test_set(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    window.load_sample_library()
    prompt = Library(library_dir).find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    window.tabs.setCurrentWidget(window.test_sets)
    current = window.test_sets.current_test_set()
    assert current is not None and len(current.rows) == 240
    assert window.test_sets.findChild(QTableView, "testRowsTable").model().rowCount() == 240


def test_graduate_button_opens_the_graduate_tab_prefilled(qtbot, library_dir) -> None:
    window = open_window(qtbot, library_dir)
    window.load_sample_library()
    prompt = Library(library_dir).find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    qtbot.mouseClick(window.editor.graduate_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.graduate
    summary = window.graduate.findChild(QLabel, "gradData").text()
    assert summary.startswith("126 training examples (6 few-shot + 120 from the train split)")
    assert "60 held-out rows" in summary


def test_threads_setting_is_saved_for_the_cli_and_next_start(qtbot, library_dir) -> None:
    from workbench.core.backends.base import load_settings

    window = open_window(qtbot, library_dir)
    window.run_panel.threads.setValue(1)
    assert load_settings().threads == 1
    again = open_window(qtbot, library_dir)
    assert again.run_panel.threads.value() == 1


def test_preview_says_why_a_token_count_is_unavailable(qtbot, library_dir) -> None:
    """A server without a tokenizer endpoint: the preview still shows the messages."""
    from workbench.core.backends.base import BackendError

    window = open_window(qtbot, library_dir)
    window.library_panel.new_prompt("Remote")
    qtbot.keyClicks(window.editor.template, "Hello {{ name }}")

    def no_tokenizer(text: str) -> int:
        raise BackendError("the server has no /tokenize endpoint")

    window.editor.set_model_hooks(lambda messages: "templated", no_tokenizer, "remote")
    qtbot.waitUntil(lambda: "unavailable" in window.editor.token_count.text())
    assert "no /tokenize endpoint" in window.editor.token_count.text()
    assert "Hello {{ name }}" in window.editor.preview.toPlainText()
