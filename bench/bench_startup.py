"""Start-up: process start → main window shown (target under 1.5 s here), beside the
floor `python -c "import PySide6.QtWidgets"`; medians of several runs, one session."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
SHOWN = "WINDOW-SHOWN"

APP = f"""
import sys
from PySide6.QtCore import QTimer
from workbench.core.library import Library
from workbench.ui.app import MainWindow, create_application
app = create_application()
window = MainWindow(Library(sys.argv[1]))
window.show()
def shown():
    print("{SHOWN}", "torch" in sys.modules, "transformers" in sys.modules, flush=True)
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def timed(args: list[str], marker: str | None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    line = ""
    if marker:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                break
        elapsed = time.perf_counter() - start
        proc.wait(timeout=60)
    else:
        proc.wait(timeout=60)
        elapsed = time.perf_counter() - start
    return elapsed, line.strip()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        library = str(Path(tmp) / "lib")
        subprocess.run(
            [sys.executable, "-m", "workbench", "--library", library, "library", "seed"],
            check=True,
            capture_output=True,
        )
        floor_runs, app_runs = [], []
        last = ""
        for _ in range(ROUNDS):
            floor_runs.append(timed([sys.executable, "-c", "import PySide6.QtWidgets"], None)[0])
            elapsed, last = timed([sys.executable, "-c", APP, library], SHOWN)
            app_runs.append(elapsed)
    floor = statistics.median(floor_runs)
    app = statistics.median(app_runs)
    _, torch_loaded, transformers_loaded = last.split()
    print(f"python -c 'import PySide6.QtWidgets' (floor): {floor * 1000:6.0f} ms")
    print(
        f"process start -> main window shown:          {app * 1000:6.0f} ms"
        f"  (target < 1500 ms; {app / floor:.2f}x floor)"
    )
    print(
        f"torch imported before the window showed: {torch_loaded}; "
        f"transformers: {transformers_loaded}"
    )


if __name__ == "__main__":
    main()
