"""QApplication set-up, the main window and its wiring, shutdown."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench import __version__
from workbench.core.library import Library, LibraryError, default_library_dir, seed_library
from workbench.core.models import Prompt
from workbench.core.resources import resource_path
from workbench.core.templates import TemplateError, prompt_variables, render_preview, resolve_values
from workbench.ui.models import PromptListModel

APP_NAME = "Prompt Workbench"


class MainWindow(QMainWindow):
    """The main window: library sidebar and the selected prompt's preview."""

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self.setWindowTitle(f"{APP_NAME} — {library.root}")
        self.setObjectName("MainWindow")

        self.prompt_model = PromptListModel(library, self)
        self.search_box = QLineEdit(placeholderText="Search prompts (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self._apply_search)
        self.prompt_list = QListView()
        self.prompt_list.setObjectName("promptList")
        self.prompt_list.setModel(self.prompt_model)
        self.prompt_list.selectionModel().currentChanged.connect(self._show_current)

        self.empty_banner = QWidget()
        banner_layout = QVBoxLayout(self.empty_banner)
        banner_layout.addWidget(QLabel("Your library is empty."))
        self.seed_button = QPushButton("Load the sample library")
        self.seed_button.clicked.connect(self.load_sample_library)
        banner_layout.addWidget(self.seed_button)

        sidebar = QWidget()
        side_layout = QVBoxLayout(sidebar)
        side_layout.setContentsMargins(6, 6, 6, 6)
        side_layout.addWidget(self.search_box)
        side_layout.addWidget(self.empty_banner)
        side_layout.addWidget(self.prompt_list)

        self.title = QLabel()
        self.title.setObjectName("promptTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview = QPlainTextEdit(readOnly=True)
        self.preview.setObjectName("preview")
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.addWidget(self.title)
        detail_layout.addWidget(self.preview)

        splitter = QSplitter()
        splitter.addWidget(sidebar)
        splitter.addWidget(detail)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([280, 820])
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.setCentralWidget(central)

        find = QAction("Find", self, shortcut=QKeySequence.StandardKey.Find)
        find.triggered.connect(lambda: self.search_box.setFocus())
        self.addAction(find)
        self._build_menus()
        self._refresh_banner()
        self._report_problems()
        if self.prompt_model.rowCount() > 0:
            self.prompt_list.setCurrentIndex(self.prompt_model.index(0))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        seed = QAction("Load the sample library", self)
        seed.triggered.connect(self.load_sample_library)
        file_menu.addAction(seed)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About", self)
        about.triggered.connect(
            lambda: QMessageBox.about(self, APP_NAME, f"{APP_NAME} {__version__}")
        )
        help_menu.addAction(about)

    def _report_problems(self) -> None:
        if self.library.problems:
            count = len(self.library.problems)
            self.statusBar().showMessage(
                f"{count} library file(s) could not be read and were skipped: "
                f"{self.library.problems[0]}"
            )

    def _refresh_banner(self) -> None:
        self.empty_banner.setVisible(self.library.is_empty())

    def _apply_search(self, text: str) -> None:
        self.prompt_model.set_filter(text)

    def selected_prompt(self) -> Prompt | None:
        index = self.prompt_list.currentIndex()
        summary = self.prompt_model.prompt_at(index.row()) if index.isValid() else None
        if summary is None:
            return None
        try:
            return self.library.get_prompt(summary.id)
        except LibraryError as exc:
            self.statusBar().showMessage(str(exc))
            return None

    def _show_current(self) -> None:
        prompt = self.selected_prompt()
        if prompt is None:
            self.title.clear()
            self.preview.clear()
            return
        self.title.setText(f"<b>{prompt.name}</b> &nbsp; v{prompt.version}")
        self.preview.setPlainText(preview_text(prompt))

    def load_sample_library(self) -> None:
        try:
            added = seed_library(self.library, resource_path("sample_library"))
        except (LibraryError, OSError) as exc:
            QMessageBox.warning(self, APP_NAME, f"Could not load the sample library:\n{exc}")
            return
        self.prompt_model.reload()
        self._refresh_banner()
        self.statusBar().showMessage(
            f"Added {len(added)} sample item(s)" if added else "The samples are already here"
        )
        if self.prompt_model.rowCount() > 0 and not self.prompt_list.currentIndex().isValid():
            self.prompt_list.setCurrentIndex(self.prompt_model.index(0))

    def closeEvent(self, event: QCloseEvent) -> None:
        settings = QSettings()
        settings.setValue("main/geometry", self.saveGeometry())
        settings.setValue("main/state", self.saveState())
        super().closeEvent(event)

    def restore_layout(self) -> None:
        settings = QSettings()
        geometry = settings.value("main/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 720)
        state = settings.value("main/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)


def preview_text(prompt: Prompt) -> str:
    """What the model will see, with variables left as {{ name }} where no default exists."""
    try:
        names = prompt_variables(prompt)
        values = resolve_values(prompt, {})
        values = {n: values.get(n, "{{ " + n + " }}") for n in names}
        steps = render_preview(prompt, values)
    except TemplateError as exc:
        return f"Template error — {exc}"
    out: list[str] = []
    for step in steps:
        if step.name:
            out.append(f"=== step: {step.name} ===")
        for message in step.messages:
            out.append(f"[{message.role}]\n{message.content}\n")
    return "\n".join(out)


def create_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("prompt-workbench")
    app.setOrganizationName("prompt-workbench")
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    try:
        app.setWindowIcon(QIcon(str(resource_path("icons", "app.svg"))))
    except FileNotFoundError:
        pass
    return app


def run_app(library_dir: Path | None = None) -> int:
    app = create_application()
    try:
        library = Library(library_dir or default_library_dir())
    except LibraryError as exc:
        QMessageBox.critical(None, APP_NAME, str(exc))
        return 2
    window = MainWindow(library)
    window.restore_layout()
    window.show()
    try:
        return int(app.exec())
    finally:
        library.close()
