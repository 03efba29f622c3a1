"""The item models (variants, results grid, summary, history) under Qt's model tester."""

from __future__ import annotations

from tests.ui.evaluate.helpers import (
    sentiment_prompt,
    sentiment_set,
    stored_run,
)
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.library import Library
from workbench.core.models import VariantSpec
from workbench.ui.evaluate import (
    EvalRunListModel,
    ResultsGridModel,
    SummaryModel,
    VariantsModel,
)


def test_item_models_pass_the_model_tester(qtmodeltester, library: Library) -> None:
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    run = stored_run(test_set, prompt)

    variants = VariantsModel()
    variants.set_choices([1, 2], [EMBEDDED_ID])
    variants.set_variants([VariantSpec(name="a"), VariantSpec(name="b", few_shot_count=2)])
    qtmodeltester.check(variants)
    assert variants.setData(variants.index(0, VariantsModel.COT), "zero_shot")
    variants.add_variant(VariantSpec(name="c", prompt_version=1, model=EMBEDDED_ID))
    variants.removeRows(0, 1)
    qtmodeltester.check(variants)

    grid = ResultsGridModel()
    qtmodeltester.check(grid)  # empty
    grid.set_run(run, test_set)
    qtmodeltester.check(grid)
    grid.set_run(run, None)  # the test set is gone
    qtmodeltester.check(grid)

    summary = SummaryModel()
    summary.set_run(run)
    qtmodeltester.check(summary)

    history = EvalRunListModel()
    history.set_items([run])
    history.add(run.model_copy(update={"complete": False}))
    qtmodeltester.check(history)
    assert "(stopped)" in history.data(history.index(0))
