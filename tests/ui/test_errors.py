"""Failures you can see: an unhandled exception (in a slot, in a thread, in a job
without an error callback) is logged and shown in a non-modal dialog with the message,
"Copy details" and the log file's path, and the app keeps running."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel

from workbench.core.library import Library
from workbench.ui.app import MainWindow
from workbench.ui.errors import ErrorDialog


@pytest.fixture
def window(qtbot, library_dir: Path):
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.show()
    window.errors.install()
    yield window
    window.errors.uninstall()


def _dialog(window: MainWindow) -> ErrorDialog:
    dialog = window.errors.dialog
    assert dialog is not None
    return dialog


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_shows_the_dialog_and_the_app_lives_on(
    qtbot, window: MainWindow, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_slot() -> None:
        raise KeyError("the missing piece")

    with caplog.at_level(logging.ERROR, logger="workbench.ui.errors"):
        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: window.errors.dialog is not None, timeout=5000)
        dialog = _dialog(window)
        qtbot.waitUntil(dialog.isVisible, timeout=5000)
    assert not dialog.isModal()  # never blocks the window
    assert "the missing piece" in dialog.findChild(QLabel, "errorMessage").text()
    assert "log" in dialog.findChild(QLabel, "errorLogPath").text()
    assert "broken_slot" in caplog.text  # logged with its traceback

    dialog.copy_button.click()
    copied = QApplication.clipboard().text()
    assert "Traceback" in copied and "broken_slot" in copied and "KeyError" in copied

    # the window is alive and works
    assert window.isVisible()
    prompt_id = window.library_panel.new_prompt("Still here")
    assert window.working is not None and window.working.id == prompt_id


def test_a_job_without_an_error_callback_shows_the_dialog(qtbot, window: MainWindow) -> None:
    def failing(cancel: threading.Event) -> None:
        raise RuntimeError("the disk said no")

    with qtbot.waitSignal(window.jobs.job_failed, timeout=5000):
        window.jobs.run("tidy up", failing)
    dialog = _dialog(window)
    assert dialog.isVisible()
    message = dialog.findChild(QLabel, "errorMessage").text()
    assert "tidy up" in message and "the disk said no" in message
    dialog.copy_button.click()
    assert "RuntimeError: the disk said no" in QApplication.clipboard().text()

    # a second failure joins the open dialog instead of stacking another window
    with qtbot.waitSignal(window.jobs.job_failed, timeout=5000):
        window.jobs.run("again", failing)
    assert _dialog(window) is dialog and len(dialog.traces) == 2
    assert dialog.findChild(QLabel, "errorMore").isVisible()
    dialog.close()
    assert window.isVisible()


def test_an_exception_in_another_thread_reaches_the_dialog_on_the_gui_thread(
    qtbot, window: MainWindow
) -> None:
    shown_in: list[str] = []
    window.errors._report.connect(lambda *_: shown_in.append(threading.current_thread().name))

    def crash() -> None:
        raise ValueError("from a helper thread")

    thread = threading.Thread(target=crash, name="helper")
    thread.start()
    thread.join(5)
    qtbot.waitUntil(lambda: window.errors.dialog is not None, timeout=5000)
    dialog = _dialog(window)
    assert "from a helper thread" in dialog.findChild(QLabel, "errorMessage").text()
    assert "helper" in dialog.findChild(QLabel, "errorMessage").text()
    assert shown_in == ["MainThread"]


def test_the_dialog_names_the_log_file(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.ui import errors

    path = tmp_path / "logs" / "workbench.log"
    monkeypatch.setattr(errors, "log_file", lambda: path)
    dialog = window.errors.show_error("A title", "a message", "Traceback: here")
    assert str(path) in dialog.findChild(QLabel, "errorLogPath").text()
    monkeypatch.setattr(errors, "log_file", lambda: None)
    dialog = window.errors.show_error("A title", "another", "Traceback: there")
    assert "not written to a file" in dialog.findChild(QLabel, "errorLogPath").text()
