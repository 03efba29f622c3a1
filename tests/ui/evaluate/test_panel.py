"""The panel driven with pytest-qt (offscreen), built on its own: the real job runner and
`run_evaluation` against a fake backend loaded through the pool's patched loader, so the
whole flow — plan, job, live grid, summary, saving, history, stop — is checked in a
second."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListView

from tests.ui.evaluate.helpers import (
    FakeBackend,
    button,
    click,
    message,
    sentiment_prompt,
    sentiment_set,
)
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.library import Library
from workbench.core.models import CoTMode, VariantSpec
from workbench.ui.evaluate import (
    FAIL_COLOUR,
    PASS_COLOUR,
    EvaluatePanel,
    ResultsGridModel,
    VariantsModel,
)
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection


def test_run_problems_show_as_a_message(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.run()
    assert "no test set" in message(panel) and not panel.running

    test_set = sentiment_set(panel.library, prompt)
    panel.refresh()
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("validation"))
    panel.run()
    assert "no rows in the validation split" in message(panel)
    panel.split_combo.setCurrentIndex(0)
    panel.library.save_test_set(test_set.model_copy(update={"labels": None}))
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("likelihood"))
    panel.run()
    assert "no label set" in message(panel) and not panel.running


def test_a_comparison_runs_as_one_job_off_the_gui_thread(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.variants_model.set_variants(
        [
            VariantSpec(name="zero-shot", few_shot_count=0),
            VariantSpec(name="few-shot"),
            VariantSpec(name="same model", model=EMBEDDED_ID),  # shares the first one's
            VariantSpec(name="other backend", model=EMBEDDED_ID, backend="transformers"),
        ]
    )
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000) as finished:
        click(qtbot, panel, "evalRun")
        assert panel.running and not button(panel, "evalRun").isEnabled()
    qtbot.waitUntil(lambda: not panel.running)
    run = finished.args[0]
    assert run.complete and run.mode == "likelihood" and run.metrics[0] == "label"

    # one load per distinct model/backend, on the worker; both closed after the job
    assert sorted(fake_models["loads"]) == [
        (EMBEDDED_ID, "llama.cpp"),
        (EMBEDDED_ID, "transformers"),
    ]
    assert all(b.closed for b in FakeBackend.created)
    assert {t for b in FakeBackend.created for t in b.threads} == {"workbench-jobs"}

    grid = panel.grid_model
    assert grid.rowCount() == 4 and grid.columnCount() == 2 + 4  # review, expected, variants
    assert grid.headerData(0, Qt.Orientation.Horizontal) == "review"
    # the fake is always right: the first variant is marked best, the rest its equals
    assert [grid.headerData(c, Qt.Orientation.Horizontal) for c in grid.variant_columns()] == [
        "zero-shot ★",
        "few-shot ≈",
        "same model ≈",
        "other backend ≈",
    ]
    for row in range(4):
        for column in grid.variant_columns():
            result = grid.data(grid.index(row, column), ResultsGridModel.ResultRole)
            passed = result.scores["label"] == 1.0
            colour = grid.data(grid.index(row, column), Qt.ItemDataRole.BackgroundRole)
            assert colour == (PASS_COLOUR if passed else FAIL_COLOUR)
    tooltip = grid.data(grid.index(0, 2), Qt.ItemDataRole.ToolTipRole)
    assert "positive" in tooltip and "latency" in tooltip and "Label log-likelihoods" in tooltip

    summary = panel.summary_model
    label_row = summary.row_of("label")
    assert summary.headerData(label_row, Qt.Orientation.Vertical) == "label accuracy"
    assert summary.data(summary.index(label_row, 0)) == "100.0 %"  # the fake is always right
    assert summary.row_of("latency_s") > 0 and summary.row_of("context_tokens") > 0
    assert summary.row_of("label", "a") > 0 and summary.row_of("label", "b") > 0

    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert [r.id for r in stored] == [run.id]
    assert panel.findChild(QListView, "evalHistory").model().rowCount() == 1
    assert message(panel) == "Finished: 4 cases × 4 variants."
    assert panel.findChild(QLabel, "evalEta").text() == ""
    assert panel.progress.value() == panel.progress.maximum() == 16


def test_stop_keeps_a_partial_run(qtbot, open_panel, library_dir: Path, fake_models) -> None:
    gate = threading.Semaphore(0)
    fake_models["gate"] = gate
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    click(qtbot, panel, "evalRun")

    def first_case_shown() -> bool:
        gate.release()  # one more case per poll: the worker never runs far ahead
        return panel.grid_model.rowCount() >= 1

    qtbot.waitUntil(first_case_shown)
    assert "about" in panel.findChild(QLabel, "evalEta").text()  # an ETA once a case is done
    caption = panel.findChild(QLabel, "evalCaption")
    assert caption.text().endswith("· running") and "stopped" not in caption.text()
    click(qtbot, panel, "evalStop")
    assert not button(panel, "evalStop").isEnabled()
    gate.release(100)
    qtbot.waitUntil(lambda: not panel.running)
    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert len(stored) == 1 and not stored[0].complete
    done = sum(len(r) for r in stored[0].results)
    assert 1 <= done < 36
    assert "Stopped" in message(panel)
    assert "(stopped)" in panel.history_model.data(panel.history_model.index(0))
    assert caption.text().endswith("· stopped early")
    assert f"Stopped: {done} of 36 results were saved" in message(panel)


def test_a_failing_job_reports_in_the_message_and_closes_its_models(
    qtbot, open_panel, library_dir: Path, fake_models, caplog: pytest.LogCaptureFixture
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    # a chain makes several calls: it cannot be scored by likelihood (found on the worker)
    panel.variants_model.set_variants([VariantSpec(name="chain", cot_mode=CoTMode.CHAIN)])
    with caplog.at_level(logging.ERROR, logger="workbench.ui.evaluate"):
        click(qtbot, panel, "evalRun")
        qtbot.waitUntil(lambda: not panel.running)
    assert "The evaluation failed" in message(panel) and "chain" in message(panel)
    assert FakeBackend.created and all(b.closed for b in FakeBackend.created)
    assert Library(library_dir).eval_runs_for(prompt.id) == []
    assert button(panel, "evalRun").isEnabled()
    logged = [r for r in caplog.records if r.name == "workbench.ui.evaluate.panel"]
    assert logged and "Traceback" in logged[0].getMessage()  # with where it failed


def test_variants_can_be_another_prompt_or_a_soft_prompt(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    from tests.core.exchange_helpers import add_soft_prompt

    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    other = library.new_prompt(
        "Terse sentiment", system="One word.", user_template="Review: {{ review }}"
    )
    soft = add_soft_prompt(library, "tuned", prompt.id, tokens=3, hidden=8)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    model = panel.variants_model
    assert model.choices(VariantsModel.PROMPT) == ["this prompt", "Terse sentiment"]
    assert model.choices(VariantsModel.TUNED) == ["none", "tuned (soft prompt)"]

    model.add_variant(VariantSpec(name="other prompt"))
    model.add_variant(VariantSpec(name="soft"))
    assert model.setData(model.index(1, VariantsModel.PROMPT), "Terse sentiment")
    assert model.variants()[1].prompt_id == other.id
    assert model.data(model.index(1, VariantsModel.PROMPT)) == "Terse sentiment"
    assert not model.setData(model.index(1, VariantsModel.VERSION), "v1")
    assert "set the prompt to 'this prompt' first" in message(panel)
    assert not model.setData(model.index(1, VariantsModel.PROMPT), "Nope")
    assert "No prompt named 'Nope'" in message(panel)
    assert model.setData(model.index(2, VariantsModel.TUNED), "tuned (soft prompt)")
    assert model.variants()[2].soft_prompt_id == soft.id

    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000) as finished:
        click(qtbot, panel, "evalRun")
    run = finished.args[0]
    assert [s.name for s in run.summaries] == ["Review sentiment", "other prompt", "soft"]
    # the soft variant scored after its 3 virtual tokens; the others without any
    (backend,) = FakeBackend.created
    assert backend.soft_scored == [(3, 8)] * len(run.results[2])
    contexts = [run.results[v][0].context_tokens for v in range(3)]
    assert contexts[2] == contexts[0] + 3
    assert contexts[1] < contexts[0]  # the other prompt's shorter system message


def test_the_tuned_column_offers_soft_prompts_and_lora_adapters_trained_meanwhile(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    """A variant runs with one soft prompt or one LoRA adapter of the prompt; one
    trained or imported while the tab was hidden is offered when it is shown again."""
    from tests.core.exchange_helpers import add_lora_adapter, add_soft_prompt

    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    soft = add_soft_prompt(library, "tuned", prompt.id, tokens=3, hidden=8)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    model = panel.variants_model
    assert model.choices(VariantsModel.TUNED) == ["none", "tuned (soft prompt)"]
    panel.hide()
    adapter = add_lora_adapter(panel.library, "yes-no", prompt.id)  # the Graduate tab's
    panel.show()
    assert model.choices(VariantsModel.TUNED) == [
        "none",
        "tuned (soft prompt)",
        "yes-no (LoRA adapter)",
    ]
    assert model.headerData(VariantsModel.TUNED, Qt.Orientation.Horizontal) == "tuned"

    model.add_variant(VariantSpec(name="lora"))
    cell = model.index(1, VariantsModel.TUNED)
    assert model.setData(cell, "tuned (soft prompt)")
    assert model.variants()[1].soft_prompt_id == soft.id
    assert model.setData(cell, "yes-no (LoRA adapter)")  # one or the other, never both
    spec = model.variants()[1]
    assert spec.adapter_id == adapter.id and spec.soft_prompt_id is None
    assert model.data(cell) == "yes-no (LoRA adapter)"
    assert not model.setData(cell, "nope")
    assert "no soft prompt or LoRA adapter named 'nope'" in message(panel)
    assert model.variants()[1].adapter_id == adapter.id  # a rejected edit changes nothing
    assert model.setData(cell, "none")
    assert model.variants()[1].adapter_id is None

    # run with it on a model it cannot go into: said, nothing saved, the run can be retried
    model.set_variants([VariantSpec(name="lora", adapter_id=adapter.id)])
    click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert "The evaluation failed" in message(panel)
    assert "LoRA adapters run on the transformers and llama.cpp backends" in message(panel)
    assert Library(library_dir).eval_runs_for(prompt.id) == []
    assert button(panel, "evalRun").isEnabled()


def test_the_panel_stands_alone_and_follows_the_selection(qtbot, library: Library) -> None:
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    other = library.new_prompt("Other")
    jobs = JobRunner()
    session = ModelSession(jobs)
    selection = PromptSelection()
    selection.select(prompt)  # selected before the panel exists: it starts there
    try:
        panel = EvaluatePanel(library, jobs, session, selection)
        qtbot.addWidget(panel)
        assert [v.name for v in panel.variants_model.variants()] == ["Review sentiment"]
        assert button(panel, "evalRun").isEnabled()
        panel.variants_model.add_variant(VariantSpec(name="second"))
        selection.update(prompt.model_copy(update={"system": "edited"}))
        assert panel.variants_model.rowCount() == 2  # an edit keeps the variants
        selection.select(other)
        assert [v.name for v in panel.variants_model.variants()] == ["Other"]
        assert not button(panel, "evalRun").isEnabled()  # no test set
        selection.select(None)
        assert panel.variants_model.rowCount() == 0
        # the default-model column says which model "default" is now
        model = panel.variants_model
        spec, backend = session.selected_model()
        selection.select(prompt)
        tooltip = model.data(model.index(0, VariantsModel.MODEL), Qt.ItemDataRole.ToolTipRole)
        assert f"{spec.name} on {backend}" in tooltip
        session.select(spec.id, "transformers", load=False)
        tooltip = model.data(model.index(0, VariantsModel.MODEL), Qt.ItemDataRole.ToolTipRole)
        assert f"{spec.name} on transformers" in tooltip
    finally:
        jobs.shutdown()


def test_a_comparison_led_by_another_prompt_is_filed_under_the_evaluated_one(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    other = library.new_prompt("Terse", system="One word.", user_template="Review: {{ review }}")
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.variants_model.set_variants(
        [VariantSpec(name="terse first", prompt_id=other.id), VariantSpec(name="this prompt")]
    )
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000) as finished:
        click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running)
    run = finished.args[0]
    assert run.prompt_id == prompt.id
    stored = Library(library_dir)
    assert [r.id for r in stored.eval_runs_for(prompt.id)] == [run.id]
    assert stored.eval_runs_for(other.id) == []
    # it shows in the evaluated prompt's history, also when that prompt is selected again
    panel.set_prompt(panel.library.get_prompt(other.id))
    assert panel.history_model.rowCount() == 0
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    assert panel.history_model.rowCount() == 1
    assert panel.history_model.at(0).id == run.id


def test_two_models_are_loaded_one_at_a_time(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.variants_model.set_variants(
        [
            VariantSpec(name="llama.cpp"),
            VariantSpec(name="transformers", model=EMBEDDED_ID, backend="transformers"),
        ]
    )
    click(qtbot, panel, "evalRun")
    assert message(panel) == "Loading models…"  # the session has loaded none
    qtbot.waitUntil(lambda: not panel.running)
    assert message(panel) == "Finished: 4 cases × 2 variants."
    assert fake_models["loads"] == [(EMBEDDED_ID, "llama.cpp"), (EMBEDDED_ID, "transformers")]
    assert fake_models["open_at_load"] == [[], []]  # the first was closed before the second
    assert all(b.closed for b in FakeBackend.created)


def test_a_model_still_loading_is_refused_before_the_job(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    gate = threading.Event()
    panel.jobs.run("busy", lambda cancel: gate.wait(30))  # the session's load waits behind
    load = panel.session.load_selected()
    assert load is not None and panel.session.loading
    try:
        panel.run()
        assert "still loading" in message(panel) and not panel.running
        assert fake_models["loads"] == []
    finally:
        load.stop()  # never loads the real model
        gate.set()


def test_a_run_stopped_before_it_starts_saves_nothing(
    qtbot, open_panel, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    gate = threading.Event()
    panel.jobs.run("ahead", lambda cancel: gate.wait(30))  # the evaluation queues behind it
    click(qtbot, panel, "evalRun")
    click(qtbot, panel, "evalStop")
    gate.set()
    qtbot.waitUntil(lambda: not panel.running)
    assert message(panel) == "Stopped before it started; nothing was saved."
    assert fake_models["loads"] == []
    assert Library(library_dir).eval_runs_for(prompt.id) == []
    assert button(panel, "evalRun").isEnabled()
