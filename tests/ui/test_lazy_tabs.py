"""The tabs not in view at start are built when first shown or first asked for, in
their own place, showing what an eagerly built tab would show."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import Qt

from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path
from workbench.ui.app import TABS_MIN_WIDTH, MainWindow

TITLES = [
    "Prompt",
    "Few-shot",
    "Chain of thought",
    "Test sets",
    "Evaluate",
    "Graduate",
    "Methods",
]
HIDDEN_AT_START = [
    "workbench.ui.fewshot",
    "workbench.ui.cot",
    "workbench.ui.testsets",
    "workbench.ui.evaluate",
    "workbench.ui.graduate",
    "workbench.ui.methods",
]


def _window(qtbot, library_dir: Path) -> MainWindow:
    library = Library(library_dir)
    seed_library(library, resource_path("sample_library"))
    window = MainWindow(library, load_model=False)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    return window


def _titles(window: MainWindow) -> list[str]:
    return [window.tabs.tabText(i) for i in range(window.tabs.count())]


def test_a_tab_clicked_for_the_first_time_shows_its_panel_on_the_selected_prompt(
    qtbot, library_dir: Path
) -> None:
    window = _window(qtbot, library_dir)
    prompt = window.library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    assert _titles(window) == TITLES
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert window.tabs.currentIndex() == 1
    few_shot = window.few_shot
    assert window.tabs.currentWidget() is few_shot and few_shot.isVisible()
    assert few_shot.isEnabled()
    assert few_shot.few_shot() == prompt.few_shot
    assert few_shot.model.rowCount() == len(prompt.few_shot.examples) > 0
    assert _titles(window) == TITLES
    # built once: the same panel from then on, and it follows the next prompt
    other = window.library.find_prompt("Meeting notes → summary (chain)")
    assert other.few_shot != prompt.few_shot
    window.library_panel.select(other.id)
    assert window.few_shot is few_shot
    assert few_shot.few_shot() == other.few_shot


def test_a_panel_asked_for_before_its_tab_is_shown_takes_its_place_out_of_view(
    qtbot, library_dir: Path
) -> None:
    window = _window(qtbot, library_dir)
    prompt = window.library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    test_sets = window.test_sets  # built now, not shown
    assert window.tabs.currentIndex() == 0 and window.tabs.currentWidget() is window.editor
    assert window.tabs.indexOf(test_sets) == 3 and not test_sets.isVisible()
    shown = test_sets.current_test_set()
    assert shown is not None and shown.prompt_id == prompt.id
    window.tabs.setCurrentWidget(window.graduate)
    assert window.tabs.currentIndex() == 5 and window.graduate.isVisible()
    assert _titles(window) == TITLES


def test_a_tab_built_later_never_widens_the_window(qtbot, themed, library_dir: Path) -> None:
    """The tabs hold the widest panel's minimum (in the app's look) from the start, so
    the window a user placed keeps its size when a tab is first opened (it used to
    widen itself)."""
    window = _window(qtbot, library_dir)
    window.resize(window.minimumSizeHint().width(), 700)  # as narrow as it goes
    qtbot.waitUntil(lambda: window.width() == window.minimumSizeHint().width())
    width = window.width()
    for index in range(1, window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        panel = window.tabs.currentWidget()
        assert panel.minimumSizeHint().width() <= TABS_MIN_WIDTH, window.tabs.tabText(index)
        qtbot.wait(10)
        assert window.width() == width, window.tabs.tabText(index)


def test_without_a_prompt_a_panel_built_later_is_disabled(qtbot, library_dir: Path) -> None:
    window = MainWindow(Library(library_dir), load_model=False)  # an empty library
    qtbot.addWidget(window)
    window.show()
    assert window.working is None
    for panel in (window.few_shot, window.cot, window.test_sets):
        assert not panel.isEnabled()
    window.library_panel.new_prompt("First")
    assert window.working is not None
    for panel in (window.few_shot, window.cot, window.test_sets):
        assert panel.isEnabled()


def test_start_up_imports_none_of_the_tabs_not_in_view(library_dir: Path) -> None:
    library = Library(library_dir)
    seed_library(library, resource_path("sample_library"))
    library.close()
    code = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtCore import QTimer
        from workbench.core.library import Library
        from workbench.ui.app import MainWindow, create_application
        app = create_application()
        window = MainWindow(Library(sys.argv[1]), load_model=False)
        window.show()
        def shown():
            print(",".join(m for m in {HIDDEN_AT_START!r} if m in sys.modules) or "-")
            print(window.tabs.count(), window.working is not None)
            app.quit()
        QTimer.singleShot(0, shown)
        app.exec()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(library_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported, shown = result.stdout.split("\n")[:2]
    assert imported == "-"
    assert shown == f"{len(TITLES)} True"  # the window was up, on a prompt
