"""Every text fits at 1366×768 and at 1920×1080: the main window with the sample
library, each tab with the docks beside it, and every dialog that opens without a model,
with the app's stylesheet. The checks themselves (tests/ui/fit.py) are tested first on widgets made
to fail them, so a clean tour means something."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tests.ui import fit
from workbench.core.library import Library
from workbench.ui.app import MainWindow

SIZES = [(1366, 768), (1920, 1080)]


def _box(qtbot, *widgets: QWidget, width: int = 400) -> QWidget:
    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    for widget in widgets:
        layout.addWidget(widget)
    box.resize(width, 300)
    box.show()
    fit.settle()
    return box


# -- the checks catch what they are for ------------------------------------------------


def test_a_label_narrower_than_its_text_is_an_offender(qtbot, themed) -> None:
    label = QLabel("Repetition penalty applies to every token")
    label.setObjectName("narrow")
    label.setFixedWidth(60)
    wide = QLabel("fits")
    box = _box(qtbot, label, wide)
    found = fit.offenders(box)
    assert [(o.kind, o.widget) for o in found] == [("text", "QLabel#narrow")]
    assert found[0].needed > found[0].available == label.contentsRect().width()
    assert "Repetition penalty" in str(found[0])


def test_a_wrapped_label_fits_unless_cut_at_the_bottom_or_by_a_long_word(qtbot, themed) -> None:
    wrapped = QLabel("a long message " * 8)
    wrapped.setWordWrap(True)
    cut = QLabel("a long message " * 8)
    cut.setObjectName("cut")
    cut.setWordWrap(True)
    cut.setFixedSize(120, 18)
    word = QLabel("x" * 60)
    word.setObjectName("word")
    word.setWordWrap(True)
    word.setFixedWidth(120)
    box = _box(qtbot, wrapped, cut, word)
    found = {(o.kind, o.widget) for o in fit.offenders(box)}
    assert found == {("height", "QLabel#cut"), ("text", "QLabel#word")}


def test_buttons_check_boxes_and_combos_are_measured_inside_their_padding(qtbot, themed) -> None:
    button = QPushButton("Compare selected runs")
    button.setObjectName("button")
    button.setFixedWidth(70)
    check = QCheckBox("Colour tokens by probability")
    check.setObjectName("check")
    check.setFixedWidth(90)
    combo = QComboBox()
    combo.setObjectName("combo")
    combo.addItem("SmolLM2-135M-Instruct (embedded)")
    combo.setFixedWidth(110)
    elided = QComboBox()
    elided.addItem("SmolLM2-135M-Instruct (embedded)")
    elided.setProperty("elides", True)  # cuts on purpose (ui/widgets.ElidedComboBox)
    elided.setFixedWidth(110)
    roomy = QPushButton("Run")
    box = _box(qtbot, button, check, combo, elided, roomy)
    found = {o.widget for o in fit.offenders(box)}
    assert found == {"QPushButton#button", "QCheckBox#check", "QComboBox#combo"}


def test_header_sections_and_tabs_are_measured(qtbot, themed) -> None:
    model = QStandardItemModel(2, 2)
    model.setHorizontalHeaderLabels(["accuracy (label accuracy)", "n"])
    table = QTableView()
    table.setObjectName("grid")
    table.setModel(model)
    table.horizontalHeader().resizeSection(0, 40)
    tabs = QTabWidget()
    tabs.setObjectName("tabs")
    tabs.tabBar().setElideMode(Qt.TextElideMode.ElideRight)
    tabs.tabBar().setUsesScrollButtons(False)
    for name in ("Few-shot", "Chain of thought", "Test sets", "Evaluate"):
        tabs.addTab(QWidget(), name)
    box = _box(qtbot, table, tabs, width=200)
    tabs.setFixedWidth(160)
    fit.settle()
    found = fit.offenders(box)
    texts = {o.text for o in found if o.kind == "text"}
    assert "accuracy (label accuracy)" in texts
    assert "n" not in texts
    assert any(o.widget.startswith("QTabBar") for o in found)


def test_a_widget_pushed_out_of_its_parent_is_an_offender(qtbot, themed) -> None:
    box = _box(qtbot, QLabel("inside"))
    stray = QPushButton("Stop", box)
    stray.setObjectName("stray")
    stray.setGeometry(box.width() - 20, 10, 80, 30)
    stray.show()
    found = [o for o in fit.offenders(box) if o.kind == "outside"]
    assert [o.widget for o in found] == ["QPushButton#stray"]
    assert "lost" in found[0].text


def test_a_window_wider_than_asked_is_an_offender(qtbot, themed) -> None:
    box = _box(qtbot, QLabel("inside"))
    box.setMinimumWidth(500)
    box.resize(400, 300)
    found = fit.window_offenders(box, 400, 300)
    assert len(found) == 1 and found[0].needed == 500


# -- the whole app at 1366×768 ---------------------------------------------------------


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def tour(request, qtbot, themed, tmp_path: Path) -> list[fit.Place]:
    width, height = request.param
    fit.seed_tour_library(tmp_path / "library")
    window = MainWindow(Library(tmp_path / "library"), load_model=False)
    qtbot.addWidget(window)
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    places = fit.tour(window, lambda p: qtbot.waitUntil(p, timeout=20_000), width, height)
    window.close()
    return places


def test_the_tour_visits_every_tab_and_the_dialogs(tour) -> None:
    names = [p.name for p in tour]
    for tab in ("Prompt", "Few-shot", "Chain of thought", "Test sets", "Evaluate"):
        assert any(f"tab '{tab}'" in n for n in names), tab
    assert any("Graduate" in n for n in names)
    for dialog in ("Compare runs", "Export", "Import preview", "Help → About"):
        assert dialog in names


def _failures(places: list[fit.Place], kinds: set[str]) -> str:
    lines = []
    for place in places:
        found = [o for o in place.found if o.kind in kinds]
        if found:
            lines.append(f"{place.name}:")
            lines += [f"  {o}" for o in found]
    return "\n".join(lines)


def test_every_text_fits(tour) -> None:
    problems = _failures(tour, {"text", "height"})
    assert not problems, "texts that do not fit:\n" + problems


def test_nothing_is_pushed_outside_the_window(tour) -> None:
    problems = _failures(tour, {"outside", "window"})
    assert not problems, "widgets outside the window:\n" + problems
