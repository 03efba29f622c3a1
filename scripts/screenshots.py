"""Take the README/docs screenshots: the real app, every tab at 1920×1080 and 1366×768.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py docs/img [LIB]

Opens a library (a fresh copy of the samples, or LIB), selects the sentiment prompt,
runs it on the embedded model with token probabilities, evaluates it (a few held-out
cases), graduates it with a short run when the library has no soft prompt of it yet, and
compares the methods on its held-out split (LoRA, untrained, keeps its Train button), so
every tab shows real results. Then grabs each tab and the import preview at both sizes:
`NAME.png` at 1920×1080 (the README's pictures) and `NAME-1366.png` at 1366×768.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QWidget

from workbench.core import exchange
from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path
from workbench.ui.app import MainWindow, create_application

SIZES = ((1920, 1080, ""), (1366, 768, "-1366"))
TIMEOUT_S = 900


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def settle(seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def child(window: QWidget, kind: type, name: str):  # type: ignore[no-untyped-def]
    found = window.findChild(kind, name)
    if found is None:
        raise SystemExit(f"no {name} in the window")
    return found


def prepare(window: MainWindow, library: Library) -> None:
    """Real results in every tab: a run, an evaluation, a (short) graduation."""
    from PySide6.QtWidgets import QSpinBox

    prompt = library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    window.apply_update(
        {
            "sample_values": {
                "review": "The kettle boils fast, but the lid started leaking after a week."
            }
        }
    )
    run = window.run_panel
    wait_until(lambda: run.backend is not None, "the model to load")
    run.probabilities.setChecked(True)
    run.max_tokens.setValue(16)
    run.run()
    wait_until(lambda: not run.running, "the run")

    window.tabs.setCurrentWidget(window.evaluate)
    settle()
    child(window, QSpinBox, "evalLimit").setValue(12)
    window.evaluate.run()
    wait_until(lambda: not window.evaluate.running, "the evaluation")

    if not library.soft_prompts_for(prompt.id):
        graduate = window.graduate
        window.tabs.setCurrentWidget(graduate)
        settle()
        for name, value in (("gradSteps", 24), ("gradBatch", 4), ("gradEvalEvery", 8)):
            child(graduate, QSpinBox, name).setValue(value)
        graduate.start()
        wait_until(lambda: not graduate.running, "the graduation")
    wait_until(lambda: not window.jobs.busy, "the last jobs")

    # the method table over the held-out split: the methods that need no training
    # (LoRA keeps its Train button)
    methods = window.methods
    window.tabs.setCurrentWidget(methods)
    settle()
    methods.compare()
    wait_until(lambda: methods.job is None, "the method comparison")


def shoot_tabs(window: MainWindow, library: Library, out: Path, suffix: str) -> list[Path]:
    shots: list[Path] = []

    def shoot(widget: QWidget, name: str) -> None:
        settle()
        path = out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        shots.append(path)

    prompt = library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    for widget, name in (
        (window.editor, "main-window"),
        (window.few_shot, "few-shot"),
        (window.test_sets, "test-sets"),
        (window.evaluate, "evaluate"),
        (window.graduate, "graduate"),
        (window.methods, "methods"),
    ):
        window.tabs.setCurrentWidget(widget)
        if widget is window.graduate and library.soft_prompts_for(prompt.id):
            window.graduate.show_soft_prompt_row(0)
            settle(1.5)  # the nearest tokens are found on the worker
        shoot(window, name)
    chain = library.find_prompt("Meeting notes → summary (chain)")
    window.library_panel.select(chain.id)
    window.tabs.setCurrentWidget(window.cot)
    shoot(window, "chain-of-thought")
    window.library_panel.select(prompt.id)
    window.tabs.setCurrentWidget(window.editor)
    return shots


def shoot_import(window: MainWindow, library: Library, tmp: Path, out: Path) -> Path:
    """The import preview of a colleague's bundle (the samples, one prompt edited)."""
    prompt = library.find_prompt("Review sentiment")
    other = Library(tmp / "colleague")
    seed_library(other, resource_path("sample_library"))
    theirs = other.get_prompt(prompt.id)
    other.save_prompt(theirs.model_copy(update={"description": "Tuned by a colleague."}))
    shared = tmp / "shared.zip"
    exchange.export(other, "bundle", shared)
    other.close()
    window.import_file(shared)  # read and planned on the worker, then the preview opens
    wait_until(lambda: window.import_dialog is not None, "the import preview")
    dialog = window.import_dialog
    settle(0.6)
    path = out / "import-preview.png"
    dialog.grab().save(str(path))
    dialog.reject()
    return path


def main(out_dir: Path, library_dir: Path | None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        library = Library(library_dir or tmp / "library")
        if not library.prompts:
            seed_library(library, resource_path("sample_library"))
        window = MainWindow(library)
        window.move(0, 0)
        window.resize(*SIZES[0][:2])
        window.show()
        prepare(window, library)
        shots: list[Path] = []
        for width, height, suffix in SIZES:
            window.resize(width, height)
            settle(0.8)
            shots += shoot_tabs(window, library, out_dir, suffix)
        window.resize(*SIZES[0][:2])
        shots.append(shoot_import(window, library, tmp, out_dir))
        window.close()
        window.jobs.shutdown()
        library.close()
    app.quit()
    print("\n".join(str(p) for p in shots))
    return 0


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    raise SystemExit(main(out, Path(sys.argv[2]) if len(sys.argv) > 2 else None))
