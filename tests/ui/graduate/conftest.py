"""Graduate panel fixtures: the panel built on its own (a job runner, a model session and
a prompt selection of its own, no main window)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ui.graduate.helpers import Opened, save_tiny_model
from workbench.core.library import Library
from workbench.core.models import Prompt
from workbench.ui.graduate import GraduatePanel
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection


@pytest.fixture
def open_panel(
    qtbot, library_dir: Path
) -> Iterator[Callable[[Prompt], tuple[Opened, GraduatePanel]]]:
    """`open_panel(prompt)`: a shown panel on a fresh `Library(library_dir)`, showing the
    stored `prompt`. Each runner is shut down (and each library closed) at teardown."""
    opened: list[Opened] = []

    def open_(prompt: Prompt) -> tuple[Opened, GraduatePanel]:
        library = Library(library_dir)
        jobs = JobRunner()
        made = Opened(library, jobs, ModelSession(jobs), PromptSelection())
        opened.append(made)
        panel = GraduatePanel(library, jobs, made.session, made.selection)
        qtbot.addWidget(panel)
        panel.set_prompt(library.get_prompt(prompt.id))
        panel.resize(1300, 850)
        panel.show()
        return made, panel

    yield open_
    for made in opened:
        made.session.close()
        made.jobs.shutdown()
        made.library.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-layer Llama as a Hugging Face folder (`save_tiny_model`)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
