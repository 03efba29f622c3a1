"""Optimise… on the embedded model: a small search from the dialog, its plot and
held-out comparison, Apply making a new version, Stop within one candidate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.integration.test_optimise import _library
from workbench.core.library import Library
from workbench.ui.jobs import JobRunner
from workbench.ui.optimise import OptimiseDialog
from workbench.ui.session import ModelSession

TIMEOUT_MS = 120_000


@pytest.fixture
def session(qtbot) -> Iterator[ModelSession]:
    jobs = JobRunner()
    session = ModelSession(jobs)
    session.load_selected()
    qtbot.waitUntil(lambda: session.backend is not None, timeout=TIMEOUT_MS)
    yield session
    backend = session.backend
    jobs.shutdown()
    if backend is not None:
        backend.close()


def _dialog(qtbot, library_dir: Path, session: ModelSession) -> tuple[OptimiseDialog, Library]:
    library, prompt = _library(library_dir)
    dialog = OptimiseDialog(library, session, session.jobs, prompt)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog, library


def test_a_small_search_runs_and_applies_a_new_version(qtbot, library_dir, session) -> None:
    dialog, library = _dialog(qtbot, library_dir, session)
    dialog.budget.setValue(4)
    dialog.max_examples.setValue(3)
    assert "up to 4 candidates on 4 validation rows" in dialog.cost.text()
    assert "the test split is not used" in dialog.cost.text()
    prompt_id = dialog.prompt.id
    applied = []
    dialog.applied.connect(applied.append)
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is None, timeout=TIMEOUT_MS)
    assert dialog.outcome is not None and dialog.outcome.complete
    assert len(dialog.plot.scores) == 4 and dialog.plot.current_at is not None
    text = dialog.status.text()
    assert "4 candidates. Validation: the winner scores" in text
    assert "Held out (4 rows): as written" in text and "optimised" in text
    assert library.prompts[prompt_id].version == 1  # nothing changed before Apply
    assert dialog.apply.isEnabled()
    qtbot.mouseClick(dialog.apply, Qt.MouseButton.LeftButton)
    assert applied and applied[0].version == 2
    reopened = Library(library_dir)
    assert reopened.prompts[prompt_id].version == 2
    assert "Optimised on the validation split" in reopened.prompts[prompt_id].description
    assert len(reopened.eval_runs_for(prompt_id)) == 1  # the held-out comparison is kept
    assert "Saved as version 2" in dialog.status.text()


def test_stop_ends_the_search_within_one_candidate(qtbot, library_dir, session) -> None:
    dialog, library = _dialog(qtbot, library_dir, session)
    dialog.budget.setValue(40)
    seen = []

    def first_score(events: list) -> None:
        seen.extend(events)
        if dialog.job is not None and dialog.plot.scores:
            dialog.stop.click()

    dialog.start.click()
    assert dialog.job is not None
    on_events = dialog.job.on_events
    assert on_events is not None

    def watched(events: list) -> None:
        on_events(events)
        first_score(events)

    dialog.job.on_events = watched
    qtbot.waitUntil(lambda: dialog.job is None, timeout=TIMEOUT_MS)
    assert dialog.outcome is not None and not dialog.outcome.complete
    assert len(dialog.outcome.sample_scores) < 40
    assert not dialog.apply.isEnabled()  # a stopped search is not applied
    assert library.prompts[dialog.prompt.id].version == 1


def test_a_prompt_without_a_test_set_says_what_to_do(qtbot, library_dir, session) -> None:
    library = Library(library_dir)
    prompt = library.new_prompt("bare", user_template="{{ q }}")
    dialog = OptimiseDialog(library, session, session.jobs, prompt)
    qtbot.addWidget(dialog)
    assert "no test set" in dialog.cost.text() and not dialog.start.isEnabled()


def test_optimise_from_the_few_shot_tab_shows_the_new_version_everywhere(
    qtbot, library_dir
) -> None:
    from workbench.ui.app import MainWindow

    library, prompt = _library(library_dir)
    window = MainWindow(library, load_model=False)  # the search's pool loads the model
    qtbot.addWidget(window)
    window.show()
    assert window.working is not None and window.working.id == prompt.id
    window.tabs.setCurrentWidget(window.few_shot)
    window.few_shot.style_combo.setCurrentIndex(1)  # an unsaved edit: saved first
    assert window.has_draft()
    button = window.few_shot.optimise_button
    assert "validation split" in button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = window.optimise_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.prompt.version == 2 and not window.has_draft()
    dialog.budget.setValue(2)
    dialog.max_examples.setValue(2)
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is None, timeout=TIMEOUT_MS)
    assert dialog.apply.isEnabled(), dialog.status.text()
    qtbot.mouseClick(dialog.apply, Qt.MouseButton.LeftButton)

    reopened = Library(library_dir)
    saved = reopened.prompts[prompt.id]
    assert saved.version == 3
    assert "Optimised on the validation split" in saved.description
    assert [p.version for p in reopened.history(prompt.id)] == [1, 2, 3]
    # the window, the Few-shot tab and History follow the applied version
    assert window.working.version == 3 and window.saved.version == 3
    assert window.working.few_shot == saved.few_shot
    assert window.few_shot.few_shot() == saved.few_shot
    assert "v3" in window.library_panel.versions.data(window.library_panel.versions.index(0))
    assert "version 3" in window.statusBar().currentMessage()
    assert "unsaved draft" not in window.windowTitle()
    window.close()


def test_optimise_without_a_test_set_says_what_to_do_and_opens_nothing(qtbot, library_dir) -> None:
    from workbench.ui.app import MainWindow

    library = Library(library_dir)
    library.new_prompt("bare", user_template="{{ q }}")
    window = MainWindow(library, load_model=False)
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.few_shot)
    qtbot.mouseClick(window.few_shot.optimise_button, Qt.MouseButton.LeftButton)
    assert window.optimise_dialog is None
    message = window.few_shot.message
    assert message.isVisible() and "needs a test set" in message.text()
    assert "Test sets tab" in message.text()
    assert Library(library_dir).prompts[window.working.id].version == 1


def test_a_search_left_unapplied_shows_the_split_it_saved(qtbot, library_dir) -> None:
    from workbench.core.models import TestSet
    from workbench.ui.app import MainWindow

    library, prompt = _library(library_dir)
    written = library.test_sets_for(prompt.id)[0]
    unsplit = written.model_copy(
        update={"rows": [r.model_copy(update={"split": None}) for r in written.rows]}
    )
    library.save_test_set(TestSet.model_validate(unsplit.model_dump()))
    window = MainWindow(library, load_model=False)
    qtbot.addWidget(window)
    window.show()
    assert {r.split for r in window.test_sets.current_test_set().rows} == {None}
    window.few_shot.optimise_button.click()
    dialog = window.optimise_dialog
    assert dialog is not None
    dialog.budget.setValue(1)
    dialog.start.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=TIMEOUT_MS)
    dialog.reject()  # closed without Apply
    shown = window.test_sets.current_test_set()
    assert {r.split for r in shown.rows} == {"train", "validation", "test"}
    assert shown.rows == Library(library_dir).test_sets[written.id].rows
    assert Library(library_dir).prompts[prompt.id].version == 1


def test_the_model_can_propose_instructions_to_try(qtbot, library_dir, session) -> None:
    dialog, _ = _dialog(qtbot, library_dir, session)
    dialog.budget.setValue(2)
    dialog.propose.setValue(2)
    assert "first the model proposes 2 instructions" in dialog.cost.text()
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is None, timeout=TIMEOUT_MS)
    assert dialog.outcome is not None and dialog.outcome.complete
    proposed = dialog.proposed
    assert len(proposed) <= 2 and all(text.strip() for text in proposed)
    # the search space holds the prompt's instruction and what the model proposed
    assert dialog.outcome.space.instructions == [dialog.prompt.system, *proposed]
