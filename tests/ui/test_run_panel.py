"""The Run and Library panels built on their own, without a main window: the Run panel
follows the prompt selection (showing the prompt's last output) and shows the model
session's catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.core.library import Library
from workbench.core.models import GenerationParams, RunRecord
from workbench.ui.jobs import JobRunner
from workbench.ui.library_panel import LibraryPanel
from workbench.ui.run import RunPanel
from workbench.ui.session import ModelSession, PromptSelection


def test_the_run_panel_follows_the_selection_and_the_session(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = library.new_prompt(
        "Greeting", user_template="Hi {{ name }}", params=GenerationParams(temperature=0.7)
    )
    jobs = JobRunner()
    try:
        session = ModelSession(jobs)
        selection = PromptSelection()
        edited: list[GenerationParams] = []
        panel = RunPanel(library, jobs, session, selection, edited.append)
        qtbot.addWidget(panel)
        labels = [panel.model_picker.itemText(i) for i in range(panel.model_picker.count())]
        assert labels == [label for label, _key in session.choices()]
        assert labels[0].startswith("SmolLM2") and "llama.cpp" in labels[0]
        selection.select(prompt)
        assert panel.temperature.value() == 0.7
        panel.temperature.setValue(0.2)
        assert edited and edited[-1].temperature == 0.2
        selection.select(None)
        assert panel.history_model.rowCount() == 0
        assert panel.output.toPlainText() == ""
        older = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)  # runs are stamped to the second
        for output, created in (
            ("Hi Ada, an older run.", older),
            ("Hi Ada!", older + timedelta(seconds=1)),
        ):
            library.save_run(
                RunRecord(
                    prompt_id=prompt.id, model="m", backend="b", output=output, created=created
                )
            )
        selection.select(prompt)  # back on it: its last output is shown, not an empty pane
        assert panel.output.toPlainText() == "Hi Ada!"
        session.status_changed.emit("Ready: a test model")
        assert "Ready: a test model" in panel.model_status.text()
    finally:
        jobs.shutdown()


def test_the_library_panel_on_its_own_selects_prompts(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    library.new_prompt("First", user_template="a")
    second = library.new_prompt("Second", user_template="b")
    panel = LibraryPanel(library)
    qtbot.addWidget(panel)
    assert panel.current_id() != second.id
    with qtbot.waitSignal(panel.prompt_selected) as picked:
        panel.select(second.id)
    assert picked.args == [second.id] and panel.current_id() == second.id
