"""Fake backends for pool and flow tests: the pool's loader patched to make them, each
recording what was still open when it loaded."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from workbench.core.backends import pool as pool_module
from workbench.core.backends.base import Backend, BackendSettings, Finished
from workbench.core.backends.pool import BackendPool, Lent
from workbench.core.backends.registry import ModelCatalog, embedded_spec
from workbench.core.models import GenerationParams, Message, ModelSpec

OTHER = ModelSpec(id="other", name="Other model", source="hf", path="/nowhere")


class FakeBackend(Backend):
    """Answers "positive"; records whether it was closed, and what was open when it
    was loaded (`loads` is shared by every fake of one test)."""

    name = "fake"

    def __init__(self, spec: ModelSpec, backend: str, loads: list[FakeBackend]) -> None:
        super().__init__(spec)
        self.backend = backend
        self.closed = False
        self.open_at_load = [b.key for b in loads if not b.closed]
        loads.append(self)

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.id, self.backend

    @property
    def context_length(self) -> int:
        return 4096

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        return "\n".join(m.content for m in messages)

    def _stream(self, text: str, params: GenerationParams, cancel: threading.Event) -> Iterator:
        yield Finished(text="positive", stats=None)  # type: ignore[arg-type]

    def _score(self, text: str, continuations: list[str]) -> list[float]:
        return [-1.0] + [-2.0] * (len(continuations) - 1)

    def close(self) -> None:
        self.closed = True


def patch_loader(monkeypatch: pytest.MonkeyPatch) -> list[FakeBackend]:
    """Patch the pool's loader to make fakes; returns every one it loads, in order."""
    made: list[FakeBackend] = []

    def load(spec: ModelSpec, backend: str | None = None, settings: object = None) -> Backend:
        return FakeBackend(spec, backend or spec.default_backend(), made)

    monkeypatch.setattr(pool_module, "load_backend", load)
    return made


def make_pool(tmp_path: Path, lent: Lent | None = None) -> BackendPool:
    catalog = ModelCatalog(tmp_path)
    catalog.user_models.append(OTHER)
    return BackendPool(catalog, BackendSettings(threads=1), embedded_spec(), "llama.cpp", lent)
