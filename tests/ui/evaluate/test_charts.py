"""The Evaluate panel's pictures (workbench.ui.evaluate.charts), each on its own: the
metric bars draw one bar per variant with the best marked, a click on a heat-map cell
says which (expected, chosen) it was, the group chart draws the allowed gap, each shows
its hint when there is nothing to draw, and the pictures save as PNG and SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage

from tests.core.test_analysis import _run, _test_set
from workbench.core import analysis as an
from workbench.core.report_svg import BAR_COLOUR, BEST_COLOUR, EQUAL_COLOUR
from workbench.core.stats import classification
from workbench.ui.evaluate import charts


def _pin_singletons() -> None:
    """PySide6 6.12.0 on Python 3.11 drops references it does not own: every Python
    `Signal.emit()` returns True without a reference, and pyqtgraph's `itemChange`
    overrides lose references to None. A few hundred pyqtgraph paints later, True or
    None is "deallocated" and the process aborts (at exit, or mid-run with live plots).
    Python 3.12 makes these objects immortal; here their counts are raised so far that
    the lost references never reach zero. Only for the affected versions; the real fix
    is the environment's PySide6 (see the report of issue 16)."""
    import ctypes
    import sys

    import PySide6

    if sys.version_info >= (3, 12) or not PySide6.__version__.startswith("6.12."):
        return
    for singleton in (True, False, None):
        ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 40


_pin_singletons()


@pytest.fixture
def analysis() -> an.Analysis:
    test_set = _test_set()
    run = _run(test_set, {"soft prompt": {20}, "few-shot": set(range(12)), "zero-shot": {3, 20}})
    return an.analyse(run, test_set)


def _shown(qtbot, widget):
    qtbot.addWidget(widget)
    widget.resize(640, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _items(chart, kind: str) -> list:
    return [i for i in chart.plot.getPlotItem().items if type(i).__name__ == kind]


def _tick_names(chart) -> list[str]:
    ticks = chart.plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    return [name for _, name in ticks]


def test_metric_bars_draw_one_bar_per_variant_with_the_best_marked(qtbot, analysis) -> None:
    bars = _shown(qtbot, charts.MetricBars())
    bars.set_analysis(analysis)
    assert bars.has_content and not bars.hint.isVisible()
    (graph,) = _items(bars, "BarGraphItem")
    assert list(graph.opts["x"]) == [0, 1, 2]
    assert [round(h, 1) for h in graph.opts["height"]] == [96.7, 60.0, 93.3]
    colours = [b.color().name() for b in graph.opts["brushes"]]
    assert colours == [BEST_COLOUR, BAR_COLOUR, EQUAL_COLOUR]
    assert _tick_names(bars) == ["soft prompt", "few-shot", "zero-shot"]
    (whiskers,) = _items(bars, "ErrorBarItem")
    assert len(whiskers.opts["x"]) == 3
    assert "not distinguishable from the best" in bars.caption.text()

    bars.set_analysis(an.Analysis(primary="label", variants=[], pairs=[]))
    assert not bars.has_content and bars.hint.text() == charts.NO_VARIANTS_HINT


def _click_cell(qtbot, heat: charts.ConfusionHeatmap, row: int, column: int) -> None:
    point = heat.plot.mapFromScene(heat.cell_centre(row, column))
    qtbot.mouseClick(heat.plot.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_a_click_on_a_heat_map_cell_says_which_cell(qtbot) -> None:
    labels = ["positive", "negative", "neutral"]
    expected = ["positive"] * 4 + ["negative"] * 3 + ["neutral"] * 3
    chosen = ["positive", "positive", "neutral", "negative"] + ["negative"] * 3 + ["positive"] * 3
    heat = _shown(qtbot, charts.ConfusionHeatmap())
    heat.set_classification(classification(expected, chosen, labels), normalised=False)
    assert heat.cell_texts[(2, 0)] == "3" and heat.cell_texts[(0, 2)] == "1"
    for row, column in [(2, 0), (0, 2), (1, 1)]:
        with qtbot.waitSignal(heat.cell_clicked, timeout=2000) as clicked:
            _click_cell(qtbot, heat, row, column)
        assert clicked.args == [labels[row], labels[column]]

    # outside the matrix (on the axis) nothing is emitted
    emitted: list[tuple[str, str]] = []
    heat.cell_clicked.connect(lambda e, p: emitted.append((e, p)))
    qtbot.mouseClick(heat.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert emitted == []
    assert heat.cell_at(QPointF(-50, -50)) is None

    # an answer outside the label set gets the "(other)" column, clickable too
    heat.set_classification(classification(["a", "b"], ["a", "maybe"], ["a", "b"]), True)
    assert heat.cell_texts[(1, 2)] == "1\n100 %"
    with qtbot.waitSignal(heat.cell_clicked, timeout=2000) as clicked:
        _click_cell(qtbot, heat, 1, 2)
    assert clicked.args == ["b", "(other)"]


def test_the_heat_map_says_what_it_needs_without_a_label_set(qtbot) -> None:
    heat = _shown(qtbot, charts.ConfusionHeatmap())
    assert heat.hint.isVisible() and not heat.plot.isVisible()
    assert heat.hint.text() == "Confusion matrix needs a test set with a label set"
    heat.set_classification(classification(["a"], ["a"], ["a", "b"]))
    assert heat.plot.isVisible()
    heat.set_classification(None)
    assert heat.hint.isVisible() and heat.cell_texts == {}
    with pytest.raises(ValueError, match="nothing to export"):
        charts.save_png(heat, Path("never.png"))


def test_the_group_chart_draws_the_allowed_gap(qtbot, analysis) -> None:
    chart = _shown(qtbot, charts.GroupChart())
    few = analysis.variant("few-shot")  # books 20 %, kitchen 100 %
    chart.set_variant(few, max_group_gap=0.1, metric="label accuracy")
    assert _tick_names(chart) == ["books", "kitchen"]
    assert chart.limit_line is not None and chart.limit_line.value() == pytest.approx(90.0)
    assert chart.over == ["books"]
    assert "over the limit of 10.0 points" in chart.caption.text()
    chart.set_variant(few)  # no limit: no line
    assert chart.limit_line is None and chart.over == []
    assert "limit" not in chart.caption.text()
    plain = an.VariantReport("v", an.Estimate(0.5, None, 2), {}, None, None)
    chart.set_variant(plain)
    assert chart.hint.isVisible() and chart.hint.text() == charts.NO_GROUPS_HINT


def test_charts_save_as_png_and_svg(qtbot, analysis, tmp_path) -> None:
    bars = _shown(qtbot, charts.MetricBars())
    bars.set_analysis(analysis)
    charts.save_png(bars, tmp_path / "bars.png")
    image = QImage(str(tmp_path / "bars.png"))
    assert not image.isNull() and image.width() >= bars.plot.width()
    assert len({image.pixel(x, image.height() // 2) for x in range(image.width())}) > 3

    heat = _shown(qtbot, charts.ConfusionHeatmap())
    heat.set_classification(analysis.variants[1].classification, normalised=True)
    charts.save_svg(heat, tmp_path / "heat.svg")
    root = ET.parse(tmp_path / "heat.svg").getroot()
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "60 %" in texts and "neutralneutral" in texts  # a label and its tooltip
