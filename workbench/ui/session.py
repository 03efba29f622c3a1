"""What the panels share, owned by the main window: the selected prompt and the model.

`PromptSelection` holds the working copy of the selected prompt and says when another
prompt is selected or the working copy changes. `ModelSession` holds the model
catalogue, the selected model and backend, the loaded backend and the backend settings,
and loads models through the job runner. Panels take these objects instead of each
other: the Evaluate and Graduate panels never look into the Run panel, and each panel
can be built in a test with a session of its own.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.core.backends.base import Backend, BackendSettings, load_settings, save_settings
from workbench.core.backends.pool import BackendKey, BackendPool, Lent
from workbench.core.backends.registry import ModelCatalog, backends_for, spec_for
from workbench.core.models import ModelSpec, Prompt
from workbench.ui.jobs import Job, JobRunner

log = logging.getLogger(__name__)


class PromptSelection(QObject):
    """The working copy of the selected prompt (None when nothing is selected)."""

    selected = Signal(object)  # another prompt (or None) was selected
    edited = Signal(object)  # the working copy of the same prompt changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._prompt: Prompt | None = None

    @property
    def prompt(self) -> Prompt | None:
        return self._prompt

    def select(self, prompt: Prompt | None) -> None:
        self._prompt = prompt
        self.selected.emit(prompt)

    def update(self, prompt: Prompt) -> None:
        self._prompt = prompt
        self.edited.emit(prompt)


def describe_error(exc: BaseException) -> str:
    """One line for the user: the message, or the exception's name when it has none."""
    return str(exc) or type(exc).__name__


class ModelSession(QObject):
    """The model the app runs prompts on, and how it is loaded.

    `backend` is the loaded backend of the selected (model, backend) pair, or None while
    it loads or after it failed to load. Loading runs on the job runner's worker; the
    previous model is closed there before the next one loads (one model in memory).
    """

    models_changed = Signal()  # the catalogue gained or lost a model
    selection_changed = Signal(object, str)  # ModelSpec, backend name
    backend_changed = Signal(object)  # the loaded Backend, or None while loading/failed
    status_changed = Signal(str)  # "Loading …", "Ready: …", "Could not load …" (`failed`)

    def __init__(
        self,
        jobs: JobRunner,
        catalog: ModelCatalog | None = None,
        settings: BackendSettings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.catalog = catalog or ModelCatalog()
        self.settings = settings or load_settings()
        self.backend: Backend | None = None
        first = self.catalog.all()[0]
        self._selected: BackendKey = (first.id, first.default_backend())
        self._loaded_key: BackendKey | None = None  # what `backend` is (or is loading)
        self.status = ""
        self.failed = False  # the status says the model could not load

    # -- what is selected ------------------------------------------------------------

    def choices(self) -> list[tuple[str, BackendKey]]:
        """Every (label, (model id, backend)) a model picker offers, the default first."""
        return [
            (f"{spec.name} — {backend}", (spec.id, backend))
            for spec in self.catalog.all()
            for backend in backends_for(spec)
        ]

    @property
    def selected_key(self) -> BackendKey:
        return self._selected

    def selected_model(self) -> tuple[ModelSpec, str]:
        model_id, backend = self._selected
        return self.catalog.get(model_id), backend

    @property
    def loading(self) -> bool:
        return self._loaded_key is not None and self.backend is None

    def select(self, model_id: str, backend: str, load: bool = True) -> None:
        """Pick a model and backend (and load it unless `load` is False)."""
        key = (model_id, backend)
        changed = key != self._selected
        self._selected = key
        if changed:
            spec, name = self.selected_model()
            self.selection_changed.emit(spec, name)
        if load:
            self.load_selected()

    def add_model(self, location: str, **kwargs: Any) -> ModelSpec:
        """Add a GGUF file, HF folder or server URL to the catalogue and select it."""
        spec = self.catalog.add(spec_for(location, **kwargs))
        self.models_changed.emit()
        self.select(spec.id, spec.default_backend())
        return spec

    def set_threads(self, threads: int) -> None:
        """A new CPU thread count: saved for next time, and the model reloads with it."""
        self.settings = dataclasses.replace(self.settings, threads=threads)
        save_settings(self.settings)  # OSError to the caller, which says so
        self._loaded_key = None
        self.load_selected()

    # -- loading -----------------------------------------------------------------------

    def _set_status(self, text: str, *, failed: bool = False) -> None:
        self.status = text
        self.failed = failed
        self.status_changed.emit(text)

    def load_selected(self) -> Job | None:
        """Load the selected model on the worker thread (None when it is loaded already)."""
        key = self._selected
        if key == self._loaded_key and self.backend is not None:
            return None
        spec, backend_name = self.selected_model()
        old, self.backend, self._loaded_key = self.backend, None, key
        self.backend_changed.emit(None)
        self._set_status(f"Loading {spec.name} on {backend_name}…")
        settings = self.settings

        def load(cancel: Any) -> Backend | None:
            from workbench.core.backends.registry import load_backend

            if old is not None:
                old.close()
            # another model picked meanwhile: never two in memory (this runs on the worker,
            # so the next load job starts only after this one has let its model go)
            if self._loaded_key != key:
                return None
            backend = load_backend(spec, backend_name, settings)
            if self._loaded_key != key:
                backend.close()
                return None
            return backend

        def done(backend: Backend | None) -> None:
            if backend is None:  # superseded by another pick: already let go
                return
            if self.jobs.closed:  # the window closed while it loaded: nobody will use it
                backend.close()
                return
            if self._loaded_key != key:  # another model was picked meanwhile
                self.jobs.run("close model", lambda cancel: backend.close())
                return
            self.backend = backend
            log.info("model ready: %s", backend.description)
            self._set_status(f"Ready: {backend.description}")
            self.backend_changed.emit(backend)

        def failed(exc: BaseException, trace: str) -> None:
            if self._loaded_key == key:
                self._loaded_key = None
                text = f"Could not load the model: {describe_error(exc)}"
                self._set_status(text, failed=True)

        return self.jobs.run(f"load {spec.name}", load, on_done=done, on_error=failed)

    # -- for flows ------------------------------------------------------------------

    def lent(self) -> Lent | None:
        """The loaded (or loading) model, lent to a flow's pool."""
        if self._loaded_key is None:
            return None
        return Lent(self._loaded_key, self.backend)

    def pool(self) -> BackendPool:
        """A pool for a flow's job: the selected model by default, this session's model
        lent (never closed by the pool), any other model loaded one at a time."""
        spec, backend = self.selected_model()
        return BackendPool(self.catalog, self.settings, spec, backend, self.lent())

    def close(self) -> None:
        """Let the loaded model go (on the worker, behind any job using it; at once when
        the runner has ended). Panels are told there is no model any more."""
        backend, self.backend, self._loaded_key = self.backend, None, None
        if backend is None:
            return
        self.backend_changed.emit(None)
        if not self.jobs.closed:
            self.jobs.run("close model", lambda cancel: backend.close())
        elif self.jobs.ended:  # no worker can be using it
            backend.close()
