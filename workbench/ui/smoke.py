"""`workbench gui --smoke-test`: open the real main window on a throw-away copy of the
sample library, check it is shown and lists the samples, print one line and exit.

It is how a packaged build (PyInstaller bundle) proves it starts: Qt plugins, the
resources folder and the library code all have to work. No model is loaded, and
nothing is written outside a temporary folder (library, settings, config, cache).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QSize, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path

if TYPE_CHECKING:
    from workbench.ui.app import MainWindow

TIMEOUT_S = 60.0  # a cold start of a bundle on a slow disk takes a few seconds
POLL_MS = 10
_ISOLATED_ENV = {"WORKBENCH_CONFIG_DIR": "config", "WORKBENCH_CACHE_DIR": "cache"}


def seconds_since_process_start() -> float:
    """Wall time since this process was started (Linux: from /proc, so a bundle's
    bootloader and the interpreter's start-up count too); elsewhere since import."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # field 22 (starttime, clock ticks since boot) counted after the ")" closing comm
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


_IMPORTED_AT = time.perf_counter()


def run_smoke_test() -> int:
    """Exit status 0 and one `smoke ok: ...` line on stdout, or 1 and the reason on stderr."""
    saved = {name: os.environ.get(name) for name in _ISOLATED_ENV}
    with tempfile.TemporaryDirectory(prefix="workbench-smoke-") as tmp:
        root = Path(tmp)
        # keep the user's settings, config and cache untouched
        for name, folder in _ISOLATED_ENV.items():
            os.environ[name] = str(root / folder)
        try:
            return _run(root)
        except Exception as exc:  # any failure is the answer of a smoke test
            print(f"smoke FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _run(root: Path) -> int:
    from workbench.ui.app import create_application, start_window

    samples = resource_path("sample_library")  # a bundle without its data fails here
    app = create_application()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(root / "qt"))

    library = Library(root / "library")
    seed_library(library, samples)
    expected = len(library.prompts)
    if expected == 0:
        raise RuntimeError("the sample library holds no prompts")
    library.close()

    # the user's start: the frame first, the library opened into it (not the model)
    window = start_window(root / "library", load_model=False)
    try:
        return _check(app, window, expected)
    finally:
        window.errors.uninstall()


def _check(app: QApplication, window: MainWindow, expected: int) -> int:

    outcome: dict[str, object] = {}
    deadline = time.monotonic() + TIMEOUT_S

    def check() -> None:
        try:
            if window.open_failed:
                raise RuntimeError("the library could not be opened")
            handle = window.windowHandle()
            listed = window.library_panel.model.rowCount() if window.is_open else 0
            shown = window.isVisible() and handle is not None and handle.isExposed()
            if shown and listed == expected and window.working is not None:
                outcome["elapsed"] = seconds_since_process_start()
                outcome["listed"] = listed
                _check_icon()
                window.close()  # the real shutdown path: autosave, settings, jobs, library
                app.exit(0)
            elif time.monotonic() > deadline:
                raise TimeoutError(
                    f"after {TIMEOUT_S:.0f} s: window shown={shown}, "
                    f"prompts listed={listed} of {expected}, "
                    f"prompt selected={window.working is not None}"
                )
        except Exception as exc:
            outcome["error"] = exc
            app.exit(1)

    timer = QTimer(interval=POLL_MS)
    timer.timeout.connect(check)
    timer.start()
    status = app.exec()
    timer.stop()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if status != 0 or "elapsed" not in outcome:
        raise RuntimeError(f"the event loop ended with status {status} before the check")
    print(
        f"smoke ok: {outcome['listed']} prompts, window shown in {outcome['elapsed']:.2f} s",
        flush=True,
    )
    return 0


def _check_icon() -> None:
    """The app icon is an SVG: rendering it needs Qt's svg icon engine plugin."""
    icon = QIcon(str(resource_path("icons", "app.svg")))
    if icon.pixmap(QSize(32, 32)).isNull():
        raise RuntimeError("the SVG app icon does not render (Qt's svg plugins are missing)")
