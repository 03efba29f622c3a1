"""The app's start: the window's frame is on screen before the library is opened and
the panels are built into it (`start_window`), through the command line as a user
starts it; a library that cannot be opened is said, and the app ends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel, QMessageBox

from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path
from workbench.ui.app import LAST_PROMPT_KEY, MainWindow, start_window

HEAVY = ("pydantic", "jinja2", "numpy", "torch", "transformers", "workbench.ui.editor")


def _seeded(folder: Path) -> Library:
    library = Library(folder)
    seed_library(library, resource_path("sample_library"))
    return library


def _run_python(code: str, library: Path) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter, as the app starts: the library folder its argument."""
    return subprocess.run(
        [sys.executable, "-c", code, str(library)], capture_output=True, text=True, timeout=120
    )


def _started(qtbot, folder: Path) -> MainWindow:
    window = start_window(folder, load_model=False)
    qtbot.addWidget(window)
    return window


def test_the_frame_is_shown_first_and_the_library_opens_into_it(
    qtbot, themed, library_dir: Path
) -> None:
    library = _seeded(library_dir)
    last = library.find_prompt("Review sentiment")
    library.close()
    QSettings().setValue(LAST_PROMPT_KEY, last.id)
    window = _started(qtbot, library_dir)
    try:
        # at once: the frame, its menus and tabs, a word on what is coming
        assert window.isVisible() and not window.is_open
        opening = window.library_dock.widget()
        assert isinstance(opening, QLabel) and opening.text() == "Opening the library…"
        assert window.tabs.count() == 7 and window.tabs.tabText(0) == "Prompt"
        assert not window.save_action.isEnabled() and not window.run_action.isEnabled()
        assert window.guide_action.isEnabled()
        geometry = window.geometry()
        docks = [window.library_dock.width(), window.run_dock.width()]
        with qtbot.waitSignal(window.opened, timeout=10_000):
            pass
        # then the library, in the same window: nothing moved
        assert window.is_open
        assert window.library_dock.widget() is window.library_panel
        assert window.run_dock.widget() is window.run_panel
        assert window.tabs.widget(0) is window.editor and window.tabs.currentIndex() == 0
        assert window.library_panel.current_id() == last.id
        assert window.working is not None and window.working.id == last.id
        assert window.editor.isVisible()
        assert window.save_action.isEnabled() and window.run_action.isEnabled()
        qtbot.wait(20)
        assert window.geometry() == geometry
        # the docks keep the widths their placeholders had, to a pixel or two
        widths = [window.library_dock.width(), window.run_dock.width()]
        assert all(abs(a - b) <= 2 for a, b in zip(widths, docks, strict=True)), (docks, widths)
    finally:
        window.errors.uninstall()


def test_a_narrow_window_the_user_left_is_not_widened_as_the_panels_come_in(
    qtbot, themed, library_dir: Path
) -> None:
    library = _seeded(library_dir)
    before = MainWindow(library, load_model=False)
    qtbot.addWidget(before)
    before.show()
    before.resize(1152, 760)  # narrower than the first start's 1400
    qtbot.waitUntil(lambda: before.width() == 1152)
    before.close()  # saves the window's geometry and the docks' places
    window = _started(qtbot, library_dir)
    try:
        assert window.width() == 1152
        with qtbot.waitSignal(window.opened, timeout=10_000):
            pass
        qtbot.wait(20)
        assert window.width() == 1152
    finally:
        window.errors.uninstall()


def test_a_window_built_whole_gives_its_docks_the_panels_widths(
    qtbot, themed, library_dir: Path
) -> None:
    """`MainWindow(library)` (the tests', the screenshots' and the smoke test's way)
    opens the library before the window is shown: the docks take the panels' sizes,
    not the placeholders' widths of a frame that was never on screen."""
    window = MainWindow(_seeded(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    for dock, panel in (
        (window.library_dock, window.library_panel),
        (window.run_dock, window.run_panel),
    ):
        assert abs(dock.width() - panel.sizeHint().width()) <= 2, (dock.objectName(), dock.width())


def test_a_tab_opened_while_the_library_opens_is_built_once_it_has(
    qtbot, library_dir: Path
) -> None:
    _seeded(library_dir).close()
    window = _started(qtbot, library_dir)
    try:
        window.tabs.setCurrentIndex(3)  # Test sets, clicked before the library is open
        assert window.tabs.widget(3).objectName() == "test_setsUnbuilt"
        with qtbot.waitSignal(window.opened, timeout=10_000):
            pass
        assert window.tabs.currentIndex() == 3
        assert window.tabs.currentWidget() is window.test_sets
        assert window.test_sets.isVisible() and window.test_sets.isEnabled()
    finally:
        window.errors.uninstall()


def test_a_library_that_cannot_be_opened_is_said_and_the_window_closes(
    qtbot, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "library"
    not_a_folder.write_text("a file where the library should be", encoding="utf-8")
    window = _started(qtbot, not_a_folder)
    try:
        qtbot.waitUntil(lambda: window.open_error_box is not None, timeout=10_000)
        box = window.open_error_box
        assert box is not None and box.isVisible()
        assert box.icon() == QMessageBox.Icon.Critical
        assert f"{not_a_folder} is not a folder" in box.text()
        assert window.open_failed and not window.is_open
        assert not window.save_action.isEnabled()
        box.accept()
        qtbot.waitUntil(lambda: not window.isVisible())
        # nothing was written where the library should have been
        assert not_a_folder.read_text(encoding="utf-8") == "a file where the library should be"
    finally:
        window.errors.uninstall()


def test_the_command_line_shows_the_window_before_loading_the_schema(library_dir: Path) -> None:
    """`workbench --library DIR gui` as a user runs it: when the frame is on screen none
    of pydantic, jinja2, numpy, torch and the panels' modules are loaded, and it is
    painted laid out with the app's stylesheet (set as the window is shown), as it is
    once the library has opened; the library is listed once it opens."""
    library = _seeded(library_dir)
    prompts = len(library.prompts)
    library.close()
    code = textwrap.dedent(
        f"""
        import os, sys
        import workbench.ui.app as app_module
        from workbench.cli import main
        start = app_module.start_window
        def laid_out(window):  # as painted: the docks' title bars, the tabs
            bar = window.tabs.tabBar()
            tabs = [bar.tabRect(i).getRect() for i in range(bar.count())]
            return window.library_dock.widget().y(), window.run_dock.widget().y(), tabs
        def start_window(library_dir=None, load_model=True):
            window = start(library_dir, load_model=False)
            print("shown", window.isVisible(), window.is_open,
                  ",".join(m for m in {HEAVY!r} if m in sys.modules) or "-", flush=True)
            frame = laid_out(window)
            def opened():
                listed = window.library_panel.list.model().rowCount()
                print("opened", listed, window.working is not None, flush=True)
                print("same layout", frame == laid_out(window), flush=True)
                os._exit(0)
            window.opened.connect(opened)
            return window
        app_module.start_window = start_window
        sys.exit(main(["--library", sys.argv[1], "gui"]))
        """
    )
    result = _run_python(code, library_dir)
    lines = result.stdout.splitlines()
    assert lines == [
        "shown True False -",
        f"opened {prompts} True",
        "same layout True",
    ], result.stderr[-2000:]


def test_a_frame_closed_before_the_library_opens_opens_nothing(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "library"
    window = _started(qtbot, folder)
    try:
        window.close()  # closed at once, before the event loop turned
        qtbot.wait(50)
        assert not window.is_open and not window.open_failed
        assert not folder.exists()  # the library was never opened, nothing was written
    finally:
        window.errors.uninstall()


def test_panels_that_fail_to_build_are_said_and_the_window_closes(
    qtbot, library_dir: Path, monkeypatch
) -> None:
    import workbench.ui.run as run_module

    _seeded(library_dir).close()

    def broken(*_args, **_kwargs):
        raise RuntimeError("the Run panel broke")

    monkeypatch.setattr(run_module, "RunPanel", broken)
    closed: list[Path] = []
    close = Library.close
    monkeypatch.setattr(Library, "close", lambda self: (closed.append(self.root), close(self)))
    window = _started(qtbot, library_dir)
    try:
        qtbot.waitUntil(lambda: window.open_error_box is not None, timeout=10_000)
        box = window.open_error_box
        assert box is not None and box.icon() == QMessageBox.Icon.Critical
        assert "could not be opened: RuntimeError: the Run panel broke" in box.text()
        assert window.open_failed and not window.is_open
        assert not window.save_action.isEnabled() and not window.run_action.isEnabled()
        box.accept()
        qtbot.waitUntil(lambda: not window.isVisible())
        # what was built before the failure was closed with the window
        assert closed == [library_dir]
    finally:
        window.errors.uninstall()


def test_the_app_ends_with_status_2_when_its_library_cannot_be_opened(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "library"
    not_a_folder.write_text("a file", encoding="utf-8")
    code = textwrap.dedent(
        """
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QMessageBox
        from workbench.cli import main
        def open_(box):  # the user reads the box and presses OK
            print("said:", box.text(), flush=True)
            QTimer.singleShot(0, box.accept)
        QMessageBox.open = open_
        sys.exit(main(["--library", sys.argv[1], "gui"]))
        """
    )
    result = _run_python(code, not_a_folder)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"said: {not_a_folder} is not a folder" in result.stdout
