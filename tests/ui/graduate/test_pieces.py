"""The Graduate panel's pieces without the panel: the ring buffer behind the plot, the
status line, finding the embedding matrix, and the item models."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.graduate.helpers import (
    comparison_run,
    sentiment_prompt,
    sentiment_set,
    stored_soft_prompt,
)
from workbench.core.flows.nearest import find_embedding_key
from workbench.core.library import Library
from workbench.core.tuning import StepEvent
from workbench.ui.graduate import (
    ComparisonModel,
    NearestTokensModel,
    RingSeries,
    SoftPromptListModel,
    step_status,
)


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
    assert "validation 75.0 %" in softs.data(softs.index(1, 0))
