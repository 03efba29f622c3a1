"""Take the README/docs screenshots: the real app on a virtual X screen (Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py docs/img [LIBRARY]

Opens a library (a fresh copy of the samples, or LIBRARY, e.g. one where `workbench tune`
graduated the sentiment prompt), selects the sentiment prompt, runs it on the embedded
model with token probabilities, and grabs the whole screen; then the few-shot, chain,
the import preview of a colleague's bundle, and — when the library has them — the
evaluation and graduation tabs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from workbench.core import exchange
from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path
from workbench.ui.app import MainWindow, create_application


def main(out_dir: Path, library_dir: Path | None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    app = create_application()
    tmp = tempfile.TemporaryDirectory()
    library = Library(library_dir or Path(tmp.name) / "library")
    seed_library(library, resource_path("sample_library"))
    window = MainWindow(library)
    window.resize(1580, 960)
    window.move(10, 10)
    window.show()
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
    run.probabilities.setChecked(True)
    steps: list[str] = []

    def shoot(name: str) -> None:
        screen = QApplication.primaryScreen()
        path = out_dir / f"{name}.png"
        screen.grabWindow(0).save(str(path))
        steps.append(str(path))

    def when_loaded() -> None:
        if run.backend is None:
            QTimer.singleShot(200, when_loaded)
            return
        run.max_tokens.setValue(16)
        run.run()
        QTimer.singleShot(200, when_done)

    def when_done() -> None:
        if run.running:
            QTimer.singleShot(200, when_done)
            return
        shoot("main-window")
        window.tabs.setCurrentWidget(window.few_shot)
        QTimer.singleShot(300, few_shot)

    def few_shot() -> None:
        shoot("few-shot")
        chain = library.find_prompt("Meeting notes → summary (chain)")
        window.library_panel.select(chain.id)
        window.tabs.setCurrentWidget(window.cot)
        QTimer.singleShot(300, chain_shot)

    def chain_shot() -> None:
        shoot("chain-of-thought")
        # a colleague's bundle: the same samples, with the sentiment prompt edited
        other = Library(Path(tmp.name) / "colleague")
        seed_library(other, resource_path("sample_library"))
        theirs = other.get_prompt(prompt.id)
        other.save_prompt(theirs.model_copy(update={"description": "Tuned by a colleague."}))
        shared = Path(tmp.name) / "shared.zip"
        exchange.export(other, "bundle", shared)
        window.import_file(shared)  # read and planned on the worker, then the preview opens
        QTimer.singleShot(200, import_opened)

    def import_opened() -> None:
        if window.import_dialog is None:
            QTimer.singleShot(200, import_opened)
            return
        window.import_dialog.move(260, 160)
        QTimer.singleShot(500, import_shot)

    def import_shot() -> None:
        shoot("import-preview")
        window.import_dialog.reject()
        window.library_panel.select(prompt.id)
        if library.eval_runs_for(prompt.id):
            window.tabs.setCurrentWidget(window.evaluate)
            window.evaluate.show_run(library.eval_runs_for(prompt.id)[0])
            QTimer.singleShot(500, evaluate_shot)
        else:
            finish()

    def evaluate_shot() -> None:
        shoot("evaluate")
        if library.soft_prompts_for(prompt.id):
            window.tabs.setCurrentWidget(window.graduate)
            QTimer.singleShot(800, graduate_select)
        else:
            finish()

    def graduate_select() -> None:
        window.graduate.show_soft_prompt_row(0)
        QTimer.singleShot(1500, graduate_shot)

    def graduate_shot() -> None:
        shoot("graduate")
        finish()

    def finish() -> None:
        window.close()
        app.quit()

    QTimer.singleShot(500, when_loaded)
    app.exec()
    tmp.cleanup()
    print("\n".join(steps))
    return 0 if len(steps) >= 3 else 1


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    raise SystemExit(main(out, Path(sys.argv[2]) if len(sys.argv) > 2 else None))
