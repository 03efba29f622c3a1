"""The evaluation report (workbench.core.report_export): Markdown and HTML carry the
analysis's numbers, the SVG pictures are well-formed and escape user text, and
`write_report` writes the pictures beside a .md and nothing at all when it cannot."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.core.test_analysis import _run, _test_set
from workbench.core import analysis as an
from workbench.core import report_export as rx
from workbench.core.models import CaseRating, EvalRun, TestSet
from workbench.core.report_svg import BAR_COLOUR, BEST_COLOUR, EQUAL_COLOUR

SVG = "{http://www.w3.org/2000/svg}"
ODD = 'few <b>&</b> "shot"'  # a variant name that is also markup


@pytest.fixture
def evaluated() -> tuple[EvalRun, TestSet, an.Analysis]:
    test_set = _test_set()
    run = _run(test_set, {"soft prompt": {20}, ODD: set(range(12)), "zero-shot": {3, 20}})
    for row, thumbs, stars in [(0, "up", 5), (1, "up", 4), (2, "down", 2)]:
        run = an.set_rating(run, 0, row, CaseRating(thumbs=thumbs, stars=stars))
    cases = run.results[0]
    cases[0] = cases[0].model_copy(update={"expected_logprob": -1.0, "expected_tokens": 1})
    cases[1] = cases[1].model_copy(update={"expected_logprob": -3.0, "expected_tokens": 3})
    return run, test_set, an.analyse(run, test_set)


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_the_markdown_carries_the_numbers_of_the_analysis(evaluated) -> None:
    run, test_set, analysis = evaluated
    text = rx.markdown_report(run, test_set, analysis, "Sentiment", max_group_gap=0.1)
    assert text.startswith("# Sentiment on reviews\n")
    assert "all rows · label likelihood · 30 cases · 3 variants" in text
    assert "| soft prompt | 96.7 % (83.3–99.4) | 30 | best |" in text
    assert "| zero-shot | 93.3 % (78.7–98.2) | 30 | not distinguishable from the best |" in text
    assert '- soft prompt \\> few \\<b\\>\\&\\</b\\> "shot", p = 0.003; they disagree on 13' in text
    assert "| soft prompt | 1.000 | 2.72 | 2 |" in text  # cross-entropy, perplexity, cases
    assert "| soft prompt | 66.7 % (20.8–93.9) | 3 | 3.67 of 5 (1.94–5.40) | 3 |" in text
    few = analysis.variants[1].classification
    assert few is not None
    assert f"macro-F1 {few.macro_f1:.3f} · micro-F1 {few.micro_f1:.3f}" in text
    assert "| neutral | 0.429 | 0.600 | 0.500 | 10 |" in text  # per-label, few-shot
    assert "| positive | 6 | 0 | 4 |" in text and "| positive | 60 % | 0 % | 40 % |" in text
    assert "| books | 20.0 % (7.0–45.2) | 15 |" in text
    assert "Largest gap 80.0 points (kitchen over books; bootstrap 95 % interval" in text
    assert text.count("**Over the limit: the gap is more than 10.0 points.**") == 1
    assert "![label accuracy per variant](report-bars.svg)" in text
    # no threshold given: no verdict on it
    assert "limit" not in rx.markdown_report(run, test_set, analysis)


def test_user_text_is_escaped_in_markdown_html_and_svg(evaluated) -> None:
    run, test_set, analysis = evaluated
    markdown = rx.markdown_report(run, test_set, analysis)
    assert "<b>" not in markdown and "few \\<b\\>\\&\\</b\\>" in markdown
    page = rx.html_report(run, test_set, analysis)
    assert "<b>" not in page
    assert "few &lt;b&gt;&amp;&lt;/b&gt; &quot;shot&quot;" in page
    for svg in (rx.svg_metric_bars(analysis), rx.svg_groups(analysis.variants[1], 0.1)):
        assert "<b>" not in svg
        texts = _svg_texts(svg)  # parses: the escaping kept it well-formed
        assert any(ODD in t or "few <b>&</b>" in t for t in texts)


def test_the_html_page_inlines_its_pictures_and_numbers(evaluated) -> None:
    run, test_set, analysis = evaluated
    page = rx.html_report(run, test_set, analysis, "Sentiment", max_group_gap=0.1)
    assert page.startswith("<!DOCTYPE html>") and "<title>Sentiment on reviews</title>" in page
    assert "<td>soft prompt</td><td>96.7 % (83.3–99.4)</td><td>30</td><td>best</td>" in page
    assert '<p class="flag">Over the limit: the gap is more than 10.0 points.</p>' in page
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    # the bars, a confusion matrix and a group chart per variant
    assert len(svgs) == 1 + 3 + 3
    for svg in svgs:
        ET.fromstring(svg)


def test_the_pictures_draw_what_the_analysis_says(evaluated) -> None:
    _, _, analysis = evaluated
    bars = ET.fromstring(rx.svg_metric_bars(analysis))
    fills = [r.get("fill") for r in bars.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert fills == [BEST_COLOUR, BAR_COLOUR, EQUAL_COLOUR]
    assert "96.7 %" in _svg_texts(rx.svg_metric_bars(analysis))

    few = analysis.variants[1]
    assert few.classification is not None
    confusion = _svg_texts(rx.svg_confusion(few.classification, normalised=False))
    # the counts in reading order, after the title, the axis names and the column labels
    counts = [t for t in confusion if t.isdigit()]
    assert counts == [str(n) for row in few.classification.matrix for n in row]

    groups = rx.svg_groups(few, max_group_gap=0.1, metric="label accuracy")
    texts = _svg_texts(groups)
    assert "over the limit of 10.0 points" in texts
    assert 'stroke-dasharray="6 4"' in groups  # the limit line
    red = [r for r in ET.fromstring(groups).iter(f"{SVG}rect") if r.get("fill") == "#d62728"]
    assert len(red) == 1  # books, 80 points under kitchen
    assert "within the limit of 10.0 points" in _svg_texts(
        rx.svg_groups(analysis.variants[0], max_group_gap=0.1)
    )


def test_pictures_with_nothing_to_draw_say_why() -> None:
    empty = an.Analysis(primary="label", variants=[], pairs=[])
    assert _svg_texts(rx.svg_metric_bars(empty)) == ["No variants to show"]
    plain = an.VariantReport("v", an.Estimate(0.5, None, 2), {}, None, None)
    assert _svg_texts(rx.svg_groups(plain)) == ["No groups: the test set's rows have no group"]


def test_write_report_puts_the_pictures_beside_a_markdown_file(tmp_path, evaluated) -> None:
    run, test_set, analysis = evaluated
    target = tmp_path / "my report.md"
    written = rx.write_report(target, run, test_set, analysis, 0.1, "Sentiment")
    assert written[-1] == target
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in written)
    assert "my report-bars.svg" in names
    assert "my report-confusion-2-few-b-b-shot.svg" in names
    text = target.read_text("utf-8")
    for image in written[:-1]:
        ET.parse(image)  # well-formed
        assert f"({image.name.replace(' ', '%20')})" in text  # linked from the report

    page = tmp_path / "page.html"
    assert rx.write_report(page, run, test_set, analysis) == [page]
    assert "<svg " in page.read_text("utf-8")


def test_write_report_writes_nothing_when_it_cannot(tmp_path, evaluated, monkeypatch) -> None:
    run, test_set, analysis = evaluated
    with pytest.raises(rx.ReportError, match="does not exist"):
        rx.write_report(tmp_path / "missing" / "r.md", run, test_set, analysis)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(rx.ReportError, match=r"\.md or \.html, not \.pdf"):
        rx.write_report(tmp_path / "r.pdf", run, test_set, analysis)
    assert list(tmp_path.iterdir()) == []

    # a write failing half-way: nothing takes its name, an older picture is unchanged
    (tmp_path / "r-bars.svg").write_text("old")
    calls: list[Path] = []
    stage = rx._stage

    def failing(path: Path, text: str) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return stage(path, text)

    monkeypatch.setattr(rx, "_stage", failing)
    with pytest.raises(OSError, match="disk full"):
        rx.write_report(tmp_path / "r.md", run, test_set, analysis)
    assert len(calls) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["r-bars.svg"]  # no temp files either
    assert (tmp_path / "r-bars.svg").read_text() == "old"
