"""LoRA fine-tuning from the Graduate panel: the Method choice shows its own rows and
learning rate; a real run on a tiny random-weight Llama (milliseconds a step) plots the
loss, saves the adapter (Stop keeps the best) and lists it beside the soft prompts with
its metrics and trainable parameters; a finished run compares zero-shot / few-shot / LoRA
on the held-out rows; a layer the model lacks is refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLineEdit, QListView, QSpinBox, QWidget

from tests.ui.graduate.helpers import (
    MODEL_TIMEOUT_MS,
    Opened,
    child,
    click,
    sentiment_prompt,
    sentiment_set,
    stored_soft_prompt,
    text_of,
    tiny_settings,
    wait_idle,
)
from workbench.core.flows.report import describe_training_metrics
from workbench.core.graduation import LORA_VARIANT
from workbench.core.library import Library
from workbench.core.lora import LORA_LEARNING_RATE
from workbench.core.models import LoraAdapter, LoraSettings, TrainConfig
from workbench.ui.graduate import GraduatePanel

SOFT_ONLY = ("gradTokens", "gradPlacement", "gradInit", "gradInitText")
LORA_ONLY = ("gradLoraRank", "gradLoraAlpha", "gradLoraDropout", "gradLoraTargets")


def row_shown(panel: GraduatePanel, name: str) -> bool:
    """The form row of widget `name` is shown: the field and its label."""
    widget = child(panel, QWidget, name)
    label = panel.form.layout().labelForField(widget)
    assert label is not None, name
    return not widget.isHidden() and not label.isHidden()


def pick_method(panel: GraduatePanel, method: str) -> None:
    combo = child(panel, QComboBox, "gradMethod")
    combo.setCurrentIndex(combo.findData(method))


def test_the_method_switch_shows_the_lora_rows_and_its_learning_rate(
    library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _opened, panel = open_panel(prompt)
    lr = child(panel, QDoubleSpinBox, "gradLr")
    assert panel.form.method() == "soft" and lr.value() == TrainConfig().learning_rate
    assert all(row_shown(panel, name) for name in SOFT_ONLY)
    assert not any(row_shown(panel, name) for name in LORA_ONLY)

    pick_method(panel, "lora")
    assert all(row_shown(panel, name) for name in LORA_ONLY)
    assert not any(row_shown(panel, name) for name in SOFT_ONLY)
    assert lr.value() == pytest.approx(LORA_LEARNING_RATE)  # LoRA's default, not 0.1
    assert panel.config().learning_rate == pytest.approx(LORA_LEARNING_RATE)
    assert panel.lora_settings() == LoraSettings()  # rank 8, alpha 16, dropout 0.05
    assert child(panel, QSpinBox, "gradLoraRank").value() == 8
    # target layers: names split at commas, blanks dropped; empty = found from the model
    child(panel, QLineEdit, "gradLoraTargets").setText(" q_proj, ,o_proj ")
    assert panel.lora_settings().target_modules == ["q_proj", "o_proj"]

    pick_method(panel, "soft")
    assert lr.value() == pytest.approx(TrainConfig().learning_rate)
    assert all(row_shown(panel, name) for name in SOFT_ONLY)
    lr.setValue(0.05)  # the user's own rate stays whichever method is picked
    pick_method(panel, "lora")
    assert lr.value() == pytest.approx(0.05)


def test_adapters_are_listed_beside_soft_prompts_marked_by_kind(
    library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    soft = stored_soft_prompt(library, prompt)
    adapter = LoraAdapter(
        name="stored adapter",
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        base_model="tiny",
        base_model_hash="0" * 64,
        lora=LoraSettings(rank=4, target_modules=["q_proj", "v_proj"]),
        train_config=TrainConfig(steps=5, learning_rate=LORA_LEARNING_RATE),
        trainable_parameters=1536,
        metrics={"steps": 5.0, "best_step": 4.0, "best_val_accuracy": 0.5},
        curves={"train_loss": [2.0, 1.8, 1.5, 1.4, 1.3], "val_loss": [1.6], "val_step": [4.0]},
        folder="stored-adapter",
    )
    library.save_lora_adapter(adapter, {"adapter_config.json": b"{}"})
    _opened, panel = open_panel(prompt)
    listed = child(panel, QListView, "gradSoftPrompts").model()
    texts = sorted(str(listed.data(listed.index(r, 0))) for r in range(listed.rowCount()))
    assert len(texts) == 2
    assert texts[0].startswith("[LoRA adapter] stored adapter")
    assert texts[1].startswith(f"[soft prompt] {soft.name}")
    row = next(
        r for r in range(listed.rowCount()) if "LoRA" in str(listed.data(listed.index(r, 0)))
    )
    panel.show_soft_prompt_row(row)
    metrics = text_of(panel, "gradMetrics")
    assert "LoRA rank 4" in metrics and "q_proj, v_proj" in metrics
    assert "1,536 trainable parameters" in metrics
    assert describe_training_metrics(adapter.metrics) in metrics
    assert panel.loss_curve.yData.tolist() == adapter.curves["train_loss"]  # its curves


def _with_tiny_model(qtbot, opened: Opened, panel: GraduatePanel, folder: Path) -> None:
    """The tiny model added (and loaded on transformers), picked for training."""
    spec = opened.session.add_model(str(folder))
    assert opened.session.selected_model() == (spec, "transformers")
    qtbot.waitUntil(lambda: opened.session.backend is not None, timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not opened.jobs.busy, timeout=MODEL_TIMEOUT_MS)
    assert panel.start_button.isEnabled()


@pytest.mark.integration
def test_a_lora_run_plots_the_loss_and_stop_keeps_the_best_adapter(
    qtbot, library_dir: Path, open_panel, tiny_model_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
    _with_tiny_model(qtbot, opened, panel, tiny_model_dir)
    pick_method(panel, "lora")
    tiny_settings(panel, steps=100_000, batch=4, every=3)
    child(panel, QSpinBox, "gradPatience").setValue(0)  # never stops early: only Stop ends it
    child(panel, QDoubleSpinBox, "gradLr").setValue(0.01)
    saved: list[LoraAdapter] = []
    panel.adapter_saved.connect(saved.append)
    click(qtbot, panel, "gradStart")
    assert panel.running
    qtbot.waitUntil(lambda: panel.plotted_points() >= 4, timeout=MODEL_TIMEOUT_MS)
    assert panel.val_loss_curve.xData is not None and len(panel.val_loss_curve.xData) >= 1
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradStop")
    result = finished.args[0]
    assert result is not None and result.reason == "cancelled" and 4 <= result.steps < 100_000
    assert "Stopped at step" in text_of(panel, "gradMessage")
    wait_idle(qtbot, opened, panel)

    stored = Library(library_dir).lora_adapters_for(prompt.id)
    assert [a.id for a in stored] == [a.id for a in saved] and len(stored) == 1
    adapter = stored[0]
    assert adapter.metrics["stopped"] == 1.0 and adapter.metrics["steps"] == result.steps
    assert adapter.metrics["best_step"] == result.best_step <= result.steps  # the best is kept
    assert adapter.lora.target_modules == ["q_proj", "v_proj"]  # found from the model
    assert adapter.trainable_parameters == result.trainable_parameters > 0
    folder = Library(library_dir).lora_adapter_path(adapter)
    assert (folder / "adapter_model.safetensors").is_file()
    assert text_of(panel, "gradSaved") == f"Saved as “{adapter.name}”"
    listed = child(panel, QListView, "gradSoftPrompts")
    assert listed.model().rowCount() == 1 and panel.selected_soft_prompt() == adapter
    assert f"{adapter.trainable_parameters:,} trainable parameters" in text_of(panel, "gradMetrics")
    assert panel.comparison_model.rowCount() == 0  # stopped: no comparison


@pytest.mark.integration
def test_a_finished_lora_run_compares_on_the_held_out_rows(
    qtbot, library_dir: Path, open_panel, tiny_model_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
    _with_tiny_model(qtbot, opened, panel, tiny_model_dir)
    pick_method(panel, "lora")
    targets = child(panel, QLineEdit, "gradLoraTargets")
    qtbot.waitUntil(lambda: "Found in" in targets.toolTip(), timeout=MODEL_TIMEOUT_MS)
    assert "q_proj, v_proj (used when this is empty)" in targets.toolTip()
    assert "o_proj" in targets.toolTip()  # and the other linear layers it could take
    tiny_settings(panel, steps=4, batch=4, every=2)
    child(panel, QSpinBox, "gradLoraRank").setValue(4)
    targets.setText("q_proj, o_proj")
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "gradStart")
    result = finished.args[0]
    message = text_of(panel, "gradMessage")
    assert result is not None and result.reason == "done" and result.steps == 4, message
    assert "Held-out label accuracy" in message and f"{LORA_VARIANT} " in message
    assert panel.plotted_points() == 4
    model = panel.comparison_model
    names = [model.headerData(r, 2) for r in range(model.rowCount())]  # 2: vertical
    assert names == ["zero-shot", "few-shot", LORA_VARIANT]
    wait_idle(qtbot, opened, panel)
    adapter = panel.selected_soft_prompt()
    assert isinstance(adapter, LoraAdapter)
    assert adapter.lora.rank == 4 and adapter.lora.target_modules == ["q_proj", "o_proj"]
    assert describe_training_metrics(adapter.metrics) in text_of(panel, "gradMetrics")
    assert Library(library_dir).eval_runs_for(prompt.id)[0].id == model.run.id


@pytest.mark.integration
def test_a_target_layer_the_model_lacks_is_refused_and_nothing_is_saved(
    qtbot, library_dir: Path, open_panel, tiny_model_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
    _with_tiny_model(qtbot, opened, panel, tiny_model_dir)
    pick_method(panel, "lora")
    tiny_settings(panel, steps=4, batch=4, every=2)
    child(panel, QLineEdit, "gradLoraTargets").setText("attention_typo")
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS):
        click(qtbot, panel, "gradStart")
    message = text_of(panel, "gradMessage")
    assert message.startswith("Training failed: the model has no linear layers named")
    assert "'attention_typo'" in message and "q_proj" in message  # and what it does have
    assert Library(library_dir).lora_adapters_for(prompt.id) == []
    assert panel.start_button.isEnabled()  # the panel is ready for another try
    wait_idle(qtbot, opened, panel)


@pytest.mark.integration
def test_out_of_memory_loading_the_model_is_told_in_lora_s_terms(
    qtbot, library_dir: Path, open_panel, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the model runs out of memory as the LoRA run loads it. The advice
    is a smaller batch or a lower rank (a LoRA run has no virtual tokens)."""
    import torch

    from workbench.core import tuning

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tuning, "load_base_model", out_of_memory)
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    opened, panel = open_panel(prompt)
    _with_tiny_model(qtbot, opened, panel, tiny_model_dir)
    pick_method(panel, "lora")
    tiny_settings(panel, steps=4, batch=4, every=2)
    with qtbot.waitSignal(panel.run_finished, timeout=MODEL_TIMEOUT_MS):
        click(qtbot, panel, "gradStart")
    message = text_of(panel, "gradMessage")
    assert message.startswith("Training failed: out of memory (CUDA out of memory.")
    assert message.endswith("try a smaller batch size or a lower rank")
    assert "virtual tokens" not in message
    assert Library(library_dir).lora_adapters_for(prompt.id) == []
    assert panel.start_button.isEnabled()
    wait_idle(qtbot, opened, panel)


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_lora_rows_fit_the_graduate_tab(qtbot, themed, tmp_path: Path, size) -> None:
    from tests.ui import fit
    from workbench.ui.app import MainWindow

    width, height = size
    fit.seed_tour_library(tmp_path / "library")
    window = MainWindow(Library(tmp_path / "library"), load_model=False)
    qtbot.addWidget(window)
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    window.select_prompt(window.library.find_prompt("Review sentiment").id)
    window.tabs.setCurrentWidget(window.graduate)
    pick_method(window.graduate, "lora")
    fit.settle()
    found = [*fit.offenders(window), *fit.window_offenders(window, width, height)]
    assert row_shown(window.graduate, "gradLoraTargets")
    assert not found, fit.report(found)
    window.close()
