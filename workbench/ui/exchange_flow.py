"""File → Import… and File → Export… for the main window: the import is read and
planned in a job (with progress and Stop), then previewed; problems are listed in a
message box; the export dialog writes in a job of its own. Nothing runs on the GUI thread
but the dialogs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from workbench.core.fsutil import Cancelled
from workbench.core.library import Library, LibraryError
from workbench.ui.errors import ErrorReporter
from workbench.ui.jobs import Job, JobRunner

log = logging.getLogger(__name__)


class ExchangeFlow(QObject):
    """Import and export for one window; `message` for its status bar, `imported` with
    the ImportResult once an import is written."""

    message = Signal(str)
    imported = Signal(object)

    def __init__(
        self,
        window: QWidget,
        library: Library,
        jobs: JobRunner,
        errors: ErrorReporter,
        current_id: Callable[[], str | None],
        before: Callable[[], None],
    ) -> None:
        super().__init__(window)
        self.window = window
        self.library = library
        self.jobs = jobs
        self.errors = errors
        self.current_id = current_id
        self.before = before  # the window's autosave: files read the saved draft
        self.job: Job | None = None  # an import being read, if any
        self.import_dialog: Any = None  # the open import preview, if any
        self.import_problems_box: QMessageBox | None = None
        self.export_dialog: Any = None

    def import_file(self, path: Path | None = None, format_name: str | None = None) -> Job | None:
        """Read a file (or folder) and plan its import on the worker, with Stop; then show
        the plan. Nothing is written before the user presses Import in the preview."""
        from workbench.core import exchange
        from workbench.ui.exchange import file_filter
        from workbench.ui.progress import JobProgress

        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self.window, "Import", "", file_filter(True))
            if not chosen:
                return None
            path = Path(chosen)
        if self.job is not None:
            self.message.emit("An import is being read; wait for it or stop it")
            return None
        self.before()
        try:
            name = format_name or exchange.guess_format(path)
        except ValueError as exc:
            self._show_import_problems(path, [str(exc)])
            return None
        library, source = self.library, path
        progress = JobProgress(f"Reading {path.name}…", self.window)

        def work(cancel: Any) -> Any:
            package = exchange.read_package(source, name, cancel)
            if cancel.is_set():
                raise Cancelled("the import was stopped; nothing was imported")
            yield "planning"
            yield exchange.plan_import(library, package, str(source))

        def events(batch: list[Any]) -> None:
            if "planning" in batch:
                progress.setLabelText(f"Comparing {source.name} with the library…")

        def ended() -> None:
            self.job = None
            progress.finish()

        def done(plan: Any) -> None:
            ended()
            if isinstance(plan, exchange.ImportPlan):
                self._show_import_preview(plan, name)

        def failed(exc: BaseException, trace: str) -> None:
            ended()
            if isinstance(exc, Cancelled):
                self.message.emit(str(exc))
            elif isinstance(exc, exchange.ImportFailed):
                self._show_import_problems(source, [str(p) for p in exc.problems])
            elif isinstance(exc, ValueError | OSError | LibraryError):
                self._show_import_problems(source, [str(exc)])
            else:  # a bug in a reader: the error dialog, with its traceback
                self.errors.job_failed(f"import {source.name}", exc, trace)

        def cancelled() -> None:
            ended()
            self.message.emit("The import was stopped; nothing was imported")

        job = self.jobs.run(f"read {path.name}", work, events, done, failed, cancelled)
        self.job = job
        progress.follow(job)
        return job

    def _show_import_preview(self, plan: Any, format_name: str) -> None:
        from workbench.ui.exchange import ImportPreviewDialog

        dialog = ImportPreviewDialog(plan, format_name, self.jobs, self.window)
        dialog.imported.connect(self._imported)
        # the plan may hold a big bundle's bytes: let go of it once the dialog closes
        dialog.finished.connect(dialog.deleteLater)
        dialog.finished.connect(lambda _result: setattr(self, "import_dialog", None))
        self.import_dialog = dialog
        dialog.open()

    def _show_import_problems(self, path: Path, problems: list[str]) -> None:
        box = QMessageBox(self.window)
        box.setObjectName("importProblems")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Cannot import")
        shown = "\n".join(f"• {p}" for p in problems[:8])
        more = f"\n… and {len(problems) - 8} more (see details)" if len(problems) > 8 else ""
        box.setText(f"{path.name} cannot be imported; nothing was added.\n\n{shown}{more}")
        box.setDetailedText("\n".join(problems))
        self.import_problems_box = box
        box.open()

    def _imported(self, result: Any) -> None:
        log.info("imported: %s", result.summary())
        self.imported.emit(result)

    def show_export(self) -> None:
        from workbench.ui.exchange import ExportDialog

        self.before()
        current = self.current_id()
        self.export_dialog = ExportDialog(self.library, current, self.jobs, self.window)
        self.export_dialog.exported.connect(
            lambda report: self.message.emit(
                "Exported to "
                + ", ".join(str(p) for p in report.paths[:3])
                + (f" and {len(report.paths) - 3} more" if len(report.paths) > 3 else "")
            )
        )
        self.export_dialog.open()
