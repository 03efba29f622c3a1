"""The Graduate panel training real (tiny) soft prompts on the embedded SmolLM2 model:
Stop mid-run, a full run with the held-out comparison, nearest tokens and PEFT export
and import, and Pause/Resume. On 2 slow CPU cores a training step takes several seconds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QListView, QPushButton, QTableView

from tests.ui.graduate.helpers import (
    MODEL_TIMEOUT_MS,
    child,
    click,
    sentiment_prompt,
    sentiment_set,
    text_of,
    tiny_settings,
    wait_idle,
)
from workbench.core import graduation
from workbench.core.library import Library
from workbench.core.softprompt import load_soft_prompt_tensor


@pytest.mark.integration
def test_start_plots_the_loss_and_stop_keeps_the_soft_prompt(
    qtbot, library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
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
    wait_idle(qtbot, opened, panel)  # the nearest-tokens job too


@pytest.mark.integration
def test_a_full_tiny_run_compares_finds_nearest_tokens_and_exports(
    qtbot, library_dir: Path, tmp_path: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
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
    view = child(panel, QTableView, "gradNearest")
    assert view.model() is nearest
    panel.resize(700, 850)  # about the Graduate tab's width in a 1366×768 window
    qtbot.wait(50)
    metrics = view.fontMetrics()
    for column in range(nearest.columnCount()):  # every neighbour reads in full
        text = str(nearest.data(nearest.index(0, column)))
        assert view.columnWidth(column) >= metrics.horizontalAdvance(text), text
    panel.resize(1300, 850)
    for row in nearest.tokens():
        assert len(row) == 5
        similarities = [s for _, s in row]
        assert similarities == sorted(similarities, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in similarities)

    # another prompt and back: the plot, the comparison and the message come back
    shown = text_of(panel, "gradMessage")
    other = opened.library.new_prompt("Other", user_template="Say {{ x }}")
    opened.selection.select(other)
    assert comparison.rowCount() == 0 and panel.plotted_points() == 0
    assert text_of(panel, "gradMessage") == ""
    opened.selection.select(Library(library_dir).get_prompt(prompt.id))
    assert comparison.rowCount() == 3 and panel.plotted_points() == 4
    assert text_of(panel, "gradMessage") == shown
    assert panel.val_loss_curve.xData.tolist() == [3.0, 4.0]

    out = tmp_path / "adapter"
    with qtbot.waitSignal(panel.adapter_exported, timeout=MODEL_TIMEOUT_MS) as exported:
        panel.export_peft(out, soft)
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
    wait_idle(qtbot, opened, panel)


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
    qtbot, library_dir: Path, monkeypatch: pytest.MonkeyPatch, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    opened, panel = open_panel(prompt)
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
    wait_idle(qtbot, opened, panel)
