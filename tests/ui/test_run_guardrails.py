"""The Run panel's guardrails: warnings beside Run for settings that waste a chain of
thought, an empty user turn stopped before it reaches the model, a message about the
model that goes once the model changes, and a new soft prompt offered but never picked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.graduate.helpers import stored_soft_prompt
from workbench.core.library import Library
from workbench.core.models import ChainOfThought, CoTMode, GenerationParams
from workbench.ui.jobs import JobRunner
from workbench.ui.run import RunPanel
from workbench.ui.session import ModelSession, PromptSelection


@pytest.fixture
def built(qtbot, library_dir: Path) -> Iterator[tuple[Library, PromptSelection, RunPanel]]:
    library = Library(library_dir)
    jobs = JobRunner()
    try:
        session = ModelSession(jobs)  # nothing loaded: the model is "still loading"
        selection = PromptSelection()
        panel = RunPanel(library, jobs, session, selection, lambda _params: None)
        qtbot.addWidget(panel)
        panel.show()
        yield library, selection, panel
    finally:
        jobs.shutdown()


def test_chain_of_thought_with_four_new_tokens_is_warned_beside_run(built) -> None:
    library, selection, panel = built
    prompt = library.new_prompt(
        "Think",
        user_template="{{ q }}",
        cot=ChainOfThought(mode=CoTMode.ZERO_SHOT),
        params=GenerationParams(max_new_tokens=256),
    )
    selection.select(prompt)
    assert panel.run_warnings.isHidden()
    panel.max_tokens.setValue(4)
    assert panel.run_warnings.isVisible()
    assert "Max new tokens 4" in panel.run_warnings.text()
    panel.max_tokens.setValue(256)
    panel.stops.setPlainText("\\n")
    assert "line break" in panel.run_warnings.text()
    panel.stops.setPlainText("")
    assert panel.run_warnings.isHidden()


def test_an_empty_user_turn_is_stopped_with_a_reason(built) -> None:
    library, selection, panel = built
    prompt = library.new_prompt("Empty", user_template="")
    selection.select(prompt)
    panel.run()
    assert not panel.running
    assert panel.run_message.isVisible()
    assert "user template is empty" in panel.run_message.text()
    assert panel.history_model.rowCount() == 0  # nothing was run or recorded


def test_the_loading_message_goes_when_the_model_changes(built) -> None:
    library, selection, panel = built
    selection.select(library.new_prompt("Hello", user_template="Hi"))
    panel.run()  # no model loaded yet
    assert panel.run_message.isVisible() and "still loading" in panel.run_message.text()
    panel.session.backend_changed.emit(None)  # a (re)load started: the message is stale
    assert panel.run_message.isHidden()


def test_a_new_soft_prompt_is_listed_but_not_picked(built) -> None:
    library, selection, panel = built
    prompt = library.new_prompt("Sentiment", user_template="{{ text }}")
    selection.select(prompt)
    assert panel.soft_prompt.currentData() is None
    soft = stored_soft_prompt(library, prompt)
    panel.soft_prompt_added(soft)
    ids = [panel.soft_prompt.itemData(i) for i in range(panel.soft_prompt.count())]
    assert soft.id in ids
    assert panel.soft_prompt.currentData() is None  # still "none": the user picks
