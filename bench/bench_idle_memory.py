"""The app at rest: CPU used by an idle main window (target under 1 % of a core) and
the process's resident memory (RSS) with the embedded model loaded on llama.cpp, then
with the transformers backend loaded as well (what an evaluation of a soft prompt or a
graduation adds), and after that model is let go again.

    .venv/bin/python bench/bench_idle_memory.py [--idle-seconds 10]

Runs the real window offscreen on a throwaway copy of the sample library.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    idle_s = parser.parse_args().idle_seconds

    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from workbench.core.backends.registry import EMBEDDED_ID, load_backend
    from workbench.core.library import Library, seed_library
    from workbench.core.resources import resource_path
    from workbench.ui.app import MainWindow, create_application

    app = create_application([])  # kept alive for the whole measurement
    app.setQuitOnLastWindowClosed(False)
    start_rss = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp) / "lib")
        seed_library(library, resource_path("sample_library"))
        window = MainWindow(library)
        window.resize(1366, 768)
        window.show()
        deadline = time.monotonic() + 300
        while window.session.backend is None and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.02)
        if window.session.backend is None:
            raise SystemExit(f"the model did not load: {window.session.status}")
        window_rss = rss_mb()

        # idle: let the event loop run with nothing to do, count this process's CPU
        loop = QEventLoop()
        QTimer.singleShot(int(idle_s * 1000), loop.quit)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        loop.exec()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        llama_rss = rss_mb()

        spec = window.session.catalog.get(EMBEDDED_ID)
        hf = load_backend(spec, "transformers", window.session.settings)
        both_rss = rss_mb()
        hf.close()
        del hf
        import gc

        gc.collect()
        after_rss = rss_mb()
        window.close()
        window.jobs.shutdown()
    share = 100 * cpu / wall
    print(f"idle window, {wall:.0f} s: {cpu * 1000:.0f} ms CPU = {share:.2f} % of a core")
    print(f"RSS: Qt app {start_rss:.0f} MB; window + llama.cpp model {llama_rss:.0f} MB")
    print(f"RSS with the transformers backend loaded as well: {both_rss:.0f} MB")
    print(f"RSS after the transformers model is let go: {after_rss:.0f} MB")
    print(f"peak RSS: {peak_mb():.0f} MB (window shown at {window_rss:.0f} MB)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
