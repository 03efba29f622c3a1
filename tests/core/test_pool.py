"""The backend pool's one rule for loading: the lent model serves the variants that name
it and is never closed; of its own the pool keeps one model at a time (fake backends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.fake_pool import FakeBackend, make_pool, patch_loader
from workbench.core.backends.pool import Lent, ModelBusyError
from workbench.core.backends.registry import EMBEDDED_ID, embedded_spec
from workbench.core.models import VariantSpec


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[FakeBackend]:
    return patch_loader(monkeypatch)


def test_the_pool_closes_its_previous_model_before_loading_the_next(
    tmp_path: Path, loads: list[FakeBackend]
) -> None:
    pool = make_pool(tmp_path)
    first = pool.get(VariantSpec(name="a"))
    assert pool.get(VariantSpec(name="b", model=EMBEDDED_ID)) is first  # the same key: kept
    second = pool.get(VariantSpec(name="c", model="other"))
    assert first.closed and not second.closed
    assert [b.key for b in loads] == [(EMBEDDED_ID, "llama.cpp"), ("other", "transformers")]
    assert loads[1].open_at_load == []  # never two of the pool's models at once
    pool.close()
    assert second.closed


def test_a_lent_backend_serves_its_variants_and_is_never_closed(
    tmp_path: Path, loads: list[FakeBackend]
) -> None:
    shared = FakeBackend(embedded_spec(), "llama.cpp", [])
    with make_pool(tmp_path, Lent((EMBEDDED_ID, "llama.cpp"), shared)) as pool:
        default = VariantSpec(name="default")
        other = VariantSpec(name="other", model="other")
        assert not pool.needs_loading([default])
        assert pool.needs_loading([default, other])
        assert pool.get(default) is shared
        pool.get(other)
        assert pool.get(default) is shared
        assert not shared.closed
    assert loads[0].closed and not shared.closed  # the pool closes its own model only


def test_a_lent_model_still_loading_is_refused_before_anything_loads(
    tmp_path: Path, loads: list[FakeBackend]
) -> None:
    pool = make_pool(tmp_path, Lent((EMBEDDED_ID, "llama.cpp"), None))
    pool.check([VariantSpec(name="other", model="other")])  # another model: fine
    with pytest.raises(ModelBusyError, match="still loading"):
        pool.check([VariantSpec(name="default")])
    with pytest.raises(ModelBusyError):
        pool.get(VariantSpec(name="default"))
    assert loads == []


def test_a_backend_override_picks_the_backend_the_model_can_run_on(tmp_path: Path) -> None:
    pool = make_pool(tmp_path)
    assert pool.key_for(VariantSpec(name="a")) == (EMBEDDED_ID, "llama.cpp")
    assert pool.key_for(VariantSpec(name="b", backend="transformers")) == (
        EMBEDDED_ID,
        "transformers",
    )
    # an HF folder cannot run on llama.cpp (the default backend): its own backend
    assert pool.key_for(VariantSpec(name="c", model="other")) == ("other", "transformers")
