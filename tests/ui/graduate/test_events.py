"""The whole event flow of the Graduate panel against a fake `graduate()` (patched into
`workbench.core.graduation`): plot, status, saving, comparison table, messages, errors,
checked in a second; and a stored soft prompt's curves and metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QListView, QPushButton, QTableView

from tests.ui.graduate.helpers import (
    child,
    click,
    comparison_run,
    sentiment_prompt,
    sentiment_set,
    stored_soft_prompt,
    text_of,
    tiny_settings,
)
from workbench.core import graduation
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.evaluation import Progress
from workbench.core.library import Library
from workbench.core.models import Prompt, TestSet, TrainConfig
from workbench.core.tuning import (
    StepEvent,
    TrainingError,
    TuningFinished,
    TuningResult,
    ValidationEvent,
)


def test_the_event_flow_fills_plot_status_comparison_and_list(
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    opened, panel = open_panel(prompt)
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
    assert calls["settings"] is opened.session.settings
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
    assert "Finished 4 steps" in message and "soft prompt 66.7 %" in message
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
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(prompt)

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
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(prompt)
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
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    stored_soft_prompt(library, prompt)
    _, panel = open_panel(prompt)
    asked: list[str] = []
    monkeypatch.setattr(panel, "compute_nearest", lambda soft: asked.append(soft.id))
    soft_list = child(panel, QListView, "gradSoftPrompts")
    assert soft_list.model().rowCount() == 1
    assert not child(panel, QPushButton, "gradExport").isEnabled()
    soft_list.setCurrentIndex(soft_list.model().index(0, 0))
    assert panel.plotted_points() == 5
    assert panel.val_loss_curve.xData.tolist() == [2.0, 4.0]
    assert panel.accuracy_curve.yData.tolist() == [0.5, 0.75]
    assert "best validation accuracy 75.0 %" in text_of(panel, "gradMetrics")
    assert "best_val" not in text_of(panel, "gradMetrics")  # no stored key names
    assert len(asked) == 1
    assert child(panel, QPushButton, "gradExport").isEnabled()
