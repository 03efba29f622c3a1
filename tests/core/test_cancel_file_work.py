"""Long file work stops when asked: hashing a multi-GB model file, and dequantising a
GGUF into the transformers cache (nothing half-done is left behind)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from workbench.core.fsutil import Cancelled, file_sha256
from workbench.core.models import ModelSpec


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(cache))
    return cache


class _CancelAfter(threading.Event):
    """A cancel event that turns set after it has been asked `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.asked = 0
        self.checks = checks

    def is_set(self) -> bool:
        self.asked += 1
        if self.asked > self.checks:
            self.set()
        return super().is_set()


def test_hashing_stops_midway_and_remembers_nothing(tmp_path: Path) -> None:
    big = tmp_path / "model.gguf"
    big.write_bytes(bytes(range(256)) * 64)  # 16 KiB: 16 chunks of 1 KiB
    cancel = _CancelAfter(checks=5)
    with pytest.raises(Cancelled, match=r"model\.gguf"):
        file_sha256(big, cancel, chunk_bytes=1024)
    assert cancel.asked == 6  # checked per chunk, stopped at the sixth
    # nothing half-hashed was remembered: the next hash reads the whole file
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    assert file_sha256(big, threading.Event(), chunk_bytes=1024) == expected
    # and once remembered, a set event no longer matters (no reading at all)
    stopped = threading.Event()
    stopped.set()
    assert file_sha256(big, stopped) == expected


def test_model_hash_for_a_gguf_spec_can_be_stopped(tmp_path: Path) -> None:
    from workbench.core.softprompt import model_hash_for_spec

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    spec = ModelSpec(id="m", name="m", source="gguf", path=str(gguf))
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(Cancelled):
        model_hash_for_spec(spec, stopped)
    assert model_hash_for_spec(spec) == hashlib.sha256(gguf.read_bytes()).hexdigest()


def test_gguf_conversion_stops_before_and_after_dequantising(
    tmp_path: Path, _own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    import transformers

    from workbench.core.backends.hf import gguf_as_hf_folder

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    file_sha256(gguf)  # hashed already: the cancel is seen before dequantising
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(Cancelled, match="before dequantising"):
        gguf_as_hf_folder(gguf, stopped)

    cancel = threading.Event()
    saved: list[str] = []

    class FakeModel:
        hf_quantizer = None
        config = type("Config", (), {})()

        def save_pretrained(self, folder: str, **kwargs: Any) -> None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "model.safetensors").write_bytes(b"weights")
            saved.append(folder)

    def dequantise(*args: Any, **kwargs: Any) -> FakeModel:
        cancel.set()  # the user pressed Stop during the slow step
        return FakeModel()

    class FakeTokenizer:
        def save_pretrained(self, folder: str) -> None:
            (Path(folder) / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", dequantise)
    monkeypatch.setattr(
        transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: FakeTokenizer()
    )
    with pytest.raises(Cancelled, match="after dequantising"):
        gguf_as_hf_folder(gguf, cancel)
    assert saved == []  # the checkpoint was never written
    converted = _own_cache / "hf-from-gguf"
    assert not converted.exists() or list(converted.iterdir()) == []
