"""Start-up: process start → main window shown (target: at most 3× the floor
`python -c "import PySide6.QtWidgets"`), and → the window ready (the library open, its
panels built and painted, the last prompt in the editor), with the app's stylesheet, on
the sample library; medians of several rounds taken in turns. Both go through the user's
path, `workbench --library DIR gui` (the command line, logging, `start_window`), with the
user's folders (settings, log) in a temporary home. Besides wall time it gives the CPU
time of each process, which a busy machine disturbs much less. The last line says which
heavy libraries were loaded before the window was shown (none of torch, transformers,
numpy, pyqtgraph, jinja2 and pydantic need to be: the frame is shown first).

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
READY = "WINDOW-READY"
HEAVY = ("torch", "transformers", "numpy", "pyqtgraph", "jinja2", "pydantic")

# `workbench --library DIR gui`, told when the frame is on screen and when it is ready
APP = f"""
import os, sys, time
import workbench.ui.app as app_module
from workbench.cli import main
start_window = app_module.start_window
def timed_start(library_dir=None):
    window = start_window(library_dir)  # returns once the frame is painted
    loaded = [name for name in {HEAVY!r} if name in sys.modules]
    print("{SHOWN}", time.process_time(), ",".join(loaded) or "-", flush=True)
    def ready():
        window.repaint()
        print("{READY}", time.process_time(), flush=True)
        os._exit(0)  # not waiting for the model the window went on to load
    window.opened.connect(ready)
    return window
app_module.start_window = timed_start
sys.exit(main(["--library", sys.argv[1], "gui"]))
"""


FLOOR = "import time, PySide6.QtWidgets; print('FLOOR', time.process_time(), flush=True)"


def timed(
    args: list[str], markers: tuple[str, ...], env: dict[str, str]
) -> list[tuple[float, float, list[str]]]:
    """For each marker line in turn: wall seconds to it, the CPU seconds the process
    had used by then (it prints them), and the rest of that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    found: list[tuple[float, float, list[str]]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(markers[len(found)]):
            fields = line.split()
            found.append((time.perf_counter() - start, float(fields[1]), fields[2:]))
            if len(found) == len(markers):
                break
    proc.wait(timeout=60)
    if len(found) < len(markers):
        raise SystemExit(f"no {markers[len(found)]} line from {args[:2]}")
    return found


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
        home = Path(tmp) / "home"  # the app's settings and log, not the user's
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "bytecode"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_DATA_HOME": str(home / "data"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        floor_args, app_args = [sys.executable, "-c", FLOOR], [sys.executable, "-c", APP, library]
        timed(floor_args, ("FLOOR",), env)  # untimed: compiles the bytecode both then run from
        timed(app_args, (SHOWN, READY), env)
        floor: list[tuple[float, float, list[str]]] = []
        shown: list[tuple[float, float, list[str]]] = []
        ready: list[tuple[float, float, list[str]]] = []
        for _ in range(rounds):
            floor += timed(floor_args, ("FLOOR",), env)
            app_shown, app_ready = timed(app_args, (SHOWN, READY), env)
            shown.append(app_shown)
            ready.append(app_ready)

    def median(runs: list[tuple[float, float, list[str]]], cpu: bool = False) -> float:
        return statistics.median(run[1 if cpu else 0] for run in runs)

    floor_wall, floor_cpu = median(floor), median(floor, cpu=True)
    print(f"python -c 'import PySide6.QtWidgets' (floor): {floor_wall * 1000:6.0f} ms")
    for what, runs, target in (
        ("main window shown", shown, "; target at most 3x"),
        ("window ready     ", ready, ""),
    ):
        wall, cpu = median(runs), median(runs, cpu=True)
        print(
            f"process start -> {what}:        {wall * 1000:6.0f} ms"
            f"  ({wall / floor_wall:.2f}x floor{target}); CPU {cpu * 1000:.0f} ms "
            f"({cpu / floor_cpu:.2f}x the floor's {floor_cpu * 1000:.0f} ms)"
        )
    loaded = shown[-1][2][0] if shown[-1][2] else "?"
    print(f"heavy libraries loaded when the window was shown: {loaded.replace(',', ', ')}")


if __name__ == "__main__":
    main()
