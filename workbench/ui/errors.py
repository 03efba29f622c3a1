"""Failures you can see: the error dialog, and the exception hooks that route every
unhandled exception (GUI thread, any other thread, a job without an error callback) to it.

An unhandled exception is logged with its traceback and shown in one non-modal dialog
(the message, "Copy details" for the traceback, the log file's path); the app keeps
running. Later errors while the dialog is open are added to it rather than stacking
windows. Exceptions from other threads reach the dialog through a queued signal, so the
dialog is only ever touched on the GUI thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.flows.report import count
from workbench.core.logs import log_file
from workbench.ui.widgets import named

log = logging.getLogger(__name__)


def error_message(exc: BaseException) -> str:
    """One line for the user: the exception's message, with its type when that says more."""
    text = str(exc)
    if not text:
        return type(exc).__name__
    if isinstance(exc, OSError | ValueError) or type(exc).__module__.startswith("workbench"):
        return text
    return f"{type(exc).__name__}: {text}"


def log_location() -> str:
    path = log_file()
    if path is None:
        return "The log is not written to a file (the log folder could not be written)."
    return f"The log file is {path}"


class ErrorDialog(QDialog):
    """What went wrong, with the traceback one click away on the clipboard."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorDialog")
        self.setWindowTitle("Something went wrong")
        self.setModal(False)  # never blocks the window (nor a test)
        self.traces: list[str] = []
        layout = QVBoxLayout(self)
        self.message = named(QLabel(), "errorMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.more = named(QLabel(), "errorMore")
        self.more.hide()
        self.log_path = named(QLabel(), "errorLogPath")
        self.log_path.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addWidget(self.more)
        layout.addWidget(self.log_path)
        layout.addWidget(QLabel("The app keeps running; unsaved edits are autosaved."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = named(QPushButton("Copy details"), "copyErrorDetails")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(520, 180)

    def add(self, title: str, message: str, trace: str) -> None:
        """Show an error (the newest one's message; every traceback kept for Copy)."""
        self.traces.append(f"{title}: {message}\n{trace}".rstrip() + "\n")
        self.message.setText(f"<b>{_escape(title)}</b><br>{_escape(message)}")
        if len(self.traces) > 1:
            earlier = count(len(self.traces) - 1, "earlier error")
            earlier += " is" if len(self.traces) == 2 else " are"
            self.more.setText(f"{earlier} in the details too.")
            self.more.show()
        self.log_path.setText(log_location())

    def details(self) -> str:
        return "\n".join(self.traces)

    def copy_details(self) -> None:
        QApplication.clipboard().setText(self.details())

    def closeEvent(self, event: Any) -> None:
        self.traces.clear()  # the next error starts a fresh list
        self.more.hide()
        super().closeEvent(event)


def _escape(text: str) -> str:
    import html

    return html.escape(text).replace("\n", "<br>")


class ErrorReporter(QObject):
    """Shows errors in the window's error dialog; installs the process-wide hooks."""

    _report = Signal(str, str, str)  # title, message, traceback: queued from any thread

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: ErrorDialog | None = None
        self._previous: tuple[Any, Any] | None = None
        self._report.connect(self.show_error)

    # -- showing --------------------------------------------------------------------

    @Slot(str, str, str)
    def show_error(self, title: str, message: str, trace: str) -> ErrorDialog:
        """On the GUI thread: the error in the (one) dialog, shown without blocking."""
        if self.dialog is None:
            self.dialog = ErrorDialog(self.window)
        self.dialog.add(title, message, trace)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def job_failed(self, name: str, exc: BaseException, trace: str) -> None:
        """A job without an error callback raised (the runner logged it already)."""
        self.show_error(f"The task {name!r} failed", error_message(exc), trace)

    def report(self, exc: BaseException, trace: str | None = None, where: str = "") -> None:
        """Log an exception and show it, from any thread."""
        trace = trace or "".join(traceback.format_exception(exc))
        title = f"Unexpected error{where}"
        log.error("%s:\n%s", title, trace)
        self._report.emit(title, error_message(exc), trace)

    # -- the hooks ------------------------------------------------------------------

    def install(self) -> None:
        """Route unhandled exceptions here: `sys.excepthook` (the GUI thread, slots and
        virtual methods) and `threading.excepthook` (other threads)."""
        if self._previous is None:
            self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt | SystemExit) and self._previous:
            self._previous[0](exc_type, exc, tb)  # Ctrl+C in the terminal stays Ctrl+C
            return
        self.report(exc, "".join(traceback.format_exception(exc_type, exc, tb)))

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        trace = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        name = args.thread.name if args.thread is not None else "a thread"
        self.report(args.exc_value, trace, f" in {name}")
