"""The model session: picking another model while one loads never holds two in memory."""

from __future__ import annotations

import threading
from typing import ClassVar

import workbench.core.backends.registry as registry
from workbench.core.backends.registry import ModelCatalog, spec_for
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession


class FakeBackend:
    alive: ClassVar[set[str]] = set()
    most: ClassVar[int] = 0

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"{name} (fake)"
        FakeBackend.alive.add(name)
        FakeBackend.most = max(FakeBackend.most, len(FakeBackend.alive))

    def close(self) -> None:
        FakeBackend.alive.discard(self.name)


def test_a_quick_second_pick_never_loads_two_models(qtbot, tmp_path, monkeypatch) -> None:
    gate = threading.Event()

    def fake_load(spec, backend=None, settings=None):
        if spec.name == "first":
            assert gate.wait(10)  # the first load is slow
        return FakeBackend(spec.name)

    monkeypatch.setattr(registry, "load_backend", fake_load)
    for name in ("first", "second"):
        (tmp_path / f"{name}.gguf").write_bytes(b"GGUF fake weights")
    catalog = ModelCatalog(tmp_path)
    first = catalog.add(spec_for(str(tmp_path / "first.gguf"), name="first"))
    second = catalog.add(spec_for(str(tmp_path / "second.gguf"), name="second"))
    jobs = JobRunner()
    try:
        session = ModelSession(jobs, catalog)
        session.select(first.id, "llama.cpp")
        session.select(second.id, "llama.cpp")  # picked while the first still loads
        gate.set()
        qtbot.waitUntil(lambda: session.backend is not None, timeout=10_000)
        assert session.backend.name == "second"
        qtbot.waitUntil(lambda: not jobs.busy, timeout=10_000)
        assert FakeBackend.alive == {"second"} and FakeBackend.most == 1
    finally:
        jobs.shutdown()
