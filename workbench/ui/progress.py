"""A progress window with Stop for a job that reads or writes files (import, export)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

from workbench.ui.jobs import Job


class JobProgress(QProgressDialog):
    """A busy bar and Stop while a job reads or writes; Stop sets the job's cancel
    event (the core checks it between files and items)."""

    def __init__(self, text: str, parent: QWidget) -> None:
        super().__init__(text, "Stop", 0, 0, parent)
        self.setObjectName("exchangeProgress")
        self.setWindowTitle("Please wait")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.job: Job | None = None
        self.canceled.connect(self.stop)

    def follow(self, job: Job) -> None:
        self.job = job
        self.show()

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.setLabelText("Stopping…")

    def finish(self) -> None:
        self.job = None  # closing emits canceled: nothing to stop any more
        self.close()
        self.deleteLater()
