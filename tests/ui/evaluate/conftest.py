"""Evaluate panel fixtures: the panel built on its own (a job runner, a model session and
a prompt selection of its own, no main window), and fake models for its pool."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ui.evaluate.helpers import MODEL_TIMEOUT_MS, FakeBackend
from workbench.core.backends import pool as pool_module
from workbench.core.backends.base import Backend
from workbench.core.library import Library
from workbench.core.models import ModelSpec
from workbench.ui.evaluate import EvaluatePanel
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection


@pytest.fixture
def open_panel(qtbot, library_dir: Path) -> Iterator[Callable[..., EvaluatePanel]]:
    """`open_panel(load_model=False)`: a shown panel on the library; with `load_model`,
    the session's model is loaded first. Each runner is shut down at teardown."""
    opened: list[ModelSession] = []

    def open_(load_model: bool = False) -> EvaluatePanel:
        jobs = JobRunner()
        session = ModelSession(jobs)
        opened.append(session)
        if load_model:
            session.load_selected()
            qtbot.waitUntil(lambda: session.backend is not None, timeout=MODEL_TIMEOUT_MS)
        panel = EvaluatePanel(Library(library_dir), jobs, session, PromptSelection())
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        return panel

    yield open_
    for session in opened:
        backend = session.backend
        session.jobs.shutdown()
        if backend is not None:  # the worker has ended: close it here
            backend.close()


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Patch the pool's model loader; `gate` (when set) paces the fake's cases. `loads`
    lists each (model id, backend) loaded; `open_at_load` the fakes still open then."""
    FakeBackend.created = []
    control: dict[str, object] = {"gate": None, "loads": [], "open_at_load": []}

    def load(spec: ModelSpec, backend: str | None = None, settings: object = None) -> Backend:
        still_open = [b.spec.id for b in FakeBackend.created if not b.closed]
        control["open_at_load"].append(still_open)  # type: ignore[attr-defined]
        control["loads"].append((spec.id, backend))  # type: ignore[attr-defined]
        return FakeBackend(spec, control["gate"])  # type: ignore[arg-type]

    monkeypatch.setattr(pool_module, "load_backend", load)
    return control
