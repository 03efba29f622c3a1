"""Start-up: process start → main window shown (target: at most 3× the floor
`python -c "import PySide6.QtWidgets"`), with the app's stylesheet, on the sample
library; medians of several rounds taken in turns. Besides wall time it gives the CPU
time of each process, which a busy machine disturbs much less. The lines after the
figures say which heavy libraries were loaded before the window showed (none of
torch, transformers, numpy and pyqtgraph need to be).

Both processes run from compiled bytecode, as an installed app does (pip and the
PyInstaller bundle compile it): an untimed first round compiles it into a cache folder of
the bench's own, so PYTHONDONTWRITEBYTECODE in the environment (or a read-only checkout)
would otherwise time Python compiling the app's source at every start, which the floor,
importing PySide6 from its installed bytecode, never pays.

    .venv/bin/python bench/bench_startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHOWN = "WINDOW-SHOWN"
HEAVY = ("torch", "transformers", "numpy", "pyqtgraph", "jinja2", "pydantic")

APP = f"""
import sys
from PySide6.QtCore import QTimer
from workbench.core.library import Library
from workbench.ui.app import MainWindow, create_application
app = create_application()
window = MainWindow(Library(sys.argv[1]))
window.show()
# before the event loop runs the model load it queued (that is on the worker thread)
loaded = [name for name in {HEAVY!r} if name in sys.modules]
def shown():
    import time
    print("{SHOWN}", time.process_time(), ",".join(loaded) or "-", flush=True)
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


FLOOR = "import time, PySide6.QtWidgets; print('FLOOR', time.process_time(), flush=True)"


def timed(args: list[str], marker: str, env: dict[str, str]) -> tuple[float, float, list[str]]:
    """Wall seconds to the marker line, the CPU seconds the process had used by then
    (it prints them), and the rest of that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    line = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(marker):
            break
    elapsed = time.perf_counter() - start
    proc.wait(timeout=60)
    fields = line.split()
    if len(fields) < 2:
        raise SystemExit(f"no {marker} line from {args[:2]}")
    return elapsed, float(fields[1]), fields[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        library = str(Path(tmp) / "lib")
        subprocess.run(
            [sys.executable, "-m", "workbench", "--library", library, "library", "seed"],
            check=True,
            capture_output=True,
        )
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "bytecode"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        floor_args, app_args = [sys.executable, "-c", FLOOR], [sys.executable, "-c", APP, library]
        timed(floor_args, "FLOOR", env)  # untimed: compiles the bytecode both then run from
        timed(app_args, SHOWN, env)
        floor_wall, floor_cpu, app_wall, app_cpu = [], [], [], []
        last: list[str] = []
        for _ in range(rounds):
            wall, cpu, _rest = timed(floor_args, "FLOOR", env)
            floor_wall.append(wall)
            floor_cpu.append(cpu)
            wall, cpu, last = timed(app_args, SHOWN, env)
            app_wall.append(wall)
            app_cpu.append(cpu)
    floor, app = statistics.median(floor_wall), statistics.median(app_wall)
    floor_c, app_c = statistics.median(floor_cpu), statistics.median(app_cpu)
    loaded = last[0] if last else "?"
    print(f"python -c 'import PySide6.QtWidgets' (floor): {floor * 1000:6.0f} ms")
    print(
        f"process start -> main window shown:          {app * 1000:6.0f} ms"
        f"  ({app / floor:.2f}x floor; target at most 3x)"
    )
    print(
        f"CPU time by then: floor {floor_c * 1000:.0f} ms, app {app_c * 1000:.0f} ms "
        f"({app_c / floor_c:.2f}x; less disturbed by a busy machine)"
    )
    print(f"heavy libraries loaded when the window was shown: {loaded.replace(',', ', ')}")


if __name__ == "__main__":
    main()
