"""The Graduate panel's settings form: prefilled from the prompt and its test set, steps
or epochs, a prompt without training data, and a training error shown in the panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QLineEdit, QPushButton, QSpinBox

from tests.ui.graduate.helpers import (
    MODEL_TIMEOUT_MS,
    child,
    click,
    sentiment_prompt,
    sentiment_set,
    text_of,
    wait_idle,
)
from workbench.core.library import Library
from workbench.core.models import FewShot, FewShotExample
from workbench.core.tuning import init_text


def test_the_form_is_prefilled_from_the_prompt_and_its_test_set(
    qtbot, library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=12)
    _, panel = open_panel(prompt)

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
    # defaults measured by bench/bench_graduate.py (issue 13): lr 0.1, patience 2
    assert child(panel, QDoubleSpinBox, "gradLr").value() == pytest.approx(0.1)
    assert child(panel, QSpinBox, "gradSteps").value() == 225
    assert child(panel, QSpinBox, "gradBatch").value() == 8
    assert child(panel, QComboBox, "gradInit").currentData() == "text"
    assert child(panel, QLineEdit, "gradInitText").text() == init_text(prompt)
    assert child(panel, QComboBox, "gradDevice").currentData() == "auto"
    assert child(panel, QComboBox, "gradPrecision").currentData() == "auto"
    assert "SmolLM2" in text_of(panel, "gradModel")
    config = panel.config()
    assert config.init_text == init_text(prompt) and config.early_stopping_patience == 2
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


def test_no_training_data_shows_a_message_and_starts_nothing(
    qtbot, library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library, examples=False)
    _, panel = open_panel(prompt)
    assert "No training data" in text_of(panel, "gradData")
    click(qtbot, panel, "gradStart")
    assert not panel.running
    assert "No training examples" in text_of(panel, "gradMessage")
    assert child(panel, QPushButton, "gradStart").isEnabled()


def test_a_training_error_shows_in_the_message_and_the_panel_stays_usable(
    qtbot, library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    opened, panel = open_panel(prompt)
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
    wait_idle(qtbot, opened, panel)


class CountingBackend:
    """What `graduation.per_call_tokens` needs from a loaded model: it counts words."""

    hidden_size = 8

    def context_tokens(self, messages, soft_prompt=None) -> int:
        words = sum(len(m.content.split()) for m in messages)
        if soft_prompt is None:
            return words
        system = sum(len(m.content.split()) for m in messages if m.role == "system")
        base = words - system if soft_prompt.placement == "replace" else words
        return base + soft_prompt.count


def test_the_form_shows_where_the_soft_prompt_goes_and_what_a_call_costs(
    qtbot, library_dir: Path, open_panel
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    opened, panel = open_panel(prompt)
    combo = child(panel, QComboBox, "gradPlacement")
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels[:2] == ["replace the instruction", "add to the prompt"]
    assert combo.currentData() == "replace"  # the measured default
    cost = child(panel, QLabel, "gradPlacementCost")
    assert "Load the model" in cost.text()  # no model loaded: no count
    opened.session.backend = CountingBackend()  # as if the Run panel had loaded one
    opened.session.backend_changed.emit(opened.session.backend)
    qtbot.waitUntil(lambda: "tokens per call" in cost.text())
    tokens = child(panel, QSpinBox, "gradTokens").value()
    system_words = len(prompt.system.split())
    replace_text = cost.text()
    combo.setCurrentIndex(combo.findData("add"))
    add_text = cost.text()
    replace_n = int(replace_text.split("About ")[1].split(" ")[0])
    add_n = int(add_text.split("About ")[1].split(" ")[0])
    assert add_n - replace_n == system_words  # 'add' also sends the instruction
    assert replace_n > tokens and "of the few-shot prompt's" in add_text
    assert panel.config().placement == "add"
