"""The pieces the panel's analysis is wired from: rating actions, the summary with its
intervals and best marks, and the grid filter of a confusion-matrix cell."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from tests.ui.evaluate.helpers import long_run, sentiment_prompt, sentiment_set
from workbench.core.analysis import analyse
from workbench.core.library import Library
from workbench.core.models import CaseRating
from workbench.ui.evaluate.analysis_view import AnalysisView, best_mark, summary_html
from workbench.ui.evaluate.grid import FailuresOnlyProxy
from workbench.ui.evaluate.ratings import rated, rating_marks
from workbench.ui.evaluate.results import ResultsGridModel


def test_rating_actions_set_toggle_and_clear() -> None:
    up = rated(None, "up")
    assert up == CaseRating(thumbs="up")
    four = rated(up, "4")
    assert four == CaseRating(thumbs="up", stars=4) and rating_marks(four) == "▲ ★4"
    assert rated(four, "4") == CaseRating(thumbs="up")  # the same stars again take them back
    assert rated(four, "clear") is None
    assert rated(CaseRating(thumbs="down"), "down") is None


def test_summary_has_intervals_best_marks_and_verdicts(qtbot, library_dir) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=8)
    analysis = analyse(long_run(test_set, prompt), test_set)
    text = summary_html(analysis)
    assert "100.0 % (67.6–100.0)" in text  # zero-shot: 8 of 8 with its Wilson interval
    assert best_mark(analysis, analysis.best[0]) == "★ best"
    assert all(p.verdict in text for p in analysis.pairs)
    view = AnalysisView(QLabel())
    qtbot.addWidget(view)
    view.set_analysis(analysis)
    assert view.variant_combo.count() == 3 and view.per_label.rowCount() == 2


def test_summary_figures_never_break_in_a_narrow_strip(qtbot, themed, library_dir) -> None:
    """At 1366×768 the Summary tab is about 530 px wide: an accuracy and its interval
    stay on one line ("100.0 % (67.6–100.0)", not split after the percentage), a
    header breaks only before its unit, and nothing scrolls sideways."""
    from PySide6.QtWidgets import QTextBrowser

    from workbench.core.flows.report import format_percent

    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=8)
    run = long_run(test_set, prompt)
    # the names a user gives, and the likelihood columns a labelled run has
    names = ["Review sentiment", "Review sentiment v2", "Terse sentiment"]
    run.variants = [
        v.model_copy(update={"name": n}) for v, n in zip(run.variants, names, strict=True)
    ]
    run.summaries = [
        s.model_copy(update={"name": n}) for s, n in zip(run.summaries, names, strict=True)
    ]
    run.results = [
        [c.model_copy(update={"expected_logprob": -1.5, "expected_tokens": 2}) for c in cases]
        for cases in run.results
    ]
    analysis = analyse(run, test_set)
    assert all(v.cross_entropy is not None for v in analysis.variants)
    view = QTextBrowser()
    qtbot.addWidget(view)
    view.resize(530, 300)
    view.setHtml(summary_html(analysis))
    view.show()
    qtbot.waitExposed(view)
    assert not view.horizontalScrollBar().isVisible()

    def lines(text: str) -> int:
        found = view.document().find(text)
        assert not found.isNull(), text
        return found.block().layout().lineCount()

    for variant in analysis.variants:
        assert lines(format_percent(variant.primary.value, variant.primary.interval)) == 1
    assert lines("perplexity") == 1
    assert lines("cross-entropy") == 2  # "cross-entropy", then "(nats/token)" below it


def test_cell_filter_keeps_exactly_those_cases(qtbot, library_dir) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=8)
    grid = ResultsGridModel()
    grid.set_run(long_run(test_set, prompt), test_set)
    proxy = FailuresOnlyProxy(grid)
    labels = ["positive", "negative"]
    # few-shot is wrong on the odd rows, which are the negative reviews
    proxy.set_cell_filter((1, "negative", "positive"), labels)
    shown = [
        grid.case_rows()[proxy.mapToSource(proxy.index(r, 0)).row()]
        for r in range(proxy.rowCount())
    ]
    assert shown == [1, 3, 5, 7]
    proxy.set_cell_filter((1, "positive", "positive"), labels)
    assert proxy.rowCount() == 4  # the even rows, all positive and right
    proxy.set_cell_filter(None, labels)
    assert proxy.rowCount() == 8
