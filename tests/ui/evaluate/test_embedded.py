"""The panel on the embedded SmolLM2 model, lent by the model session (integration)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView

from tests.ui.evaluate.helpers import (
    MODEL_TIMEOUT_MS,
    click,
    message,
    sentiment_prompt,
    sentiment_set,
)
from workbench.core.backends import pool as pool_module
from workbench.core.backends.base import Backend
from workbench.core.library import Library
from workbench.core.models import EvalRun
from workbench.ui.evaluate.analysis_view import header_mark


@pytest.mark.integration
def test_zero_shot_against_few_shot_on_the_embedded_model(
    qtbot, open_panel, library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=4)
    panel = open_panel(load_model=True)

    def no_second_copy(*args: object, **kwargs: object) -> Backend:
        raise AssertionError("the run panel's loaded model should have been reused")

    monkeypatch.setattr(pool_module, "load_backend", no_second_copy)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    panel.findChild(QTableView, "evalVariants").selectRow(2)
    click(qtbot, panel, "removeVariant")  # zero-shot vs few-shot
    with qtbot.waitSignal(panel.evaluation_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    run: EvalRun = finished.args[0]
    assert run.complete and run.mode == "likelihood", message(panel)
    assert [v.name for v in run.variants] == ["zero-shot", "few-shot"]

    grid = panel.grid_model
    assert grid.rowCount() == 4
    # the header names each variant, the best one (by the analysis) marked
    analysis = panel.browser.analysis
    assert analysis is not None and analysis.best[0] in ("zero-shot", "few-shot")
    assert [grid.headerData(c, Qt.Orientation.Horizontal) for c in grid.variant_columns()] == [
        f"{name} {header_mark(analysis, name)}".strip() for name in ("zero-shot", "few-shot")
    ]
    for column in grid.variant_columns():
        for row in range(4):
            mark, answer = grid.data(grid.index(row, column)).split(" ", 1)
            assert mark in ("✓", "✗") and answer in ("positive", "negative")

    summary = panel.summary_model
    label_row = summary.row_of("label")
    for variant in range(2):
        accuracy = summary.value("label", variant)
        assert accuracy is not None and 0.0 <= accuracy <= 1.0
        assert summary.data(summary.index(label_row, variant)) == f"{accuracy * 100:.1f} %"
    assert summary.value("context_tokens", 1) > summary.value("context_tokens", 0)  # examples

    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert [r.id for r in stored] == [run.id]
    assert panel.history_model.rowCount() == 1
    assert panel.session.backend is not None  # still loaded for the run panel

    panel.export_csv(tmp_path / "out.csv")
    panel.export_json(tmp_path / "out.json")
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 8
    assert json.loads((tmp_path / "out.json").read_text("utf-8"))["id"] == run.id


@pytest.mark.integration
def test_stop_mid_run_on_the_embedded_model(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    panel = open_panel(load_model=True)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")  # 3 variants × 12 cases
    click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: panel.grid_model.rowCount() >= 1, timeout=MODEL_TIMEOUT_MS)
    click(qtbot, panel, "evalStop")
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert len(stored) == 1
    partial = stored[0]
    assert not partial.complete
    assert 1 <= sum(len(r) for r in partial.results) < 36
    assert "Stopped" in message(panel)
