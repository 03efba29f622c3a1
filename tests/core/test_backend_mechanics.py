"""Backend mechanics that need no model: stop strings, n_ctx, threads, model catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.backends.base import (
    BackendSettings,
    StopMatcher,
    normalise_n_ctx,
    physical_cores,
)
from workbench.core.backends.registry import (
    EMBEDDED_ID,
    ModelCatalog,
    ModelLoadError,
    backends_for,
    spec_for,
    validate_spec,
)


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    return "".join(matcher.feed(p) for p in pieces) + matcher.flush()


def test_stop_matcher_cuts_at_a_stop_split_across_pieces() -> None:
    matcher = StopMatcher(["\n\nUser:"])
    assert feed_all(matcher, ["Hello", " there\n", "\nUs", "er: more"]) == "Hello there"
    assert matcher.stopped


def test_stop_matcher_releases_a_false_alarm() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("ST") == ""  # could be the start of STOP
    assert matcher.feed("AR") == "STAR"
    assert feed_all(StopMatcher([]), ["a", "b"]) == "ab"
    assert not matcher.stopped


def test_n_ctx_is_a_multiple_of_256_and_at_least_256() -> None:
    assert normalise_n_ctx(1) == 256
    assert normalise_n_ctx(300) == 512
    assert normalise_n_ctx(2048) == 2048
    assert BackendSettings(n_ctx=1000).n_ctx == 1024


def test_threads_default_to_physical_cores() -> None:
    assert BackendSettings().threads == physical_cores() >= 1
    with pytest.raises(ValueError):
        BackendSettings(threads=0)


def _fake_gguf(path: Path) -> Path:
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


def test_catalog_lists_the_embedded_model_first_and_persists_user_models(tmp_path: Path) -> None:
    catalog = ModelCatalog(tmp_path)
    assert catalog.all()[0].id == EMBEDDED_ID and catalog.all()[0].embedded
    gguf = _fake_gguf(tmp_path / "mine.gguf")
    added = catalog.add(spec_for(str(gguf)))
    again = ModelCatalog(tmp_path)
    assert [m.id for m in again.all()][1:] == [added.id]
    assert again.get("mine").path == str(gguf.resolve())
    assert json.loads((tmp_path / "models.json").read_text())["models"][0]["source"] == "gguf"
    duplicate = again.add(spec_for(str(gguf)))
    assert duplicate.id == f"{added.id}-2"
    again.remove(added.id)
    assert [m.id for m in ModelCatalog(tmp_path).user_models] == [duplicate.id]


def test_adding_a_missing_or_wrong_file_is_refused_clearly(tmp_path: Path) -> None:
    catalog = ModelCatalog(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        catalog.add(spec_for(str(tmp_path / "nope.gguf")))
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        catalog.add(spec_for(str(text)))
    assert not (tmp_path / "models.json").exists()


def test_hf_folder_needs_safetensors_unless_pickle_is_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelLoadError, match="pickle"):
        validate_spec(spec_for(str(folder)))
    validate_spec(spec_for(str(folder), allow_pickle=True))
    (folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        validate_spec(spec_for(str(folder)))


def test_server_urls_and_backend_choices(tmp_path: Path) -> None:
    spec = spec_for("http://127.0.0.1:8000/v1", remote_model="llama")
    assert spec.source == "openai" and backends_for(spec) == ["openai"]
    with pytest.raises(ModelLoadError, match=r"not an http\(s\) URL"):
        validate_spec(spec.model_copy(update={"url": "ftp://x"}))
    gguf = _fake_gguf(tmp_path / "m.gguf")
    assert backends_for(spec_for(str(gguf))) == ["llama.cpp", "transformers"]
    assert backends_for(spec_for(str(gguf), backend="transformers"))[0] == "transformers"
    with pytest.raises(ModelLoadError, match="unknown backend"):
        spec_for(str(gguf), backend="vllm")


def test_unreadable_models_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "models.json").write_text("{broken")
    catalog = ModelCatalog(tmp_path)
    assert catalog.user_models == [] and "unreadable" in catalog.problems[0]


def test_settings_persist_and_a_damaged_file_falls_back_to_defaults(tmp_path: Path) -> None:
    from workbench.core.backends.base import load_settings, save_settings

    assert load_settings(tmp_path).threads == physical_cores()
    save_settings(BackendSettings(threads=1, n_ctx=1000), tmp_path)
    loaded = load_settings(tmp_path)
    assert (loaded.threads, loaded.n_ctx) == (1, 1024)
    (tmp_path / "settings.json").write_text("{oops")
    assert load_settings(tmp_path) == BackendSettings()


def test_running_and_training_pick_the_same_precision_on_every_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One rule: `hf.pick_dtype` (running) and `tuning.pick_precision(.., "auto")`
    (training) used to disagree on MPS (fp16 against fp32)."""
    torch = pytest.importorskip("torch")
    from workbench.core.backends.hf import auto_precision, dtype_for, pick_dtype
    from workbench.core.tuning import pick_precision

    for bf16 in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        for device in ("cpu", "cuda", "mps"):
            precision = pick_precision(device, "auto")
            assert precision == auto_precision(device)
            assert pick_dtype(device) == dtype_for(precision)
        assert pick_precision("cuda", "auto") == ("bf16" if bf16 else "fp16")
    assert pick_precision("mps", "auto") == "fp16"
    assert pick_dtype("mps") == torch.float16
    assert pick_precision("cpu", "auto") == "fp32" and pick_dtype("cpu") == torch.float32
