"""The analysis wired into the Evaluate panel: a shown run gets its analysis tabs and the
best variant marked in the grid's header, a click on a confusion cell filters the grid
(and Clear shows every case again), a rating by keyboard, context menu or rating bar is
saved with the run and read back from disk, and the report is exported with its
pictures. An old run (stored before any of this) gains the analysis when it is opened."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton, QTableView, QTabWidget

from tests.ui.evaluate.helpers import long_run, message, sentiment_prompt, sentiment_set
from workbench.core.library import Library
from workbench.core.models import CaseRating, EvalRun
from workbench.ui.evaluate import browser as browser_module
from workbench.ui.evaluate.browser import NO_TEST_SET, ResultsBrowser

ROWS = 20  # few-shot is wrong on the 10 odd rows: the paired test tells it apart


def _stored(library_dir: Path, rows: int = ROWS):
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=rows)
    run = library.save_eval_run(long_run(test_set, prompt))
    return prompt, test_set, run


def _opened(open_panel, prompt, run: EvalRun):
    """A panel on the prompt with `run` picked from its history."""
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    row = panel.history_model.row_of(run.id)
    assert row >= 0
    panel.findChild(QTableView, "evalGrid")  # built
    panel.browser.history.setCurrentIndex(panel.history_model.index(row, 0))
    assert panel.shown_run() is not None and panel.shown_run().id == run.id
    return panel


def _variant_headers(panel) -> list[str]:
    grid = panel.grid_model
    return [grid.headerData(c, Qt.Orientation.Horizontal) for c in grid.variant_columns()]


def _shown_rows(panel) -> list[int]:
    grid = panel.findChild(QTableView, "evalGrid")
    proxy = grid.model()
    rows = panel.grid_model.case_rows()
    return [rows[proxy.mapToSource(proxy.index(r, 0)).row()] for r in range(proxy.rowCount())]


def test_a_stored_run_gains_its_analysis_and_the_header_marks_the_best(
    qtbot, open_panel, library_dir: Path
) -> None:
    prompt, _, run = _stored(library_dir)
    panel = _opened(open_panel, prompt, run)
    # zero-shot and chain-of-thought are right on every row, few-shot on half
    assert _variant_headers(panel) == ["zero-shot ★", "few-shot", "chain-of-thought ≈"]
    grid_model = panel.grid_model
    zero, few, cot = (
        grid_model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        for c in grid_model.variant_columns()
    )
    assert "★ = the best variant" in zero and "not distinguishable from the best" in cot
    assert "★" not in few and "≈" not in few
    tabs = panel.findChild(QTabWidget, "evalAnalysis")
    assert tabs.isVisible() and tabs.tabText(tabs.currentIndex()) == "Summary"
    text = tabs.widget(0).toPlainText()
    assert "100.0 % (83.9–100.0)" in text  # 20 of 20 with its Wilson interval
    analysis = panel.browser.analysis
    assert analysis is not None and analysis.best == ["zero-shot", "chain-of-thought"]
    assert all(p.verdict in text for p in analysis.pairs)
    assert any("p =" in p.verdict for p in analysis.pairs)  # zero-shot > few-shot
    assert panel.findChild(QPushButton, "evalExportReport").isEnabled()
    # once laid out, the grid keeps most of the results' height
    grid = panel.findChild(QTableView, "evalGrid")
    qtbot.waitUntil(lambda: grid.height() > tabs.height() > 100)


def test_a_confusion_cell_filters_the_grid_and_clear_shows_every_case(
    qtbot, open_panel, library_dir: Path
) -> None:
    prompt, _, run = _stored(library_dir)
    panel = _opened(open_panel, prompt, run)
    view = panel.browser.analysis_view
    view.variant_combo.setCurrentIndex(1)  # few-shot
    grid = panel.findChild(QTableView, "evalGrid")
    qtbot.waitUntil(lambda: grid.height() > view.height())  # laid out: a short strip
    view.setCurrentIndex(view.count() - 1)  # Charts: the strip grows for the pictures
    assert view.height() > 200 and grid.height() > 150
    heat = view.heatmap
    assert heat is not None
    qtbot.waitUntil(lambda: heat.plot.isVisible() and heat.plot.width() > 50)
    labels = heat.classification.labels
    row, column = labels.index("negative"), labels.index("positive")
    point = heat.plot.mapFromScene(heat.cell_centre(row, column))
    qtbot.mouseClick(heat.plot.viewport(), Qt.MouseButton.LeftButton, pos=point)

    assert _shown_rows(panel) == list(range(1, ROWS, 2))  # the negative reviews it got wrong
    line = panel.findChild(QLabel, "evalCellFilter")
    assert line.isVisible()
    assert line.text() == "Showing 10 cases: expected negative, few-shot chose positive —"
    assert panel.findChild(QLabel, "evalShownCount").text() == "10 of 20 cases shown"
    clear = panel.findChild(QPushButton, "evalCellFilterClear")
    qtbot.mouseClick(clear, Qt.MouseButton.LeftButton)
    assert _shown_rows(panel) == list(range(ROWS))
    assert not line.isVisible() and not clear.isVisible()


def test_a_keyboard_rating_is_saved_and_read_back(qtbot, open_panel, library_dir: Path) -> None:
    prompt, _, run = _stored(library_dir)
    panel = _opened(open_panel, prompt, run)
    grid = panel.findChild(QTableView, "evalGrid")
    few_shot = panel.grid_model.variant_columns()[1]
    grid.setFocus()
    grid.setCurrentIndex(grid.model().index(2, few_shot))  # test-set row 2
    with qtbot.waitSignal(panel.browser.run_saved):
        qtbot.keyClick(grid, "+")
    qtbot.keyClick(grid, "4")
    assert grid.model().data(grid.currentIndex()).startswith("▲ ★4 ")
    assert "few-shot, case 3: thumbs up, 4 of 5 stars" in message(panel)
    summary = panel.browser.analysis_view.summary.toPlainText()
    assert "rated satisfaction" in summary and "thumbs up 100.0 %" in summary

    # on disk: the library opened again has it
    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert [r.id for r in stored] == [run.id]
    rating = next(r for r in stored[0].results[1] if r.row == 2).rating
    assert rating == CaseRating(thumbs="up", stars=4)
    assert all(r.rating is None for r in stored[0].results[0])

    # and a panel opened afresh shows it, in the cell and in the analysis
    again = _opened(open_panel, prompt, run)
    cells = [
        again.grid_model.data(again.grid_model.index(r, few_shot))
        for r in range(again.grid_model.rowCount())
    ]
    assert cells[2].startswith("▲ ★4 ") and not any(c.startswith("▲") for c in cells[3:])
    assert again.browser.analysis.variant("few-shot").stars.value == 4.0

    # the same key again takes the thumbs back; 0 clears the rest
    qtbot.keyClick(grid, "+")
    qtbot.keyClick(grid, "0")
    stored = Library(library_dir).eval_runs_for(prompt.id)[0]
    assert all(r.rating is None for r in stored.results[1])


def test_the_context_menu_and_the_rating_bar_rate_the_picked_output(
    qtbot, open_panel, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt, _, run = _stored(library_dir, rows=4)
    panel = _opened(open_panel, prompt, run)
    grid = panel.findChild(QTableView, "evalGrid")
    assert panel.browser.rating_menu() is None  # nothing picked: nothing to rate
    qtbot.keyClick(grid, "+")
    assert message(panel) == "Pick a variant's output in the grid to rate it."
    lead = panel.grid_model.lead_columns()[0]
    grid.setCurrentIndex(grid.model().index(0, lead))
    assert panel.browser.rating_menu() is None  # the review is not an output
    grid.setCurrentIndex(grid.model().index(0, panel.grid_model.variant_columns()[0]))
    menu = panel.browser.rating_menu()
    assert menu is not None
    down = next(a for a in menu.actions() if a.text().startswith("▼"))
    down.trigger()
    target = panel.findChild(QLabel, "evalRatingTarget")
    assert target.text() == "Rate zero-shot:"
    star = panel.findChild(type(panel.browser.rating_bar.buttons["2"]), "evalRate_2")
    qtbot.mouseClick(star, Qt.MouseButton.LeftButton)
    assert star.isChecked() and panel.browser.rating_bar.buttons["down"].isChecked()
    stored = Library(library_dir).eval_runs_for(prompt.id)[0]
    assert stored.results[0][0].rating == CaseRating(thumbs="down", stars=2)
    assert panel.browser.analysis.variant("zero-shot").thumbs_up.value == 0.0

    # N asks for a note (the dialog answered here); a cancelled dialog changes nothing
    notes = iter(["Too terse, but right.", None])
    monkeypatch.setattr(browser_module, "ask_note", lambda _parent, _current: next(notes))
    qtbot.keyClick(grid, "n")
    assert grid.model().data(grid.currentIndex()).startswith("▼ ★2 ✎ ")
    qtbot.keyClick(grid, "n")
    stored = Library(library_dir).eval_runs_for(prompt.id)[0]
    assert stored.results[0][0].rating.note == "Too terse, but right."
    assert "note: Too terse, but right." in panel.findChild(QLabel, "evalMessage").text()


def test_a_failed_save_keeps_the_run_and_says_why(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=4)
    run = long_run(test_set, prompt)

    def full_disk(_run: EvalRun) -> EvalRun:
        raise OSError("No space left on device")

    browser = ResultsBrowser(save=full_disk)
    qtbot.addWidget(browser)
    browser.resize(900, 700)
    browser.show()
    said: list[tuple[str, bool]] = []
    browser.message.connect(lambda text, error: said.append((text, error)))
    browser.display(run, test_set)
    grid = browser.grid_view
    grid.setCurrentIndex(grid.model().index(0, browser.grid_model.variant_columns()[0]))
    qtbot.keyClick(grid, "+")
    assert said[-1] == (
        "Could not save the rating: No space left on device. The evaluation is unchanged.",
        True,
    )
    assert browser.shown_run() is run and all(r.rating is None for r in run.results[0])
    assert not grid.model().data(grid.currentIndex()).startswith("▲")
    up = browser.rating_bar.buttons["up"]
    qtbot.mouseClick(up, Qt.MouseButton.LeftButton)
    assert said[-1][1] and not up.isChecked()  # the bar shows the rating as it still is


def test_export_report_writes_the_report_with_its_pictures(
    qtbot, open_panel, library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt, _, run = _stored(library_dir)
    panel = _opened(open_panel, prompt, run)
    button = panel.findChild(QPushButton, "evalExportReport")
    answer = {"path": str(tmp_path / "report"), "pattern": "Markdown with SVG pictures (*.md)"}
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (answer["path"], answer["pattern"])
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    report = tmp_path / "report.md"
    assert report.is_file(), message(panel)
    pictures = sorted(tmp_path.glob("report-*.svg"))
    assert pictures and message(panel).startswith(f"Exported the report to {report}")
    text = report.read_text("utf-8")
    assert "Review sentiment" in text
    for picture in pictures:
        assert picture.name in text
        assert ET.parse(picture).getroot().tag.endswith("svg")

    answer.update(path=str(tmp_path / "page.html"), pattern="One HTML page (*.html)")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    page = (tmp_path / "page.html").read_text("utf-8")
    assert "<svg" in page and "zero-shot" in page

    answer["path"] = str(tmp_path / "missing" / "report.md")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert message(panel).startswith("Could not export the report:")
    assert not (tmp_path / "missing").exists()


def test_a_run_whose_test_set_is_gone_says_what_the_analysis_needs(
    qtbot, open_panel, library_dir: Path
) -> None:
    prompt, test_set, run = _stored(library_dir, rows=4)
    Library(library_dir).delete_test_set(test_set.id)
    panel = _opened(open_panel, prompt, run)
    assert panel.browser.analysis is None
    assert panel.browser.analysis_view.summary.placeholderText() == NO_TEST_SET
    assert _variant_headers(panel) == ["zero-shot", "few-shot", "chain-of-thought"]
    assert not panel.findChild(QPushButton, "evalExportReport").isEnabled()
