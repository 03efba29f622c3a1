"""Which models a flow loads, and when it lets them go: one rule for the app and the CLI.

A flow that runs several variants asks the pool for each variant's backend. The pool
keeps **one** model of its own loaded at a time — the previous one is closed before the
next loads, so a comparison of two models never holds both in memory (on a small
machine two models can exhaust it). A backend *lent* by the caller (the app's loaded
model) serves the variants that name it and is never closed by the pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workbench.core.backends.base import Backend, BackendError, BackendSettings
from workbench.core.backends.registry import ModelCatalog, backends_for, load_backend
from workbench.core.models import ModelSpec, VariantSpec

BackendKey = tuple[str, str]
"""(model id, backend name): what a loaded backend is."""


class ModelBusyError(BackendError):
    """The lent model is still loading; a second copy would double the memory."""


@dataclass(frozen=True)
class Lent:
    """A model the caller has (or is) loading: `backend` is None while it loads."""

    key: BackendKey
    backend: Backend | None


class BackendPool:
    """Backends for variants: `spec.model` (else the default model) on `spec.backend`
    (else the default backend when the model can run on it, else the model's own)."""

    def __init__(
        self,
        catalog: ModelCatalog,
        settings: BackendSettings,
        default_model: ModelSpec,
        default_backend: str | None = None,
        lent: Lent | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.default_model = default_model
        self.default_backend = default_backend
        self.lent = lent
        self._own: tuple[BackendKey, Backend] | None = None

    def model_for(self, variant: VariantSpec) -> ModelSpec:
        if variant.model is None:
            return self.default_model
        return self.catalog.get(variant.model)

    def key_for(self, variant: VariantSpec) -> BackendKey:
        model = self.model_for(variant)
        backend: str | None = variant.backend
        if backend is None and self.default_backend in backends_for(model):
            backend = self.default_backend
        return model.id, backend or model.default_backend()

    def check(self, variants: Iterable[VariantSpec]) -> None:
        """Raise now (before a job starts) what `get` would raise later: unknown models,
        and the lent model still loading."""
        for variant in variants:
            key = self.key_for(variant)
            if self.lent is not None and key == self.lent.key and self.lent.backend is None:
                name = self.model_for(variant).name
                raise ModelBusyError(
                    f"{name} is still loading; run this when it is ready "
                    "(loading it twice would double the memory)"
                )

    def needs_loading(self, variants: Iterable[VariantSpec]) -> bool:
        """Whether some variant needs a model the pool must load first."""
        lent = self.lent.key if self.lent is not None and self.lent.backend else None
        return any(self.key_for(v) != lent for v in variants)

    def get(self, variant: VariantSpec) -> Backend:
        """The variant's backend: the lent one, the pool's current one, or loaded now
        (closing the pool's previous model first)."""
        key = self.key_for(variant)
        if self.lent is not None and key == self.lent.key:
            if self.lent.backend is None:
                self.check([variant])
            assert self.lent.backend is not None
            return self.lent.backend
        if self._own is not None and self._own[0] == key:
            return self._own[1]
        self.release()
        backend = load_backend(self.model_for(variant), key[1], self.settings)
        self._own = (key, backend)
        return backend

    def release(self) -> None:
        """Close the model the pool loaded (never the lent one)."""
        own, self._own = self._own, None
        if own is not None:
            own[1].close()

    def close(self) -> None:
        self.release()

    def __enter__(self) -> BackendPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
