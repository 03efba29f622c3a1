"""The Graduate panel driven with pytest-qt (offscreen).

The fast tests run the real panel and job runner against a fake `graduate()` (patched
into `workbench.core.graduation`), so the whole event flow — plot, status, saving,
comparison table, messages, errors — is checked in a second. The tests marked
`integration` train real (tiny) soft prompts on the embedded SmolLM2 model: Stop
mid-run, a full run with the held-out comparison, nearest tokens and PEFT export, and
Pause/Resume. On 2 slow CPU cores a training step takes several seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSpinBox,
    QTableView,
)

from workbench.core import graduation
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.evaluation import Progress, summarise
from workbench.core.library import Library
from workbench.core.models import (
    CaseResult,
    EvalRun,
    FewShot,
    FewShotExample,
    GenerationParams,
    Prompt,
    SoftPrompt,
    TestRow,
    TestSet,
    TrainConfig,
    VariantSpec,
)
from workbench.core.softprompt import load_soft_prompt_tensor, soft_prompt_bytes
from workbench.core.tuning import (
    StepEvent,
    TrainingError,
    TuningFinished,
    TuningResult,
    ValidationEvent,
    init_text,
)
from workbench.ui.app import MainWindow
from workbench.ui.graduate import (
    ComparisonModel,
    GraduatePanel,
    NearestTokensModel,
    RingSeries,
    SoftPromptListModel,
    find_embedding_key,
    step_status,
)

MODEL_TIMEOUT_MS = 300_000

REVIEWS = [
    ("I love it! Wonderful, perfect, the best purchase ever.", "positive"),
    ("Terrible. It broke on day one, awful, I hate it.", "negative"),
    ("Great value and it works beautifully, very happy.", "positive"),
    ("Awful quality, a complete waste of money.", "negative"),
]


def sentiment_prompt(library: Library, examples: bool = True) -> Prompt:
    """Like the sample library's review-sentiment prompt, with two labels."""
    shots = [
        FewShotExample(vars={"review": "Absolutely brilliant, I adore it."}, output="positive"),
        FewShotExample(vars={"review": "Dreadful, it stopped working."}, output="negative"),
    ]
    return library.new_prompt(
        "Review sentiment",
        system="Classify the sentiment of the review as positive or negative. "
        "Answer with one word.",
        user_template="Review: {{ review }}\nSentiment:",
        few_shot=FewShot(examples=shots if examples else []),
        params=GenerationParams(max_new_tokens=4),
    )


def sentiment_set(library: Library, prompt: Prompt, count: int = 12) -> TestSet:
    rows = [
        TestRow(vars={"review": f"{REVIEWS[i % 4][0]} ({i})"}, expected=REVIEWS[i % 4][1])
        for i in range(count)
    ]
    return library.save_test_set(
        TestSet(name="reviews", prompt_id=prompt.id, labels=["positive", "negative"], rows=rows)
    )


def open_panel(qtbot, library_dir: Path, prompt: Prompt) -> tuple[MainWindow, GraduatePanel]:
    """A main window for its run panel and job runner, and the panel under test."""
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    panel = GraduatePanel(window.library, window.jobs, window.run_panel)
    qtbot.addWidget(panel)
    panel.set_prompt(window.library.get_prompt(prompt.id))
    panel.resize(1300, 850)
    panel.show()
    return window, panel


def child(panel: GraduatePanel, kind: type, name: str) -> Any:
    found = panel.findChild(kind, name)
    assert found is not None, name
    return found


def click(qtbot, panel: GraduatePanel, name: str) -> None:
    qtbot.mouseClick(child(panel, QPushButton, name), Qt.MouseButton.LeftButton)


def text_of(panel: GraduatePanel, name: str) -> str:
    return str(child(panel, QLabel, name).text())


def tiny_settings(
    panel: GraduatePanel, tokens: int = 8, steps: int = 6, batch: int = 4, every: int = 3
) -> None:
    child(panel, QSpinBox, "gradTokens").setValue(tokens)
    child(panel, QSpinBox, "gradSteps").setValue(steps)
    child(panel, QSpinBox, "gradBatch").setValue(batch)
    child(panel, QSpinBox, "gradEvalEvery").setValue(every)


def wait_idle(qtbot, window: MainWindow, panel: GraduatePanel) -> None:
    """The run and every job it queued (nearest tokens, export) have finished."""
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=MODEL_TIMEOUT_MS)


def comparison_run(prompt: Prompt, test_set: TestSet) -> EvalRun:
    specs = [
        VariantSpec(name="zero-shot", few_shot_count=0),
        VariantSpec(name="few-shot"),
        VariantSpec(name="soft prompt", few_shot_count=0, soft_prompt_id="abc123"),
    ]
    results = [
        [
            CaseResult(
                row=r,
                answer="positive",
                scores={"label": float(r % 2 == v % 2)},
                latency_s=0.01 * (v + 1),
                context_tokens=30 + 20 * (v == 1) + 8 * (v == 2),
            )
            for r in (0, 1, 2)
        ]
        for v in range(3)
    ]
    run = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        split="test",
        mode="likelihood",
        metrics=["label"],
        variants=specs,
        results=results,
    )
    run.summaries = [
        summarise(s.name, r, test_set, run.metrics) for s, r in zip(specs, results, strict=True)
    ]
    return run


def stored_soft_prompt(library: Library, prompt: Prompt, tokens: int = 3) -> SoftPrompt:
    soft = SoftPrompt(
        name="stored soft prompt",
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        base_model=EMBEDDED_ID,
        base_model_hash="0" * 64,
        num_virtual_tokens=tokens,
        hidden_size=4,
        train_config=TrainConfig(num_virtual_tokens=tokens, steps=5),
        metrics={"steps": 5.0, "best_val_accuracy": 0.75},
        curves={
            "train_loss": [2.0, 1.5, 1.2, 1.0, 0.9],
            "val_loss": [1.4, 1.1],
            "val_accuracy": [0.5, 0.75],
            "val_step": [2.0, 4.0],
        },
        tensor_file="stored.safetensors",
    )
    tensor = np.arange(tokens * 4, dtype=np.float32).reshape(tokens, 4) + 1
    library.save_soft_prompt(soft, soft_prompt_bytes(tensor))
    return soft


# ---------------------------------------------------------------------------
# Pieces without widgets


def test_ring_series_keeps_the_newest_points_in_order() -> None:
    series = RingSeries(capacity=4)
    x, y = series.arrays()
    assert len(series) == 0 and len(x) == 0 and len(y) == 0
    series.extend([1, 2, 3], [10, 20, 30])
    assert series.arrays()[0].tolist() == [1, 2, 3]
    series.extend([4, 5, 6], [40, 50, 60])  # wraps around
    x, y = series.arrays()
    assert x.tolist() == [3, 4, 5, 6] and y.tolist() == [30, 40, 50, 60]
    series.clear()
    assert len(series) == 0
    series.append(7, 70)
    assert series.arrays()[1].tolist() == [70]


def test_the_status_line_shows_step_loss_speed_eta_and_memory() -> None:
    line = step_status(StepEvent(3, 10, 0.5, 0.25, 28.0, 2048.0), paused=True)
    assert line.startswith("step 3/10 · loss 0.5000 · 0.25 steps/s (4.0 s/step)")
    assert "ETA 28 s" in line and "GPU memory 2.0 GB" in line and line.endswith("paused")
    assert "ETA" not in step_status(StepEvent(10, 10, 0.5, 2.0, 0.0, None))


def test_the_embedding_matrix_is_found_by_shape_and_name() -> None:
    shapes = {
        "model.layers.0.mlp.up_proj.weight": [1536, 576],
        "lm_head.weight": [49152, 576],
        "model.embed_tokens.weight": [49152, 576],
        "model.norm.weight": [576],
    }
    assert find_embedding_key(shapes, 576, 49152) == "model.embed_tokens.weight"
    assert find_embedding_key({"transformer.wte.weight": [50257, 768]}, 768, None) == (
        "transformer.wte.weight"
    )
    with pytest.raises(ValueError, match="embedding matrix"):
        find_embedding_key({"x": [10]}, 576, None)


def test_item_models_pass_the_model_tester(qtmodeltester, library: Library) -> None:
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)

    comparison = ComparisonModel()
    qtmodeltester.check(comparison)  # empty
    comparison.set_run(comparison_run(prompt, test_set))
    qtmodeltester.check(comparison)
    assert comparison.rowCount() == 3
    assert [comparison.headerData(r, Qt.Orientation.Vertical) for r in range(3)] == [
        "zero-shot",
        "few-shot",
        "soft prompt",
    ]
    assert "label" in comparison.headerData(0, Qt.Orientation.Horizontal)
    assert comparison.data(comparison.index(1, 1)) == "50"  # context tokens per call
    assert comparison.data(comparison.index(2, 2)) == "30 ms"

    nearest = NearestTokensModel()
    qtmodeltester.check(nearest)
    nearest.set_tokens([[(" good", 0.9), ("great", 0.8)], [("\n", 0.5)]])  # fewer than k
    qtmodeltester.check(nearest)
    assert nearest.data(nearest.index(0, 0)) == "' good'  0.90"
    assert nearest.data(nearest.index(1, 3)) is None

    softs = SoftPromptListModel()
    qtmodeltester.check(softs)
    soft = stored_soft_prompt(library, prompt)
    softs.set_items([soft])
    softs.add(soft.model_copy(update={"id": "second", "name": "second"}))
    softs.add(soft)  # already listed: updated in place
    qtmodeltester.check(softs)
    assert softs.rowCount() == 2 and softs.at(0).id == "second"
    assert "val acc 0.75" in softs.data(softs.index(1, 0))


# ---------------------------------------------------------------------------
# The form


def test_the_form_is_prefilled_from_the_prompt_and_its_test_set(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=12)
    _, panel = open_panel(qtbot, library_dir, prompt)

    # 12 rows split 50/25/25: 6 train (+ 2 few-shot examples), 3 validation, 3 held out
    assert child(panel, QComboBox, "gradTestSet").currentData() == test_set.id
    prepared = panel.prepared
    assert prepared is not None
    assert (prepared.train_examples, prepared.validation_examples, prepared.held_out_rows) == (
        8,
        3,
        3,
    )
    assert prepared.labels == ["positive", "negative"]
    data = text_of(panel, "gradData")
    assert "8 training examples (2 few-shot + 6 from the train split)" in data
    assert "3 validation rows" in data and "3 held-out rows" in data
    assert "positive, negative" in data
    # counting splits nothing in the library: graduate() splits (and saves) on Start
    assert not any(r.split for r in Library(library_dir).test_sets[test_set.id].rows)

    assert child(panel, QSpinBox, "gradTokens").value() == 20
    assert child(panel, QDoubleSpinBox, "gradLr").value() == pytest.approx(3e-2)
    assert child(panel, QSpinBox, "gradSteps").value() == 225
    assert child(panel, QSpinBox, "gradBatch").value() == 8
    assert child(panel, QComboBox, "gradInit").currentData() == "text"
    assert child(panel, QLineEdit, "gradInitText").text() == init_text(prompt)
    assert child(panel, QComboBox, "gradDevice").currentData() == "auto"
    assert child(panel, QComboBox, "gradPrecision").currentData() == "auto"
    assert "SmolLM2" in text_of(panel, "gradModel")
    config = panel.config()
    assert config.init_text == init_text(prompt) and config.early_stopping_patience == 4
    assert config.epochs is None and not child(panel, QDoubleSpinBox, "gradEpochs").isVisible()

    # train for epochs instead: 3 passes over 8 examples in batches of 8 = 3 steps
    unit = child(panel, QComboBox, "gradLengthUnit")
    unit.setCurrentIndex(unit.findData("epochs"))
    epochs = child(panel, QDoubleSpinBox, "gradEpochs")
    epochs.setValue(3)
    assert epochs.isVisible() and not child(panel, QSpinBox, "gradSteps").isVisible()
    assert text_of(panel, "gradLengthInfo") == "= 3 steps of 8 over 8 examples"
    assert panel.config().epochs == 3
    panel.set_config(config)  # an earlier run's settings come back as steps
    assert unit.currentData() == "steps" and panel.config().epochs is None

    # "none": only the few-shot examples train, nothing is held out
    combo = child(panel, QComboBox, "gradTestSet")
    combo.setCurrentIndex(combo.findData(""))
    assert panel.prepared is not None and panel.prepared.train_examples == 2
    assert panel.prepared.held_out_rows == 0
    assert "few-shot examples only" in text_of(panel, "gradData")
    assert "no comparison" in text_of(panel, "gradData")

    # an edit of the working copy (one more example) is counted again, a little later
    edited = prompt.model_copy(
        update={
            "few_shot": FewShot(
                examples=[*prompt.few_shot.examples, FewShotExample(input="ok", output="positive")]
            )
        }
    )
    panel.set_prompt(edited)
    qtbot.waitUntil(lambda: panel.prepared is not None and panel.prepared.train_examples == 3)

    # the device label is filled in by a job the first time the panel is shown
    info = child(panel, QLabel, "gradDeviceInfo")
    qtbot.waitUntil(lambda: "auto picks" in info.text(), timeout=MODEL_TIMEOUT_MS)


def test_no_training_data_shows_a_message_and_starts_nothing(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library, examples=False)
    _, panel = open_panel(qtbot, library_dir, prompt)
    assert "No training data" in text_of(panel, "gradData")
    click(qtbot, panel, "gradStart")
    assert not panel.running
    assert "No training examples" in text_of(panel, "gradMessage")
    assert child(panel, QPushButton, "gradStart").isEnabled()


def test_a_training_error_shows_in_the_message_and_the_panel_stays_usable(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    window, panel = open_panel(qtbot, library_dir, prompt)
    child(panel, QComboBox, "gradTestSet").setCurrentIndex(0)  # none
    devices = child(panel, QComboBox, "gradDevice")
    devices.setCurrentIndex(devices.findData("cpu"))
    precisions = child(panel, QComboBox, "gradPrecision")
    precisions.setCurrentIndex(precisions.findData("bf16"))
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradStart")
        assert panel.running and not child(panel, QPushButton, "gradStart").isEnabled()
    assert finished.args == [None]
    assert not panel.running
    message = text_of(panel, "gradMessage")
    assert message.startswith("Training failed") and "bf16 training needs a GPU" in message
    assert child(panel, QPushButton, "gradStart").isEnabled()
    assert not child(panel, QPushButton, "gradStop").isEnabled()
    assert Library(library_dir).soft_prompts_for(prompt.id) == []
    wait_idle(qtbot, window, panel)


# ---------------------------------------------------------------------------
# The whole event flow against a fake graduate()


def test_the_event_flow_fills_plot_status_comparison_and_list(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    window, panel = open_panel(qtbot, library_dir, prompt)
    calls: dict[str, Any] = {}
    nearest: list[str] = []
    monkeypatch.setattr(panel, "compute_nearest", lambda soft: nearest.append(soft.id))

    def fake_graduate(
        library: Library,
        prompt: Prompt,
        test_set: TestSet | None,
        spec: Any,
        config: TrainConfig,
        cancel: threading.Event,
        pause: threading.Event,
        settings: Any = None,
    ) -> Iterator[Any]:
        calls.update(
            thread=threading.current_thread(),
            config=config,
            spec=spec,
            pause=pause,
            settings=settings,
            test_set=test_set,
        )
        for step in range(1, config.steps + 1):
            yield StepEvent(step, config.steps, 2.0 / step, 0.5, (config.steps - step) * 2, None)
            if step % config.eval_every == 0:
                yield ValidationEvent(step, 1.0 / step, step / config.steps, True)
        curves = {"train_loss": [2.0 / s for s in range(1, config.steps + 1)]}
        yield TuningFinished(
            TuningResult(
                np.ones((config.num_virtual_tokens, 4), dtype=np.float32),
                "done",
                f"finished {config.steps} steps; kept the prompt from step {config.steps}",
                config.steps,
                config.steps,
                {"steps": float(config.steps)},
                curves,
            )
        )
        soft = stored_soft_prompt(library, prompt, tokens=config.num_virtual_tokens)
        yield graduation.SoftPromptSaved(soft)
        yield graduation.ComparisonStarted(["zero-shot", "few-shot", "soft prompt"], 3)
        for done in range(1, 10):
            yield Progress(done, 9, float(9 - done))
        yield graduation.ComparisonFinished(comparison_run(prompt, test_set))

    monkeypatch.setattr(graduation, "graduate", fake_graduate)
    tiny_settings(panel, tokens=8, steps=4, batch=4, every=2)
    with (
        qtbot.waitSignal(panel.soft_prompt_saved) as saved,
        qtbot.waitSignal(panel.run_finished) as finished,
    ):
        click(qtbot, panel, "gradStart")
    assert calls["thread"] is not threading.main_thread()  # the worker trained
    assert calls["config"].num_virtual_tokens == 8 and calls["config"].steps == 4
    assert calls["config"].batch_size == 4 and calls["config"].eval_every == 2
    assert calls["spec"].id == EMBEDDED_ID
    assert calls["settings"] is window.run_panel.settings
    assert isinstance(calls["pause"], threading.Event)
    assert calls["test_set"].id == test_set.id

    assert panel.plotted_points() == 4
    assert len(panel.val_loss_curve.xData) == 2 and len(panel.accuracy_curve.xData) == 2
    assert "step 4/4" in text_of(panel, "gradStatus") and "loss 0.5000" in text_of(
        panel, "gradStatus"
    )
    assert "9/9" in text_of(panel, "gradProgress")
    table = child(panel, QTableView, "gradComparison")
    assert table.model().rowCount() == 3
    message = text_of(panel, "gradMessage")
    assert "Finished 4 steps" in message and "soft prompt 0.667" in message
    soft = saved.args[0]
    assert finished.args[0].steps == 4
    assert "stored soft prompt" in text_of(panel, "gradSaved")
    soft_list = child(panel, QListView, "gradSoftPrompts")
    assert soft_list.model().rowCount() == 1 and panel.selected_soft_prompt().id == soft.id
    assert set(nearest) == {soft.id}  # the nearest tokens were asked for after saving
    assert child(panel, QPushButton, "gradExport").isEnabled()
    assert child(panel, QPushButton, "gradStart").isEnabled()
    assert not child(panel, QPushButton, "gradPause").isEnabled()


def test_an_out_of_memory_error_mid_run_shows_in_the_message(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(qtbot, library_dir, prompt)

    def fake_graduate(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield StepEvent(1, 10, 2.5, 1.0, 9.0, 5000.0)
        raise TrainingError("out of memory at batch size 8 on cuda; try a batch size of 4")

    monkeypatch.setattr(graduation, "graduate", fake_graduate)
    with qtbot.waitSignal(panel.run_finished):
        click(qtbot, panel, "gradStart")
    assert "out of memory at batch size 8" in text_of(panel, "gradMessage")
    assert "saved before the failure" not in text_of(panel, "gradMessage")
    assert child(panel, QPushButton, "gradStart").isEnabled() and not panel.running


def test_a_failure_after_saving_still_lists_the_saved_soft_prompt(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(qtbot, library_dir, prompt)
    monkeypatch.setattr(panel, "compute_nearest", lambda soft: None)

    def fake_graduate(library: Library, prompt: Prompt, *args: Any, **kwargs: Any) -> Iterator[Any]:
        soft = stored_soft_prompt(library, prompt)
        yield graduation.SoftPromptSaved(soft)
        raise RuntimeError("the comparison's model could not be loaded")

    monkeypatch.setattr(graduation, "graduate", fake_graduate)
    with qtbot.waitSignal(panel.run_finished):
        click(qtbot, panel, "gradStart")
    message = text_of(panel, "gradMessage")
    assert "could not be loaded" in message and "saved before the failure" in message
    assert child(panel, QListView, "gradSoftPrompts").model().rowCount() == 1
    assert child(panel, QPushButton, "gradStart").isEnabled()


def test_a_stored_soft_prompt_shows_its_curves_and_metrics(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    stored_soft_prompt(library, prompt)
    _, panel = open_panel(qtbot, library_dir, prompt)
    asked: list[str] = []
    monkeypatch.setattr(panel, "compute_nearest", lambda soft: asked.append(soft.id))
    soft_list = child(panel, QListView, "gradSoftPrompts")
    assert soft_list.model().rowCount() == 1
    assert not child(panel, QPushButton, "gradExport").isEnabled()
    soft_list.setCurrentIndex(soft_list.model().index(0, 0))
    assert panel.plotted_points() == 5
    assert panel.val_loss_curve.xData.tolist() == [2.0, 4.0]
    assert panel.accuracy_curve.yData.tolist() == [0.5, 0.75]
    assert "best_val_accuracy 0.75" in text_of(panel, "gradMetrics")
    assert len(asked) == 1
    assert child(panel, QPushButton, "gradExport").isEnabled()


# ---------------------------------------------------------------------------
# On the embedded model


@pytest.mark.integration
def test_start_plots_the_loss_and_stop_keeps_the_soft_prompt(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    window, panel = open_panel(qtbot, library_dir, prompt)
    tiny_settings(panel, tokens=8, steps=40, batch=4, every=3)
    click(qtbot, panel, "gradStart")
    assert panel.running
    qtbot.waitUntil(lambda: panel.plotted_points() >= 1, timeout=MODEL_TIMEOUT_MS)
    first = panel.plotted_points()
    qtbot.waitUntil(lambda: panel.plotted_points() >= 2, timeout=MODEL_TIMEOUT_MS)
    assert panel.plotted_points() > first  # the curve grows as steps arrive
    assert "step" in text_of(panel, "gradStatus") and "steps/s" in text_of(panel, "gradStatus")
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradStop")
    result = finished.args[0]
    assert result is not None and result.reason == "cancelled" and 2 <= result.steps < 40
    assert "Stopped at step" in text_of(panel, "gradMessage")

    stored = Library(library_dir).soft_prompts_for(prompt.id)
    assert len(stored) == 1
    soft = stored[0]
    assert soft.metrics["stopped"] == 1.0 and soft.num_virtual_tokens == 8
    assert Library(library_dir).soft_prompt_tensor_path(soft).is_file()
    assert panel.comparison_model.rowCount() == 0  # stopped: no comparison
    assert child(panel, QListView, "gradSoftPrompts").model().rowCount() == 1
    wait_idle(qtbot, window, panel)  # the nearest-tokens job too


@pytest.mark.integration
def test_a_full_tiny_run_compares_finds_nearest_tokens_and_exports(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=12)
    window, panel = open_panel(qtbot, library_dir, prompt)
    tiny_settings(panel, tokens=8, steps=4, batch=4, every=3)
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradStart")
    result = finished.args[0]
    message = text_of(panel, "gradMessage")
    assert result is not None and result.reason == "done" and result.steps == 4, message
    assert "Finished 4 steps" in message and "Held-out label accuracy" in message
    assert panel.plotted_points() == 4
    assert panel.val_loss_curve.xData.tolist() == [3.0, 4.0]
    assert len(panel.accuracy_curve.xData) == 2

    comparison = panel.comparison_model
    assert comparison.rowCount() == 3
    names = [comparison.headerData(r, Qt.Orientation.Vertical) for r in range(3)]
    assert names == ["zero-shot", "few-shot", "soft prompt"]
    for row in range(3):
        accuracy = comparison.value(row, 0)
        assert accuracy is not None and 0.0 <= accuracy <= 1.0
    assert comparison.value(1, 1) > comparison.value(0, 1)  # few-shot examples cost context
    assert "9/9" in text_of(panel, "gradProgress")
    stored_runs = Library(library_dir).eval_runs_for(prompt.id)
    assert len(stored_runs) == 1 and stored_runs[0].test_set_id == test_set.id
    # the split graduate() made is stored, so the held-out rows stay held out
    assert any(r.split == "test" for r in Library(library_dir).test_sets[test_set.id].rows)

    soft = Library(library_dir).soft_prompts_for(prompt.id)[0]
    assert panel.selected_soft_prompt().id == soft.id

    nearest = panel.nearest_model
    qtbot.waitUntil(lambda: nearest.rowCount() == 8, timeout=MODEL_TIMEOUT_MS)
    assert child(panel, QTableView, "gradNearest").model() is nearest
    for row in nearest.tokens():
        assert len(row) == 5
        similarities = [s for _, s in row]
        assert similarities == sorted(similarities, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in similarities)

    out = tmp_path / "adapter"
    with qtbot.waitSignal(panel.adapter_exported, timeout=MODEL_TIMEOUT_MS) as exported:
        panel.export_peft(out)
    assert exported.args[0] == out
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert "Exported" in text_of(panel, "gradMessage")
    from workbench.core.peft_io import import_peft_adapter

    array, config = import_peft_adapter(out)
    tensor = load_soft_prompt_tensor(Library(library_dir).soft_prompt_tensor_path(soft))
    assert config["num_virtual_tokens"] == 8
    np.testing.assert_array_equal(array, tensor)

    # ... and a PEFT adapter comes back in as a soft prompt of this prompt
    with qtbot.waitSignal(panel.adapter_imported, timeout=MODEL_TIMEOUT_MS) as imported:
        panel.import_peft(out)
    back = imported.args[0]
    assert back.prompt_id == prompt.id and back.num_virtual_tokens == 8
    assert panel.selected_soft_prompt().id == back.id
    stored = Library(library_dir)
    assert {s.id for s in stored.soft_prompts_for(prompt.id)} == {soft.id, back.id}
    np.testing.assert_array_equal(
        load_soft_prompt_tensor(stored.soft_prompt_tensor_path(back)), tensor
    )
    assert "Imported" in text_of(panel, "gradMessage")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text((out / "adapter_config.json").read_text())
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not loaded")
    panel.import_peft(pickled)
    qtbot.waitUntil(lambda: "Import failed" in text_of(panel, "gradMessage"), timeout=10_000)
    assert "pickle" in text_of(panel, "gradMessage")
    assert len(Library(library_dir).soft_prompts_for(prompt.id)) == 2
    wait_idle(qtbot, window, panel)


class _PauseProbe:
    """Stands in for the pause event inside the engine: counts the polls made while
    paused, so the test knows the training loop is idling."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.paused_polls = 0

    def is_set(self) -> bool:
        value = self.event.is_set()
        if value:
            self.paused_polls += 1
        return value


@pytest.mark.integration
def test_pause_then_resume_continues_to_completion(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    window, panel = open_panel(qtbot, library_dir, prompt)
    child(panel, QComboBox, "gradTestSet").setCurrentIndex(0)  # none: few-shot examples only
    tiny_settings(panel, tokens=4, steps=3, batch=2, every=3)
    real = graduation.graduate
    probes: list[_PauseProbe] = []

    def spy(*args: Any, **kwargs: Any) -> Iterator[Any]:
        args_list = list(args)
        probes.append(_PauseProbe(args_list[6]))
        args_list[6] = probes[-1]
        return real(*args_list, **kwargs)

    monkeypatch.setattr(graduation, "graduate", spy)
    click(qtbot, panel, "gradStart")
    qtbot.waitUntil(lambda: panel.plotted_points() >= 1, timeout=MODEL_TIMEOUT_MS)
    pause = child(panel, QPushButton, "gradPause")
    click(qtbot, panel, "gradPause")
    assert panel.paused and pause.text() == "Resume"
    assert "Paused" in text_of(panel, "gradStatus")
    # the training loop is idling between steps
    qtbot.waitUntil(lambda: probes[0].paused_polls >= 3, timeout=MODEL_TIMEOUT_MS)
    steps_while_paused = panel.plotted_points()
    assert steps_while_paused < 3
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradPause")
        assert not panel.paused and pause.text() == "Pause"
    result = finished.args[0]
    assert result is not None and result.reason == "done" and result.steps == 3
    assert panel.plotted_points() == 3
    message = text_of(panel, "gradMessage")
    assert "Finished 3 steps" in message and "No test set, so no comparison" in message
    assert panel.comparison_model.rowCount() == 0
    assert len(Library(library_dir).soft_prompts_for(prompt.id)) == 1
    wait_idle(qtbot, window, panel)
