"""The variants table and its box: cells edited as text and validated, presets, add and
remove."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox, QTableView

from tests.ui.evaluate.helpers import (
    click,
    message,
    sentiment_prompt,
)
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.library import Library
from workbench.core.models import CoTMode
from workbench.ui.evaluate import (
    VariantsModel,
)


def test_variant_cells_are_edited_as_text_and_validated(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    library.save_prompt(prompt.model_copy(update={"description": "v2"}))
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    model = panel.variants_model
    assert [v.name for v in model.variants()] == ["Review sentiment"]  # named after the prompt
    row = [model.data(model.index(0, c)) for c in range(model.columnCount())]
    assert row == [
        "Review sentiment",
        "this prompt",
        "current",
        "default",
        "as prompt",
        "as prompt",
        "none",
    ]

    assert model.setData(model.index(0, VariantsModel.FEW_SHOT), "3")
    assert model.setData(model.index(0, VariantsModel.VERSION), "v1")
    assert model.setData(model.index(0, VariantsModel.COT), "zero-shot")  # as offered
    assert model.variants()[0].cot_mode is CoTMode.ZERO_SHOT
    assert model.data(model.index(0, VariantsModel.COT)) == "zero-shot"  # not zero_shot
    assert model.setData(model.index(0, VariantsModel.COT), "scaffold")
    assert model.setData(model.index(0, VariantsModel.MODEL), EMBEDDED_ID)
    spec = model.variants()[0]
    assert (spec.few_shot_count, spec.prompt_version, spec.cot_mode, spec.model) == (
        3,
        1,
        CoTMode.SCAFFOLD,
        EMBEDDED_ID,
    )
    assert model.setData(model.index(0, VariantsModel.FEW_SHOT), "0 = zero-shot")
    assert model.variants()[0].few_shot_count == 0

    assert not model.setData(model.index(0, VariantsModel.FEW_SHOT), "-1")
    assert "few-shot" in message(panel) and "greater than or equal to 0" in message(panel)
    assert not model.setData(model.index(0, VariantsModel.COT), "telepathy")
    assert not model.setData(model.index(0, VariantsModel.VERSION), "v9")
    assert "no stored version 9" in message(panel)
    assert not model.setData(model.index(0, VariantsModel.MODEL), "nonexistent")
    assert not model.setData(model.index(0, VariantsModel.NAME), "  ")
    assert model.variants()[0].few_shot_count == 0  # rejected edits change nothing

    # the choice columns edit through a combo box offering the choices
    view = panel.findChild(QTableView, "evalVariants")
    index = model.index(0, VariantsModel.COT)
    view.edit(index)
    editor = view.indexWidget(index) or view.findChild(QComboBox)
    assert isinstance(editor, QComboBox)
    assert [editor.itemText(i) for i in range(editor.count())] == [
        "as prompt",
        "off",
        "zero-shot",
        "scaffold",
        "chain",
    ]


def test_preset_add_and_remove_variants(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    specs = panel.variants_model.variants()
    assert [s.name for s in specs] == ["zero-shot", "few-shot", "chain-of-thought"]
    assert (specs[0].few_shot_count, specs[0].cot_mode) == (0, CoTMode.OFF)
    assert (specs[1].few_shot_count, specs[1].cot_mode) == (None, None)
    assert specs[2].cot_mode is CoTMode.ZERO_SHOT

    click(qtbot, panel, "addVariant")
    assert panel.variants_model.rowCount() == 4
    assert panel.variants_model.variants()[3].name == "variant 4"
    view = panel.findChild(QTableView, "evalVariants")
    view.selectRow(1)
    click(qtbot, panel, "removeVariant")
    assert [s.name for s in panel.variants_model.variants()] == [
        "zero-shot",
        "chain-of-thought",
        "variant 4",
    ]
    # editing the working copy keeps the variants; another prompt starts afresh
    panel.set_prompt(panel.library.get_prompt(prompt.id).model_copy(update={"system": "x"}))
    assert panel.variants_model.rowCount() == 3
    other = panel.library.new_prompt("Other")
    panel.set_prompt(other)
    assert [s.name for s in panel.variants_model.variants()] == ["Other"]
