"""QApplication set-up, the main window and its wiring, autosave and shutdown.

The main window owns the *working copy* of the selected prompt (published to the panels
through a `PromptSelection`) and the `ModelSession`. Every panel emits field updates;
the window validates them into a new working copy, refreshes the preview and autosaves
it as a draft (debounced, atomic). Ctrl+S turns the draft into a new version in the
library's history. Unhandled exceptions and failed jobs are shown by `errors`.

The app starts in two steps (`start_window`): the window's frame (menus, tabs, docks)
is shown first, then the library is opened and the panels are built into it on the
next turn of the event loop (`open_library`). So this module imports neither pydantic
nor jinja2 nor the panels at its top: the frame needs none of them, and they are
imported where the library is opened (tests/ui/test_start.py keeps it so).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench import __version__
from workbench.core.flows.report import count, join_counts
from workbench.core.resources import ResourceNotFoundError, resource_path, resources_dir
from workbench.ui.errors import ErrorReporter
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.theme import apply_theme, follow_system, pause_first_window_wait

if TYPE_CHECKING:  # imported where the library is opened (see the module's docstring)
    from workbench.core.backends.base import Backend
    from workbench.core.library import Library
    from workbench.core.models import EvalRun, GenerationParams, Prompt
    from workbench.ui.cot import CoTPanel
    from workbench.ui.editor import PromptEditor
    from workbench.ui.evaluate import EvaluatePanel
    from workbench.ui.exchange_flow import ExchangeFlow
    from workbench.ui.fewshot import FewShotPanel
    from workbench.ui.graduate import GraduatePanel
    from workbench.ui.library_panel import LibraryPanel
    from workbench.ui.methods import MethodsPanel
    from workbench.ui.optimise import OptimiseDialog
    from workbench.ui.run import RunPanel
    from workbench.ui.session import ModelSession, PromptSelection
    from workbench.ui.testsets import TestSetPanel

log = logging.getLogger(__name__)

APP_NAME = "Prompt Workbench"
DESKTOP_ID = "io.github.promptworkbench.PromptWorkbench"
LAST_PROMPT_KEY = "main/lastPrompt"
TABS_MIN_WIDTH = 600  # at least every tab's panel's minimum width (the Graduate tab's)
# the docks' widths and least widths before their panels are built, in the font's
# average characters: about what the Library and Run panels ask for (checked by
# tests/ui/test_start.py)
LIBRARY_DOCK_CHARS = (47, 47)
RUN_DOCK_CHARS = (63, 43)
AUTOSAVE_MS = 700  # a crash loses at most this much typing (plus the write itself)


def user_guide_page() -> Path | None:
    """The guide's contents page (docs/README.md) beside the runtime resources (a source
    checkout, a bundle that carries docs/), or None when this installation has none."""
    try:
        roots = [resources_dir().parent]
    except ResourceNotFoundError:
        roots = []
    roots.append(Path(__file__).resolve().parent.parent.parent)  # the source checkout
    for root in roots:
        page = root / "docs" / "README.md"
        if page.is_file() and (root / "docs" / "guide").is_dir():
            return page
    return None


class _Opening(QLabel):
    """What a dock shows until the library is open: a word, with about the width and
    the least width its panel will have (in average characters of the font), so the
    window neither jumps nor widens itself as the panels come in."""

    def __init__(self, text: str, chars: tuple[int, int]) -> None:
        super().__init__(text)
        self.setObjectName("dockOpening")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.chars = chars

    def _width(self, chars: int) -> int:
        return self.fontMetrics().averageCharWidth() * chars

    def sizeHint(self) -> QSize:
        return QSize(self._width(self.chars[0]), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self._width(self.chars[1]), super().minimumSizeHint().height())


def _action(
    text: str, parent: QMainWindow, shortcut: QKeySequence.StandardKey | QKeySequence
) -> QAction:
    """A menu action with one shortcut."""
    action = QAction(text, parent)
    action.setShortcut(QKeySequence(shortcut))
    return action


class MainWindow(QMainWindow):
    """The main window. `MainWindow(library)` builds it whole; `MainWindow()` builds
    only its frame (menus, tabs, docks: what the first paint needs) and
    `open_library` the rest, which `start_window` does once the frame is on screen."""

    # the library is open and the panels are built into the frame
    opened = Signal()

    # set by `open_library`
    library: Library
    session: ModelSession
    selection: PromptSelection
    exchange: ExchangeFlow
    library_panel: LibraryPanel
    run_panel: RunPanel
    editor: PromptEditor

    def __init__(self, library: Library | None = None, load_model: bool = True) -> None:
        super().__init__()
        resume_theme = pause_first_window_wait()  # none of the building is its business
        self.working: Prompt | None = None
        self.saved: Prompt | None = None
        self.optimise_dialog: OptimiseDialog | None = None
        self.help_box: QMessageBox | None = None
        self.shortcuts_dialog: QDialog | None = None
        self.open_error_box: QMessageBox | None = None
        self.open_failed = False  # the library could not be opened: the window closes
        self._opened = False  # `open_library` has finished
        self.setObjectName("MainWindow")
        self.setWindowTitle(APP_NAME)
        self.jobs = JobRunner(self)
        self.errors = ErrorReporter(self)
        self.jobs.job_failed.connect(self.errors.job_failed)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("editorTabs")
        # Every tab is built when first shown or first asked for (`window.evaluate` and
        # the like), the Prompt tab when the library opens: until then an empty page
        # holds its place, so start-up neither imports nor builds them (see `_panel`).
        self._pending: dict[str, tuple[QWidget, Callable[[], QWidget]]] = {}
        self._panels: dict[str, QWidget] = {}
        for name, title, build in (
            ("prompt", "Prompt", self._build_editor),
            ("few_shot", "Few-shot", self._build_few_shot),
            ("cot", "Chain of thought", self._build_cot),
            ("test_sets", "Test sets", self._build_test_sets),
            ("evaluate", "Evaluate", self._build_evaluate),
            ("graduate", "Graduate", self._build_graduate),
            ("methods", "Methods", self._build_methods),
        ):
            placeholder = QWidget()
            placeholder.setObjectName(f"{name}Unbuilt")
            self.tabs.addTab(placeholder, title)
            self._pending[name] = (placeholder, build)
        # The widest panel's minimum, held from the start: a tab built later never makes
        # the window widen itself (tests/ui/test_lazy_tabs.py checks every panel fits).
        self.tabs.setMinimumWidth(TABS_MIN_WIDTH)
        self.setCentralWidget(self.tabs)
        self.library_dock = self._dock(
            "Library",
            "libraryDock",
            _Opening("Opening the library…", LIBRARY_DOCK_CHARS),
            Qt.DockWidgetArea.LeftDockWidgetArea,
        )
        self.run_dock = self._dock(
            "Run", "runDock", _Opening("", RUN_DOCK_CHARS), Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self._build_actions()
        if library is not None:
            self.open_library(library, load_model)
        resume_theme()

    @property
    def is_open(self) -> bool:
        """Whether the library is open and the panels over it are built."""
        return self._opened

    def open_library(self, library: Library, load_model: bool = True) -> None:
        """Build the panels over `library` into the frame: the Library and Run docks,
        the Prompt tab; select the prompt used last; load the model (on the worker)."""
        from workbench.ui.exchange_flow import ExchangeFlow
        from workbench.ui.library_panel import LibraryPanel
        from workbench.ui.run import RunPanel
        from workbench.ui.session import ModelSession, PromptSelection

        if hasattr(self, "library"):
            raise RuntimeError("the window has its library already")
        resume_theme = pause_first_window_wait()
        self.library = library
        self.session = ModelSession(self.jobs, parent=self)
        self.selection = PromptSelection(self)
        self.exchange = ExchangeFlow(
            self,
            library,
            self.jobs,
            self.errors,
            lambda: self.working.id if self.working is not None else None,
            self.autosave,
        )
        self.exchange.message.connect(self.statusBar().showMessage)
        self.exchange.imported.connect(self._imported)

        self.library_panel = LibraryPanel(library)
        self.run_panel = RunPanel(
            library, self.jobs, self.session, self.selection, self._params_edited
        )
        self.editor = cast("PromptEditor", self._panel("prompt"))
        self.tabs.currentChanged.connect(self._tab_shown)
        self._tab_shown(self.tabs.currentIndex())  # one the user opened meanwhile
        # in a frame on screen the panels take the places their docks had (the user's,
        # restored), not sizes of their own: nothing moves as the window fills (a window
        # not shown yet has no places: its docks take the panels' sizes when shown)
        docks = [self.library_dock, self.run_dock]
        widths = [dock.width() for dock in docks]
        for dock, panel in zip(docks, (self.library_panel, self.run_panel), strict=True):
            opening = dock.widget()
            dock.setWidget(panel)
            opening.deleteLater()
        if self.isVisible():
            self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)

        self.library_panel.prompt_selected.connect(self.select_prompt)
        self.library_panel.version_restored.connect(self._reload_current)
        self.library_panel.message.connect(self.statusBar().showMessage)
        self.library_panel.seed_button.clicked.connect(self.load_sample_library)
        self.session.backend_changed.connect(self._model_ready)
        for action in self._needs_library:
            action.setEnabled(True)

        self._report_problems()
        last = QSettings().value(LAST_PROMPT_KEY)
        if isinstance(last, str) and last in self.library.prompts:
            self.library_panel.select(last)  # the prompt used last; else the first one
        self.select_prompt(self.library_panel.current_id())
        if load_model:
            # after the window exists: the model loads on the worker thread
            QTimer.singleShot(0, self.session.load_selected)
        resume_theme()
        self._opened = True
        self.opened.emit()

    def open_folder(self, folder: Path | None = None, load_model: bool = True) -> bool:
        """Open the library in `folder` (the user's default one when None) into the
        frame. A library that cannot be opened, or panels that fail to build over it,
        are said in a box; the window closes with it and `open_failed` is set (the app
        then ends with status 2) rather than staying half-built."""
        from workbench.core.library import Library, LibraryError, default_library_dir

        try:
            library = Library(folder or default_library_dir())
        except LibraryError as exc:
            log.error("cannot open the library: %s", exc)
            self._failed_to_open(str(exc))
            return False
        try:
            self.open_library(library, load_model)
        except Exception as exc:  # whatever it was, the window must not stay half-built
            log.exception("the window could not be built over the library %s", library.root)
            self._failed_to_open(
                f"The library in {library.root} could not be opened: {type(exc).__name__}: "
                f"{exc}\n\nThe log file has the details."
            )
            return False
        log.info("%s %s opened %s", APP_NAME, __version__, library.root)
        return True

    def _failed_to_open(self, text: str) -> None:
        self.open_failed = True
        for action in self._needs_library:  # also those a part-way open enabled
            action.setEnabled(False)
        self.statusBar().showMessage("The library could not be opened")
        box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, text, parent=self)
        box.finished.connect(lambda _result: self.close())
        self.open_error_box = box
        box.open()

    # -- the tabs built on first use -------------------------------------------------

    @property
    def few_shot(self) -> FewShotPanel:
        return cast("FewShotPanel", self._panel("few_shot"))

    @property
    def cot(self) -> CoTPanel:
        return cast("CoTPanel", self._panel("cot"))

    @property
    def test_sets(self) -> TestSetPanel:
        return cast("TestSetPanel", self._panel("test_sets"))

    @property
    def evaluate(self) -> EvaluatePanel:
        return cast("EvaluatePanel", self._panel("evaluate"))

    @property
    def graduate(self) -> GraduatePanel:
        return cast("GraduatePanel", self._panel("graduate"))

    @property
    def methods(self) -> MethodsPanel:
        return cast("MethodsPanel", self._panel("methods"))

    def _panel(self, name: str) -> QWidget:
        """The tab's panel, built now if it has not been: it takes its empty page's
        place in the tab bar (same index, same title; the tab in view stays in view)."""
        panel = self._panels.get(name)
        if panel is not None:
            return panel
        placeholder, build = self._pending[name]
        panel = build()  # should it fail, the empty page stays and the next use tries again
        del self._pending[name]
        self._panels[name] = panel
        index = self.tabs.indexOf(placeholder)
        blocked = self.tabs.blockSignals(True)  # the same tab stays current: nothing to say
        try:
            showing = self.tabs.currentIndex() == index
            # inserted before its page, so the page in view is never removed
            self.tabs.insertTab(index, panel, self.tabs.tabText(index))
            if showing:
                self.tabs.setCurrentIndex(index)
            self.tabs.removeTab(index + 1)
        finally:
            self.tabs.blockSignals(blocked)
        placeholder.deleteLater()
        return panel

    def _tab_shown(self, index: int) -> None:
        page = self.tabs.widget(index)
        for name, (placeholder, _build) in list(self._pending.items()):
            if placeholder is page:
                self._panel(name)

    def _build_all_tabs(self) -> None:
        for name in list(self._pending):
            self._panel(name)

    def _build_editor(self) -> QWidget:
        from workbench.ui.editor import PromptEditor

        editor = PromptEditor(self.jobs)
        editor.edited.connect(self.apply_update)
        editor.graduate_requested.connect(lambda: self.tabs.setCurrentWidget(self.graduate))
        return editor

    def _build_few_shot(self) -> QWidget:
        from workbench.ui.fewshot import FewShotPanel

        panel = FewShotPanel()
        panel.changed.connect(lambda block: self.apply_update({"few_shot": block}))
        panel.optimise_requested.connect(self.open_optimise)
        self._show_prompt_in("few_shot", panel)
        return panel

    def _build_cot(self) -> QWidget:
        from workbench.ui.cot import CoTPanel

        panel = CoTPanel()
        panel.changed.connect(lambda block: self.apply_update({"cot": block}))
        self._show_prompt_in("cot", panel)
        return panel

    def _build_test_sets(self) -> QWidget:
        from workbench.ui.testsets import TestSetPanel

        panel = TestSetPanel(self.library)
        panel.test_set_changed.connect(self._test_set_changed)
        self._show_prompt_in("test_sets", panel)
        return panel

    def _build_evaluate(self) -> QWidget:
        from workbench.ui.evaluate import EvaluatePanel

        return EvaluatePanel(self.library, self.jobs, self.session, self.selection)

    def _build_graduate(self) -> QWidget:
        from workbench.ui.graduate import GraduatePanel

        panel = GraduatePanel(self.library, self.jobs, self.session, self.selection)
        # offered in the Run panel's list, never picked for the next run
        panel.soft_prompt_saved.connect(self.run_panel.soft_prompt_added)
        panel.adapter_saved.connect(self.run_panel.soft_prompt_added)
        return panel

    def _build_methods(self) -> QWidget:
        from workbench.ui.methods import MethodsPanel

        panel = MethodsPanel(self.library, self.jobs, self.session, self.selection)
        panel.message.connect(self.statusBar().showMessage)
        panel.run_saved.connect(self._run_saved_elsewhere)
        return panel

    def _built(self, name: str) -> Any:
        """The tab's panel if it has been built (one not built yet reads the library and
        the selection when it is)."""
        return self._panels.get(name)

    def _test_set_changed(self, _test_set: object) -> None:
        evaluate = self._built("evaluate")
        if evaluate is not None:
            evaluate.refresh_test_sets()

    def _run_saved_elsewhere(self, run: EvalRun) -> None:
        evaluate = self._built("evaluate")
        if evaluate is not None:  # listed in Evaluate too
            evaluate.run_added(run)

    def _dock(self, title: str, name: str, widget: Any, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        # closable: without it Qt greys out the View menu's toggle of the dock
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.save_action = _action("Save version", self, QKeySequence.StandardKey.Save)
        self.save_action.triggered.connect(self.save_version)
        new = _action("New prompt", self, QKeySequence.StandardKey.New)
        new.triggered.connect(lambda: self.library_panel.new_prompt())
        seed = QAction("Load the sample library", self)
        seed.triggered.connect(self.load_sample_library)
        self.import_action = _action("Import…", self, QKeySequence("Ctrl+I"))
        self.import_action.triggered.connect(lambda: self.import_file())
        self.export_action = _action("Export…", self, QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.show_export)
        quit_action = _action("Quit", self, QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (new, self.save_action, seed):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = _action("Run", self, QKeySequence("Ctrl+Return"))
        self.run_action.triggered.connect(lambda: self.run_panel.run())
        self.stop_action = _action("Stop", self, QKeySequence(Qt.Key.Key_Escape))
        self.stop_action.triggered.connect(lambda: self.run_panel.stop())
        find = _action("Find prompt", self, QKeySequence.StandardKey.Find)
        find.triggered.connect(self._focus_search)
        for action in (self.run_action, self.stop_action):
            run_menu.addAction(action)
        self.addAction(find)
        for action in (self.run_action, self.stop_action, self.save_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        view = self.menuBar().addMenu("&View")
        for dock in (self.library_dock, self.run_dock):
            toggle = dock.toggleViewAction()
            toggle.setToolTip(f"Show or hide the {dock.windowTitle()} panel")
            view.addAction(toggle)
        help_menu = self.menuBar().addMenu("&Help")
        self.guide_action = _action("User guide", self, QKeySequence.StandardKey.HelpContents)
        self.guide_action.triggered.connect(self.open_user_guide)
        self.shortcuts_action = QAction("Keyboard shortcuts", self)
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        about = QAction("About", self)
        about.triggered.connect(
            lambda: QMessageBox.about(self, APP_NAME, f"{APP_NAME} {__version__}")
        )
        for action in (self.guide_action, self.shortcuts_action):
            help_menu.addAction(action)
        help_menu.addSeparator()
        help_menu.addAction(about)
        # what works on the library or its panels waits for `open_library`
        self._needs_library = [
            new,
            self.save_action,
            seed,
            self.import_action,
            self.export_action,
            self.run_action,
            self.stop_action,
            find,
            self.shortcuts_action,
        ]
        for action in self._needs_library:
            action.setEnabled(False)

    # -- help ----------------------------------------------------------------------------

    def open_user_guide(self) -> bool:
        """Help → User guide: the guide's contents page in the system's viewer."""
        page = user_guide_page()
        if page is None:
            self._tell(
                "The user guide is not part of this installation. It is the docs folder "
                "of Prompt Workbench's source (docs/README.md and docs/guide/)."
            )
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(page))):
            self._tell(f"No program could open the user guide. It is here:\n{page}")
            return False
        self.statusBar().showMessage(f"Opened the user guide: {page}")
        return True

    def _tell(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, APP_NAME, text, parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.help_box = box
        box.open()

    def shortcuts(self) -> list[tuple[str, str, str]]:
        """(what, keys, where) for every action of the window and its panels that has
        a shortcut, read from the actions themselves (every tab is built first)."""
        self._build_all_tabs()
        found: list[tuple[str, str, str]] = []
        for action in self.findChildren(QAction):
            keys = [k for k in action.shortcuts() if not k.isEmpty()]
            if not keys:
                continue
            text = re.sub("&(.)", r"\1", action.text())  # "&File" → "File", "&&" → "&"
            shown = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
            found.append((text.rstrip("…"), shown, self._where(action)))
        return sorted(found, key=lambda row: (row[2] != "Everywhere", row[2], row[0]))

    def _where(self, action: QAction) -> str:
        if action.shortcutContext() in (
            Qt.ShortcutContext.WindowShortcut,
            Qt.ShortcutContext.ApplicationShortcut,
        ):
            return "Everywhere"
        widget = action.parent()
        while isinstance(widget, QWidget) and widget is not self:
            index = self.tabs.indexOf(widget)
            if index >= 0:
                return f"{self.tabs.tabText(index)} tab"
            if isinstance(widget, QDockWidget):
                return f"{widget.windowTitle()} panel"
            widget = widget.parentWidget()
        return "Everywhere"

    def show_shortcuts(self) -> QDialog:
        """Help → Keyboard shortcuts: every shortcut the window defines."""
        dialog = QDialog(self)
        dialog.setObjectName("shortcutsDialog")
        dialog.setWindowTitle("Keyboard shortcuts")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        rows = self.shortcuts()
        table = QTableWidget(len(rows), 3, dialog)
        table.setObjectName("shortcutsTable")
        table.setHorizontalHeaderLabels(["Action", "Keys", "Where"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                table.setItem(row, column, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        layout.addWidget(buttons)
        dialog.resize(520, 360)
        self.shortcuts_dialog = dialog
        dialog.open()
        return dialog

    def _focus_search(self) -> None:
        self.library_dock.show()
        self.library_panel.search.setFocus()
        self.library_panel.search.selectAll()

    def _report_problems(self) -> None:
        if self.library.problems:
            files = count(len(self.library.problems), "library file")
            verb = "was" if len(self.library.problems) == 1 else "were"
            self.statusBar().showMessage(
                f"{files} could not be read and {verb} skipped: {self.library.problems[0]}"
            )

    # -- the working copy ------------------------------------------------------

    def select_prompt(self, prompt_id: str | None) -> None:
        from workbench.core.library import LibraryError

        if self.working is not None and prompt_id == self.working.id:
            return
        self.autosave()  # never lose the previous prompt's last edits
        if prompt_id is None:
            self.working = self.saved = None
        else:
            try:
                self.saved = self.library.get_prompt(prompt_id)
            except LibraryError as exc:
                self.statusBar().showMessage(str(exc))
                self.working = self.saved = None
            else:
                self.working = self.library.draft(prompt_id) or self.saved
                QSettings().setValue(LAST_PROMPT_KEY, prompt_id)  # the next start opens it
        self._show_working()

    def _reload_current(self, prompt_id: str) -> None:
        self.working = None
        self.select_prompt(prompt_id)

    def _show_working(self) -> None:
        self.editor.set_prompt(self.working)
        for name in ("few_shot", "cot", "test_sets"):
            panel = self._built(name)
            if panel is not None:
                self._show_prompt_in(name, panel)
        self.selection.select(self.working)  # run, evaluate and graduate follow
        self._update_title()

    def _show_prompt_in(self, name: str, panel: Any) -> None:
        """The working copy in a panel that is not given the selection (Few-shot, Chain
        of thought, Test sets): told by hand, and disabled without a prompt."""
        prompt = self.working
        if prompt is not None or name == "test_sets":  # it shows "no prompt" too
            panel.set_prompt(prompt)
        panel.setEnabled(prompt is not None)

    def apply_update(self, update: dict[str, Any]) -> None:
        """Validate a panel's field updates into a new working copy; autosave soon."""
        from pydantic import ValidationError

        from workbench.core.models import Prompt

        if self.working is None:
            return
        data = self.working.model_dump()
        for key, value in update.items():
            data[key] = value.model_dump() if hasattr(value, "model_dump") else value
        try:
            self.working = Prompt.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            self.statusBar().showMessage(f"Not applied — {where}: {first['msg']}")
            return
        self.editor.update_prompt(self.working)
        self.selection.update(self.working)
        few_shot = self._built("few_shot")
        if few_shot is not None and "user_template" in update:
            few_shot.set_prompt(self.working)  # its columns follow the variables
        self.autosave_timer.start()
        self._update_title()

    def _params_edited(self, params: GenerationParams) -> None:
        self.apply_update({"params": params})

    def has_draft(self) -> bool:
        return (
            self.working is not None
            and self.saved is not None
            and not self.working.content_equal(self.saved)
        )

    def autosave(self) -> None:
        from workbench.core.library import LibraryError

        self.autosave_timer.stop()
        if self.working is None or self.saved is None:
            return
        try:
            if self.has_draft():
                self.library.save_draft(self.working)
            else:
                self.library.discard_draft(self.working.id)
        except (LibraryError, OSError) as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc}")

    def save_version(self) -> None:
        """Ctrl+S: the working copy becomes a new version in the history."""
        from workbench.core.library import LibraryError

        if self.working is None:
            return
        self.autosave_timer.stop()
        try:
            saved = self.library.commit_draft(self.working)
        except (LibraryError, OSError) as exc:
            QMessageBox.warning(self, APP_NAME, f"Could not save:\n{exc}")
            return
        changed = self.saved is None or saved.version != self.saved.version
        self.working = self.saved = saved
        self.library_panel.refresh(select=saved.id)
        self.library_panel.refresh_history()
        self._update_title()
        self.statusBar().showMessage(
            f"Saved version {saved.version}" if changed else "No changes since the last version"
        )

    def _update_title(self) -> None:
        if self.working is None:
            self.setWindowTitle(f"{APP_NAME} — {self.library.root}")
            return
        draft = " • unsaved draft (Ctrl+S saves a version)" if self.has_draft() else ""
        self.setWindowTitle(f"{self.working.name} v{self.working.version}{draft} — {APP_NAME}")

    # -- optimise ------------------------------------------------------------------

    def open_optimise(self) -> OptimiseDialog | None:
        """Few-shot tab → Optimise…: the search on the prompt as saved (a draft is saved as
        a version first, so the winner's version follows what the user sees); Apply
        reloads the prompt everywhere."""
        if self.working is None:
            return None
        if not self.library.test_sets_for(self.working.id):
            self.few_shot.show_message(
                "Optimise needs a test set for this prompt: add one in the Test sets tab. "
                "Its rows are split into train, validation and test when the search "
                "starts; the search is scored on the validation rows only.",
                error=True,
            )
            return None
        if self.has_draft():
            self.save_version()
            if self.has_draft():  # the save failed and said why
                return None
        assert self.saved is not None
        from workbench.ui.optimise import OptimiseDialog  # its plot needs pyqtgraph

        dialog = OptimiseDialog(self.library, self.session, self.jobs, self.saved, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.applied.connect(self._optimised)
        dialog.finished.connect(self._optimise_closed)
        self.optimise_dialog = dialog
        dialog.destroyed.connect(lambda: setattr(self, "optimise_dialog", None))
        dialog.show()
        return dialog

    def _optimise_closed(self) -> None:
        """The search may have split the test set and saved a comparison: the panels
        that show them read the library again (an applied winner reloaded all of them)."""
        test_sets = self._built("test_sets")
        if self.working is not None:
            if test_sets is not None:
                test_sets.set_prompt(self.working)
            self.selection.select(self.working)

    def _optimised(self, saved: Prompt) -> None:
        self.library_panel.refresh(select=saved.id)
        self._reload_current(saved.id)
        self.library_panel.refresh_history()
        self.statusBar().showMessage(
            f"Saved the optimised prompt as version {saved.version}; the earlier one is in History"
        )

    # -- models --------------------------------------------------------------------

    def _model_ready(self, backend: Backend | None) -> None:
        if backend is None:
            self.editor.set_model_hooks(None, None)
        else:
            self.editor.set_model_hooks(
                lambda messages: backend.apply_chat_template(messages),
                backend.count_tokens,
                backend.spec.name,
            )

    # -- library ---------------------------------------------------------------------

    def load_sample_library(self) -> None:
        from workbench.core.library import LibraryError, seed_library

        before = len(self.library.prompts), len(self.library.test_sets)
        try:
            added = seed_library(self.library, resource_path("sample_library"))
        except (LibraryError, OSError) as exc:
            QMessageBox.warning(self, APP_NAME, f"Could not load the sample library:\n{exc}")
            return
        self.library_panel.refresh()
        prompts = len(self.library.prompts) - before[0]
        test_sets = len(self.library.test_sets) - before[1]
        self.statusBar().showMessage(
            f"Added {join_counts([(prompts, 'prompt'), (test_sets, 'test set')])}"
            if added
            else "The samples are already here"
        )

    # -- import and export -------------------------------------------------------------

    def import_file(self, path: Path | None = None, format_name: str | None = None) -> Job | None:
        """Read a file (or folder) and plan its import in a job; then show the plan.
        Nothing is written before the user presses Import in the preview."""
        return self.exchange.import_file(path, format_name)

    def show_export(self) -> None:
        self.exchange.show_export()

    @property
    def import_dialog(self) -> Any:
        return self.exchange.import_dialog

    @property
    def import_problems_box(self) -> QMessageBox | None:
        return self.exchange.import_problems_box

    @property
    def export_dialog(self) -> Any:
        return self.exchange.export_dialog

    def _imported(self, result: Any) -> None:
        current = self.working.id if self.working is not None else None
        if current is not None and current in result.prompt_ids:
            # the open prompt was imported over: it stays open, list and History on it
            self.library_panel.refresh(select=current)
            self._reload_current(current)
        else:
            self.library_panel.refresh(select=result.prompt_ids[0] if result.prompt_ids else None)
        self.statusBar().showMessage(f"Imported: {result.summary()}")

    # -- window state -------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.autosave()
        settings = QSettings()
        settings.setValue("main/geometry", self.saveGeometry())
        settings.setValue("main/state", self.saveState())
        self.jobs.shutdown()
        # what `open_library` got to build (all of it, unless it failed part-way)
        session: ModelSession | None = getattr(self, "session", None)
        if session is not None:
            session.close()  # panels stop using the model; it closes if the worker ended
        library: Library | None = getattr(self, "library", None)
        if library is not None:
            library.close()
        super().closeEvent(event)

    def restore_layout(self) -> None:
        settings = QSettings()
        geometry = settings.value("main/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        state = settings.value("main/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)


def create_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("prompt-workbench")
    app.setOrganizationName("prompt-workbench")
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    # Wayland matches the window to packaging/<this id>.desktop (its icon and name)
    app.setDesktopFileName(DESKTOP_ID)
    try:
        app.setWindowIcon(QIcon(str(resource_path("icons", "app.svg"))))
    except FileNotFoundError:
        pass
    # the stylesheet in resources/style, light or dark as the system is (ui/theme.py),
    # set over the first window once it is built (cheaper than styling it piece by piece)
    apply_theme(app, when_shown=True)
    follow_system(app)
    return app


def run_app(library_dir: Path | None = None, smoke_test: bool = False, debug: bool = False) -> int:
    """The desktop app until its window closes. Logging goes to the user's log file (set
    up here unless the command line did already; `debug` also to stderr), and an
    unhandled exception shows the error dialog instead of ending the app."""
    from workbench.core.logs import log_file, setup_logging

    if smoke_test:  # a packaged build's self-check (see workbench/ui/smoke.py)
        from workbench.ui.smoke import run_smoke_test

        return run_smoke_test()
    if debug or log_file() is None:
        setup_logging(debug=debug)
    app = create_application()
    window = start_window(library_dir)
    try:
        status = int(app.exec())
    finally:
        window.errors.uninstall()
    return 2 if window.open_failed else status


def start_window(library_dir: Path | None = None, load_model: bool = True) -> MainWindow:
    """The app's start: the window's frame shown and painted now, where the user left
    it; the library opened into it once the event loop runs (`MainWindow.opened` says
    when). The app's QApplication must exist."""
    window = MainWindow()
    window.errors.install()
    window.restore_layout()
    window.show()
    # the stylesheet, set as the window is shown, changes sizes (the docks' title bars,
    # the tabs): lay the frame out with it before painting it
    QApplication.sendPostedEvents()
    window.repaint()  # on screen before the library and the panels are loaded
    log.info("%s %s started", APP_NAME, __version__)

    def open_library() -> None:
        if window.isVisible():  # not closed meanwhile
            window.open_folder(library_dir, load_model)

    QTimer.singleShot(0, window, open_library)  # not if the window is gone meanwhile
    return window
