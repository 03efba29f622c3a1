"""LoRA adapters in bundles: exported with their prompt as the PEFT folder's files, imported
byte for byte with the plan's rules (unchanged, copied with their prompt, skipped with
it), and refused with a clear message when the files are not an adapter this release
runs — with nothing written."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from tests.core.exchange_helpers import add_lora_adapter, lora_files, snapshot
from workbench.core import exchange
from workbench.core.exchange import ImportFailed, Resolution, collect, plan_import
from workbench.core.exchange.bundle import zip_bytes
from workbench.core.library import Library


def bundle_of(library: Library, prompt_ids: list[str] | None = None) -> bytes:
    (data,) = exchange.bundle.export_bytes(collect(library, prompt_ids)).values()
    return data


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    """The entries as a bundle again, with a manifest that matches them (so only the
    content under test is wrong)."""
    import hashlib

    from workbench.core.exchange.bundle import Manifest, ManifestEntry

    body = {k: v for k, v in files.items() if k != "manifest.json"}
    manifest = Manifest(
        contents=[
            ManifestEntry(path=p, sha256=hashlib.sha256(b).hexdigest(), size=len(b))
            for p, b in sorted(body.items())
        ]
    )
    return zip_bytes({**body, "manifest.json": manifest.model_dump_json().encode()})


@pytest.fixture
def source(tmp_path: Path) -> Library:
    library = Library(tmp_path / "source")
    prompt = library.new_prompt("Sentiment", user_template="{{ text }}")
    add_lora_adapter(library, "sentiment lora", prompt.id, rank=2)
    other = library.new_prompt("Other", user_template="{{ x }}")
    add_lora_adapter(library, "other lora", other.id, rank=1, seed=3)
    return library


def test_a_bundle_carries_adapters_byte_for_byte(source: Library, tmp_path: Path) -> None:
    data = bundle_of(source)
    names = set(entries(data))
    for adapter in source.lora_adapters.values():
        assert {
            f"lora_adapters/{adapter.id}.json",
            f"lora_adapters/{adapter.id}/adapter_config.json",
            f"lora_adapters/{adapter.id}/adapter_model.safetensors",
        } <= names
    schema = json.loads(entries(data)["bundle.schema.json"])
    assert "lora_adapters/<id>.json" in schema["x-entries"]

    target = Library(tmp_path / "target")
    result = plan_import(target, exchange.parse_bytes("bundle", data, "b.zip"), "b.zip").apply()
    assert {"sentiment lora", "other lora"} <= set(result.added)
    again = Library(target.root)
    assert again.lora_adapters == source.lora_adapters
    for adapter in source.lora_adapters.values():
        assert snapshot(again.lora_adapter_path(adapter)) == snapshot(
            source.lora_adapter_path(adapter)
        )
    assert bundle_of(again) == data  # exported again: the same file


def test_a_selection_takes_only_its_prompt_s_adapters(source: Library) -> None:
    prompt = source.find_prompt("Sentiment")
    package = exchange.parse_bytes("bundle", bundle_of(source, [prompt.id]), "b.zip")
    assert [a.name for a, _ in package.lora_adapters] == ["sentiment lora"]
    text = exchange.markdown.export_bytes(collect(source, [prompt.id]))
    assert "LoRA adapter **sentiment lora**: rank 2 on `tiny`" in next(iter(text.values())).decode()


def test_adapters_follow_their_prompt_in_the_plan(source: Library) -> None:
    data = bundle_of(source)
    # imported into the same library: everything is unchanged
    plan = plan_import(source, exchange.parse_bytes("bundle", data, "b.zip"), "b.zip")
    kinds = {(i.kind, i.name): plan.effective(n) for n, i in enumerate(plan.items)}
    assert kinds[("LoRA adapter", "sentiment lora")] is Resolution.UNCHANGED
    before = snapshot(source.root)
    plan.apply()
    assert snapshot(source.root) == before

    # the prompt changed here: a copy of it is imported, with copies of its adapters
    prompt = source.find_prompt("Sentiment")
    source.save_prompt(prompt.model_copy(update={"description": "edited"}))
    ids = set(source.prompts)
    plan = plan_import(source, exchange.parse_bytes("bundle", data, "b.zip"), "b.zip")
    plan.apply()
    [copy_id] = set(source.prompts) - ids
    [copied] = source.lora_adapters_for(copy_id)
    [original] = source.lora_adapters_for(prompt.id)
    assert copied.id != original.id and copied.folder == copied.id
    assert snapshot(source.lora_adapter_path(copied)) == snapshot(
        source.lora_adapter_path(original)
    )

    # a skipped prompt skips its adapters
    count = len(source.lora_adapters)
    plan = plan_import(
        source, exchange.parse_bytes("bundle", data, "b.zip"), "b.zip", Resolution.SKIP
    )
    plan.apply()
    assert len(Library(source.root).lora_adapters) == count


def test_an_adapter_with_new_weights_is_not_unchanged(source: Library) -> None:
    adapter = next(a for a in source.lora_adapters.values() if a.name == "sentiment lora")
    data = bundle_of(source)
    weights = source.lora_adapter_path(adapter) / "adapter_model.safetensors"
    weights.write_bytes(lora_files(2, seed=9)["adapter_model.safetensors"])
    plan = plan_import(source, exchange.parse_bytes("bundle", data, "b.zip"), "b.zip")
    item = next(i for i in plan.items if i.name == "sentiment lora")
    assert item.resolution is Resolution.COPY and "new id" in item.clash


def _weights(**tensors: np.ndarray) -> bytes:
    return save(tensors, metadata={"format": "pt"})


A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": {"peft_type": "PROMPT_TUNING"}}, "field 'peft_type' is 'PROMPT_TUNING'"),
        ({"config": {"use_dora": True}}, "DoRA adapters are not supported"),
        ({"config": {"lora_alpha": "big"}}, "'lora_alpha' must be a positive number"),
        ({"config": {"r": 4}}, "rank 4 but the metadata says 2"),
        ({"config_bytes": b"{not json"}, "not valid JSON"),
        (
            {"weights": _weights(**{A: np.full((2, 8), np.nan, np.float32)})},
            "holds NaN or infinite values",
        ),
        ({"weights": _weights(**{A: np.ones((2, 8), np.float32)})}, "lacks one of lora_A"),
        (
            {
                "weights": _weights(
                    **{A: np.ones((2, 8), np.float32), B: np.ones((8, 3), np.float32)}
                )
            },
            "ranks differ",
        ),
        (
            {"weights": _weights(**{"model.embed_tokens.weight": np.ones((4, 8), np.float32)})},
            "is not a LoRA weight",
        ),
        (
            {"weights": _weights(**{A: np.ones((2, 8), np.int32), B: np.ones((8, 2), np.int32)})},
            "expected a float type",
        ),
        ({"weights": b"\x10\x00\x00\x00\x00\x00\x00\x00{}"}, "not a valid LoRA adapter"),
        ({"drop": "adapter_model.safetensors"}, "lacks adapter_model.safetensors"),
        ({"extra": "adapter_model.bin"}, "not a bundle path"),
        ({"orphan": True}, "belongs to no LoRA adapter in the bundle"),
    ],
)
def test_a_bad_adapter_in_a_bundle_is_refused_clearly(
    source: Library, tmp_path: Path, change: dict, message: str
) -> None:
    adapter = next(a for a in source.lora_adapters.values() if a.name == "sentiment lora")
    files = entries(bundle_of(source))
    where = f"lora_adapters/{adapter.id}"
    if "config" in change:
        config = json.loads(files[f"{where}/adapter_config.json"])
        files[f"{where}/adapter_config.json"] = json.dumps({**config, **change["config"]}).encode()
    if "config_bytes" in change:
        files[f"{where}/adapter_config.json"] = change["config_bytes"]
    if "weights" in change:
        files[f"{where}/adapter_model.safetensors"] = change["weights"]
    if "drop" in change:
        del files[f"{where}/{change['drop']}"]
    if "extra" in change:
        files[f"{where}/{change['extra']}"] = b"\x80\x04pickle"
    if "orphan" in change:
        files["lora_adapters/ghost/adapter_config.json"] = b"{}"
    (tmp_path / "bad.zip").write_bytes(rezip(files))
    target = Library(tmp_path / "target")
    before = snapshot(target.root)
    with pytest.raises(ImportFailed) as failed:
        exchange.plan_file(target, tmp_path / "bad.zip")
    text = str(failed.value)
    assert message in text, text
    assert not text.count(f"{where}/adapter_config.json: {where}")  # the place said once
    assert snapshot(target.root) == before
