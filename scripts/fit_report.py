"""Print what does not fit in the window, at 1366×768 and 1920×1080 (or the sizes given):
every text cut short and every widget pushed out of its parent, place by place.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/fit_report.py [WxH ...]

The same checks as tests/ui/test_fit.py (tests/ui/fit.py), with the app's stylesheet.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtWidgets import QApplication

from tests.ui import fit
from workbench.core.library import Library
from workbench.ui.app import MainWindow, create_application


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        QApplication.processEvents()
        time.sleep(0.01)


def report_at(width: int, height: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fit.seed_tour_library(Path(tmp) / "library")
        window = MainWindow(Library(Path(tmp) / "library"), load_model=False)
        window.resize(width, height)
        window.show()
        places = fit.tour(window, wait_until, width, height)
        window.close()
        window.deleteLater()
        QApplication.processEvents()
    total = 0
    print(f"== {width}x{height}")
    for place in places:
        print(f"-- {place.name}: {len(place.found) or 'fits'}")
        if place.found:
            for offender in place.found:
                print(f"   {offender}")
        total += len(place.found)
    print(f"{total} offenders at {width}x{height}\n")
    return total


def main(argv: list[str]) -> int:
    sizes = [tuple(int(n) for n in s.split("x")) for s in argv] or [(1366, 768), (1920, 1080)]
    create_application()
    total = sum(report_at(w, h) for w, h in sizes)
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
