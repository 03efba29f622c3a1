"""File → Import… and File → Export…: the file filter and the export dialog (format, scope,
what the format does not carry); the import preview is `import_preview`, the progress
window with Stop `progress` (reading and writing run on the job runner: a bundle may be
2 GiB). The work itself is `workbench.core.exchange`."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMessageBox,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core import exchange
from workbench.core.exchange import ExportReport
from workbench.core.fsutil import Cancelled
from workbench.core.library import Library, LibraryError
from workbench.ui.import_preview import RESOLUTION_LABELS, ImportPlanModel, ImportPreviewDialog
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.progress import JobProgress
from workbench.ui.widgets import ERROR_STYLE

log = logging.getLogger(__name__)

__all__ = [
    "RESOLUTION_LABELS",
    "ExportDialog",
    "ImportPlanModel",
    "ImportPreviewDialog",
    "JobProgress",
    "file_filter",
]


def file_filter(importing: bool) -> str:
    """The file dialog filter: every format, then each one."""
    names = [n for n in exchange.FORMATS if not importing or exchange.can_import(n)]
    patterns = []
    for name in names:
        module = exchange.format_module(name)
        patterns.append(f"{module.LABEL} ({' '.join('*' + e for e in module.EXTENSIONS)})")
    every = " ".join(sorted({"*" + e for n in names for e in exchange.format_module(n).EXTENSIONS}))
    return ";;".join([f"All supported files ({every})", *patterns])


class ExportDialog(QDialog):
    """Choose a format and a scope; shows what the format does not carry."""

    exported = Signal(object)  # ExportReport

    def __init__(
        self,
        library: Library,
        prompt_id: str | None,
        jobs: JobRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export")
        self.library = library
        self.prompt_id = prompt_id
        self.jobs = jobs
        self.job: Job | None = None  # the export being written
        self.report: ExportReport | None = None
        self.would_overwrite: exchange.ExportWouldOverwrite | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.format = QComboBox()
        self.format.setObjectName("exportFormat")
        for format_name, module in exchange.FORMATS.items():
            self.format.addItem(module.LABEL, format_name)
        form.addRow("Format", self.format)
        scope = QWidget()
        scope_layout = QVBoxLayout(scope)
        scope_layout.setContentsMargins(0, 0, 0, 0)
        name = library.get_prompt(prompt_id).name if prompt_id else None
        self.only_selected = QRadioButton(
            f"The selected prompt: {name}" if name else "The selected prompt (none)"
        )
        self.only_selected.setObjectName("exportSelected")
        self.only_selected.setEnabled(name is not None)
        self.whole = QRadioButton(f"The whole library ({len(library.prompts)} prompts)")
        self.whole.setObjectName("exportWhole")
        group = QButtonGroup(self)
        group.addButton(self.only_selected)
        group.addButton(self.whole)
        (self.only_selected if name else self.whole).setChecked(True)
        scope_layout.addWidget(self.only_selected)
        scope_layout.addWidget(self.whole)
        form.addRow("Prompts", scope)
        layout.addLayout(form)
        self.losses = QLabel()
        self.losses.setObjectName("exportLosses")
        self.losses.setWordWrap(True)
        layout.addWidget(self.losses)
        self.message = QLabel()
        self.message.setObjectName("exportMessage")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export…", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setObjectName("exportChoose")
        buttons.accepted.connect(self._choose_target)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._show_losses)
        self.whole.toggled.connect(self._show_losses)
        self._show_losses()
        self.resize(560, 300)

    @property
    def format_name(self) -> str:
        return str(self.format.currentData())

    def selection(self) -> list[str] | None:
        if self.only_selected.isChecked() and self.prompt_id:
            return [self.prompt_id]
        return None

    def needs_folder(self) -> bool:
        module = exchange.format_module(self.format_name)
        count = 1 if self.selection() else len(self.library.prompts)
        return module.ONE_PROMPT_PER_FILE and count > 1

    def _show_losses(self) -> None:
        module = exchange.format_module(self.format_name)
        where = " One file per prompt, in a folder you choose." if self.needs_folder() else ""
        if module.LOSSLESS:  # its one "loss" reads "nothing: what it carries"
            carried = "; ".join(
                loss.removeprefix("nothing:").strip() for loss in module.EXPORT_LOSSES
            )
            self.losses.setText(f"Carries everything: {html.escape(carried)}.{where}")
            return
        self.losses.setText(
            "Not carried over:<ul>"
            + "".join(f"<li>{html.escape(loss)}</li>" for loss in module.EXPORT_LOSSES)
            + f"</ul>{where}"
        )

    def _choose_target(self) -> None:
        module = exchange.format_module(self.format_name)
        target: str
        if self.needs_folder():
            target = QFileDialog.getExistingDirectory(self, "Export into folder")
        else:
            suggested = "library" if self.selection() is None else "prompt"
            target, _ = QFileDialog.getSaveFileName(
                self,
                "Export",
                suggested + module.EXTENSIONS[0],
                f"{module.LABEL} ({' '.join('*' + e for e in module.EXTENSIONS)})",
            )
        if not target:
            return
        # a folder: its files of the same names are replaced only when confirmed
        self.export_to(Path(target), overwrite=not self.needs_folder(), ask=True)

    def _ask_to_replace(self, target: Path, exc: exchange.ExportWouldOverwrite) -> None:
        answer = QMessageBox.question(
            self,
            "Replace files?",
            f"{exc}. Replace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.export_to(target)

    def export_to(self, target: Path, overwrite: bool = True, ask: bool = False) -> Job | None:
        """Export to `target` (a file, or a folder for one file per prompt) on the worker,
        with Stop; on failure the dialog stays open with the reason. Without `overwrite`,
        files that exist are kept and listed in `would_overwrite` (and with `ask` the
        user is asked whether to replace them)."""
        if self.job is not None:
            return None
        library, name, selection = self.library, self.format_name, self.selection()
        self.would_overwrite = None
        self.export_button.setEnabled(False)
        progress = JobProgress("Exporting…", self)

        def work(cancel: Any) -> ExportReport:
            return exchange.export(library, name, target, selection, overwrite, cancel)

        def done(report: ExportReport) -> None:
            self._ended(progress)
            self.report = report
            self.exported.emit(report)
            self.accept()

        def failed(exc: BaseException, trace: str) -> None:
            self._ended(progress)
            if isinstance(exc, exchange.ExportWouldOverwrite):
                self.would_overwrite = exc
                self.message.setText(f"Not exported: {exc}")
                self.message.setStyleSheet("")
                if ask:
                    self._ask_to_replace(target, exc)
                return
            if not isinstance(exc, OSError | ValueError | LibraryError | Cancelled):
                self.jobs.job_failed.emit(f"export {name}", exc, trace)  # a bug: the dialog
            self._show_failure(str(exc))

        def cancelled() -> None:
            self._ended(progress)
            self._show_failure("the export was stopped")

        self.job = self.jobs.run(f"export {name}", work, None, done, failed, cancelled)
        progress.follow(self.job)
        return self.job

    def _show_failure(self, reason: str) -> None:
        self.message.setText(f"Not exported: {reason}")
        self.message.setStyleSheet(ERROR_STYLE)

    def _ended(self, progress: JobProgress) -> None:
        self.job = None
        progress.finish()
        self.export_button.setEnabled(True)

    def reject(self) -> None:
        if self.job is not None:  # Cancel while writing means Stop
            self.job.stop()
            return
        super().reject()
