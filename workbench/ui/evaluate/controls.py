"""The run controls: Run and Stop, the estimate of the work (before a run) or its progress
(while it runs), a button that hides the settings, and the panel's message line, which
wraps rather than being cut. `confirm_long_work` asks before work above the threshold."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.estimate import WorkEstimate
from workbench.core.flows.report import format_progress
from workbench.ui.widgets import named, show_message


class RunControls(QWidget):
    """One row of controls above a message line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = named(QPushButton("Run evaluation"), "evalRun")
        self.stop_button = named(QPushButton("Stop"), "evalStop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the cases done so far are kept as a partial run")
        self.progress = named(QProgressBar(), "evalProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.hide()
        self.eta = named(QLabel(), "evalEta")
        self.estimate = named(QLabel(), "evalEstimate")
        self.estimate.setWordWrap(True)
        self.estimate.setToolTip(
            "How much work the settings describe, timed by earlier evaluations on this machine"
        )
        self.settings_toggle = named(QToolButton(), "evalToggleSettings")
        self.settings_toggle.setCheckable(True)
        self.settings_toggle.setChecked(True)
        self.settings_toggle.setToolTip("Show or hide the settings above, to give the results room")
        self.message = named(QLabel(), "evalMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.message.hide()
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.estimate, 1)  # before a run; its progress while it runs
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta)
        row.addWidget(self.settings_toggle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.message)

    def show_estimate(self, estimate: WorkEstimate | None) -> None:
        self.estimate.setText(estimate.text() if estimate is not None else "")
        self.estimate.setVisible(estimate is not None and not self.progress.isVisible())

    def start_progress(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.show()
        self.estimate.hide()
        self.eta.setText(format_progress(0, total, None))

    def set_progress(self, done: int, total: int, eta_s: float | None) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.eta.setText(format_progress(done, total, eta_s))

    def end_progress(self) -> None:
        self.eta.setText("")
        self.progress.hide()

    def show_message(self, text: str, error: bool = False) -> None:
        show_message(self.message, text, error=error)

    def message_is_error(self) -> bool:
        return bool(self.message.property("error")) and bool(self.message.text())

    def set_settings_shown(self, shown: bool) -> None:
        self.settings_toggle.setText("Hide settings" if shown else "Show settings")


def confirm_long_work(parent: QWidget, estimate: WorkEstimate) -> bool:
    """Ask before work above the threshold; True to go ahead (at once below it)."""
    if not estimate.needs_confirmation:
        return True
    answer = QMessageBox.question(
        parent,
        "Start a long evaluation?",
        f"{estimate.text()}.\n\nA lower Limit gives a quicker first look. Start it anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
