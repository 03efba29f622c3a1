"""The Graduate panel built on its own (no main window): it shows the prompt the
selection holds and follows the session's model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox, QLineEdit, QListView, QPushButton

from tests.ui.graduate.helpers import (
    child,
    sentiment_prompt,
    sentiment_set,
    stored_soft_prompt,
    text_of,
)
from workbench.core.backends.registry import spec_for
from workbench.core.library import Library
from workbench.core.models import FewShot, FewShotExample
from workbench.core.tuning import init_text
from workbench.ui.graduate import GraduatePanel
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection


def test_a_standalone_panel_shows_the_selected_prompt_and_follows_the_model(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=12)
    soft = stored_soft_prompt(library, prompt)
    jobs = JobRunner()
    session = ModelSession(jobs)
    selection = PromptSelection()
    try:
        panel = GraduatePanel(library, jobs, session, selection)
        qtbot.addWidget(panel)
        assert text_of(panel, "gradData") == "No prompt selected."
        assert not child(panel, QPushButton, "gradStart").isEnabled()
        assert "SmolLM2" in text_of(panel, "gradModel")

        selection.select(prompt)
        assert child(panel, QComboBox, "gradTestSet").currentData() == test_set.id
        assert "8 training examples (2 few-shot + 6 from the train split)" in text_of(
            panel, "gradData"
        )
        assert child(panel, QLineEdit, "gradInitText").text() == init_text(prompt)
        softs = child(panel, QListView, "gradSoftPrompts").model()
        assert softs.rowCount() == 1 and softs.at(0).id == soft.id
        assert child(panel, QPushButton, "gradStart").isEnabled()

        # an edit of the working copy arrives through the selection and is counted again
        more = [*prompt.few_shot.examples, FewShotExample(input="ok", output="positive")]
        selection.update(prompt.model_copy(update={"few_shot": FewShot(examples=more)}))
        qtbot.waitUntil(lambda: panel.prepared is not None and panel.prepared.train_examples == 9)

        # the session's model is the one trained on: a served model cannot be
        server = session.catalog.add(spec_for("http://127.0.0.1:9/v1", name="served"))
        session.select(server.id, "openai", load=False)
        assert "served over HTTP" in text_of(panel, "gradModel")
        assert not child(panel, QPushButton, "gradStart").isEnabled()

        selection.select(None)
        assert text_of(panel, "gradData") == "No prompt selected."
        assert softs.rowCount() == 0
    finally:
        session.close()
        assert jobs.shutdown()
