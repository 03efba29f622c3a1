"""Earlier runs shown again from the history, and exported as CSV and JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListView

from tests.ui.evaluate.helpers import (
    button,
    message,
    sentiment_prompt,
    sentiment_set,
    stored_run,
)
from workbench.core.library import Library
from workbench.core.models import EvalRun


def test_history_shows_earlier_runs_and_exports_them(
    qtbot, open_panel, library_dir: Path, tmp_path: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    library.save_eval_run(stored_run(test_set, prompt))
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    with pytest.raises(ValueError, match="no evaluation"):
        panel.export_csv(tmp_path / "nothing.csv")
    history = panel.findChild(QListView, "evalHistory")
    assert history.model().rowCount() == 1
    history.setCurrentIndex(history.model().index(0, 0))
    grid = panel.grid_model
    assert grid.rowCount() == 2 and grid.columnCount() == 4
    assert grid.data(grid.index(0, 0)).startswith("I love it!")
    assert grid.data(grid.index(1, 3)) == "⚠ error"
    assert "boom" in grid.data(grid.index(1, 3), Qt.ItemDataRole.ToolTipRole)
    assert button(panel, "evalExportCsv").isEnabled()

    panel.export_csv(tmp_path / "run.csv")
    panel.export_json(tmp_path / "run.json")
    with (tmp_path / "run.csv").open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert [(r["variant"], r["row"], r["label"]) for r in lines] == [
        ("zero-shot", "0", "1.0"),
        ("zero-shot", "1", "0.0"),
        ("few-shot", "0", "1.0"),
        ("few-shot", "1", "0.0"),
    ]
    assert lines[0]["review"].startswith("I love it!")
    again = EvalRun.model_validate(json.loads((tmp_path / "run.json").read_text("utf-8")))
    assert again.id == panel.shown_run().id

    # the test set is deleted: the run still shows, its variables unknown
    panel.library.delete_test_set(test_set.id)
    panel.set_prompt(panel.library.new_prompt("Elsewhere"))
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    history.setCurrentIndex(history.model().index(0, 0))
    assert grid.headerData(0, Qt.Orientation.Horizontal) == "variables"
    assert grid.data(grid.index(0, 0)) == "unknown"
    assert "no longer in the library" in message(panel)
    panel.export_csv(tmp_path / "orphan.csv")
    assert (tmp_path / "orphan.csv").read_text("utf-8").count("\n") == 5
