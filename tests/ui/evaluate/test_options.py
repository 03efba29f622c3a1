"""The options follow the prompt and its test sets (splits, modes, metrics)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox

from tests.ui.evaluate.helpers import (
    button,
    sentiment_prompt,
    sentiment_set,
)
from workbench.core.library import Library


def test_options_follow_the_prompt_and_its_test_sets(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=4, name="plain")
    sentiment_set(library, prompt, count=6, splits=True, name="with splits")
    panel = open_panel()
    assert not button(panel, "evalRun").isEnabled()  # no prompt yet
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    sets = panel.findChild(QComboBox, "evalTestSet")
    split = panel.findChild(QComboBox, "evalSplit")
    assert [sets.itemText(i) for i in range(sets.count())] == [
        "plain (4 rows)",
        "with splits (6 rows)",
    ]
    assert split.currentData() is None  # "all": the rows carry no splits
    sets.setCurrentIndex(1)
    assert split.currentData() == "test" and split.currentText() == "test (3)"
    mode = panel.findChild(QComboBox, "evalMode")
    assert [mode.itemText(i) for i in range(mode.count())] == [
        "automatic",
        "generate and compare",
        "label likelihood",
    ]  # display names, not the stored values
    assert [mode.itemData(i) for i in range(mode.count())] == ["auto", "generate", "likelihood"]
    assert panel.selected_metrics() == ["exact", "normalised", "f1"]
    assert button(panel, "evalRun").isEnabled()
    assert not button(panel, "evalStop").isEnabled()
