"""The results get room: at the window's default sizes the verdict columns stay in view
however long the inputs and the chain-of-thought answers are, long cells elide, a click
shows the whole case, and "Failures only" filters the grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QListView, QSplitter, QTableView, QTextBrowser

from tests.ui.evaluate.helpers import (
    click,
    long_run,
    sentiment_prompt,
    sentiment_set,
)
from workbench.core.library import Library
from workbench.core.models import TestRow
from workbench.ui.app import MainWindow

LONG_REVIEW = "It arrived late and the box was dented, but " * 12 + "I love it."
LONG_ANSWER = "Let us think step by step about what the reviewer says. " * 8 + "positive"


def _long_set(library: Library, prompt, rows: int = 6):
    test_set = sentiment_set(library, prompt, count=rows)
    test_set.rows[0] = TestRow(vars={"review": LONG_REVIEW}, expected="positive", group="a")
    return library.save_test_set(test_set)


def _window(qtbot, library_dir: Path, prompt_id: str, size: tuple[int, int]) -> MainWindow:
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    window.select_prompt(prompt_id)
    window.tabs.setCurrentWidget(window.evaluate)
    qtbot.waitExposed(window)
    return window


def _assert_verdicts_in_view(window: MainWindow) -> None:
    grid = window.evaluate.findChild(QTableView, "evalGrid")
    model = window.evaluate.grid_model
    viewport = grid.viewport()
    assert viewport.width() > 0
    for column in model.variant_columns():
        x, width = grid.columnViewportPosition(column), grid.columnWidth(column)
        name = model.headerData(column, Qt.Orientation.Horizontal)
        assert x >= 0 and x + width <= viewport.width(), (name, x, width, viewport.width())
        right = viewport.mapTo(window, QPoint(x + width, 0)).x()
        assert right <= window.width(), (name, right, window.width())
    # the input elides instead of widening the grid
    assert grid.horizontalScrollBar().maximum() == 0


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_verdicts_stay_in_view_after_a_run(
    qtbot, themed, library_dir: Path, fake_models, size: tuple[int, int]
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _long_set(library, prompt)
    window = _window(qtbot, library_dir, prompt.id, size)
    panel = window.evaluate
    click(qtbot, panel, "presetZeroFewCot")
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000):
        click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running)
    _assert_verdicts_in_view(window)
    # the earlier evaluations wrap in their narrow column instead of scrolling sideways
    history = panel.findChild(QListView, "evalHistory")
    assert history.model().rowCount() == 1
    qtbot.wait(50)  # laid out again at the list's width
    item = history.visualRect(history.model().index(0, 0))
    assert item.height() > 2 * history.fontMetrics().height()  # on several lines
    assert not history.horizontalScrollBar().isVisible()

    # a stored run whose chain-of-thought answers are paragraphs: still in view
    run = long_run(window.library.test_sets_for(prompt.id)[0], prompt, LONG_ANSWER)
    panel.show_run(run)
    _assert_verdicts_in_view(window)
    grid = panel.findChild(QTableView, "evalGrid")
    # the results have most of the tab's height, the grid the largest share of it
    assert grid.height() > panel.height() // 4, (grid.height(), panel.height())


def test_a_click_shows_the_whole_case_and_a_hover_the_whole_cell(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = _long_set(library, prompt)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.show_run(long_run(test_set, prompt, LONG_ANSWER))
    grid = panel.findChild(QTableView, "evalGrid")
    model = grid.model()
    review = next(
        c
        for c in range(model.columnCount())
        if model.headerData(c, Qt.Orientation.Horizontal) == "review"
    )
    cell = model.index(0, review)
    shown = model.data(cell)
    assert len(shown) < len(LONG_REVIEW) and shown.endswith("…")  # one elided line
    assert "I love it." in model.data(cell, Qt.ItemDataRole.ToolTipRole)  # the whole of it

    detail = panel.findChild(QTextBrowser, "evalDetail")
    assert "I love it." not in detail.toPlainText()
    grid.setCurrentIndex(cell)
    text = detail.toPlainText()
    assert "Case 1" in text and LONG_REVIEW.strip() in " ".join(text.split())
    assert "zero-shot — ✓ passes" in text and "chain-of-thought" in text
    assert LONG_ANSWER.split()[-1] in text and "Let us think step by step" in text


def test_failures_only_filters_the_grid(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=6)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.show_run(long_run(test_set, prompt))  # few-shot fails the odd rows
    grid = panel.findChild(QTableView, "evalGrid")
    failures = panel.findChild(QCheckBox, "evalFailuresOnly")
    shown = panel.findChild(QLabel, "evalShownCount")
    assert failures is not None and failures.isEnabled() and not failures.isChecked()
    assert grid.model().rowCount() == 6 and shown.text() == "6 cases"

    qtbot.mouseClick(failures, Qt.MouseButton.LeftButton)
    view_rows = [
        grid.model().headerData(r, Qt.Orientation.Vertical) for r in range(grid.model().rowCount())
    ]
    assert view_rows == ["2", "4", "6"]  # the test-set rows some variant failed
    assert shown.text() == "3 of 6 cases shown"
    first = grid.model().index(0, panel.grid_model.variant_columns()[1])
    assert grid.model().data(first).startswith("✗")

    qtbot.mouseClick(failures, Qt.MouseButton.LeftButton)
    assert grid.model().rowCount() == 6


def test_a_smaller_window_keeps_the_grid_the_largest_part_of_the_results(
    qtbot, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _long_set(library, prompt)
    window = _window(qtbot, library_dir, prompt.id, (1920, 1080))
    panel = window.evaluate
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000):
        click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running)
    grid = panel.findChild(QTableView, "evalGrid")
    splitter = panel.findChild(QSplitter, "evalResultsSplitter")
    qtbot.waitUntil(lambda: grid.height() > splitter.height() // 2)

    window.resize(1366, 768)  # all of the lost height came out of the grid
    qtbot.waitUntil(lambda: splitter.height() < 500)
    qtbot.wait(50)
    strip, rows, detail = splitter.sizes()
    assert rows >= (strip + rows + detail) // 2, (strip, rows, detail)
    assert strip > 0 and detail > 0  # the analysis and the case stay in view


def test_every_variants_column_and_row_is_in_view_at_1366(qtbot, themed, library_dir: Path) -> None:
    """Long soft prompt and adapter names elide in the tuned column (whole on hover)
    instead of pushing the column out of the table's view."""
    from tests.core.exchange_helpers import add_lora_adapter, add_soft_prompt
    from workbench.core.models import VariantSpec
    from workbench.ui.evaluate import VariantsModel

    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    long = "Review sentiment, trained on 240 labelled reviews"
    soft = add_soft_prompt(library, f"{long} (soft)", prompt.id, tokens=3, hidden=8)
    adapter = add_lora_adapter(library, f"{long} (LoRA)", prompt.id)
    window = _window(qtbot, library_dir, prompt.id, (1366, 768))
    model = window.evaluate.variants_model
    model.set_variants(
        [
            VariantSpec(name="zero-shot", few_shot_count=0),
            VariantSpec(name="soft prompt", few_shot_count=0, soft_prompt_id=soft.id),
            VariantSpec(name="LoRA", few_shot_count=0, adapter_id=adapter.id),
        ]
    )
    view = window.evaluate.findChild(QTableView, "evalVariants")
    qtbot.wait(50)  # the columns sized to the new contents
    assert view.horizontalHeader().length() <= view.viewport().width()
    assert view.horizontalScrollBar().maximum() == 0
    for column in range(model.columnCount()):
        x = view.columnViewportPosition(column)
        assert x >= 0 and x + view.columnWidth(column) <= view.viewport().width(), column
    last = model.rowCount() - 1
    assert view.rowViewportPosition(last) + view.rowHeight(last) <= view.viewport().height()
    cell = model.index(2, VariantsModel.TUNED)
    assert f"{long} (LoRA)" in model.data(cell, Qt.ItemDataRole.ToolTipRole)
