"""A PEFT LoRA adapter as a GGUF LoRA adapter, so llama.cpp runs it
(`Llama(model_path=..., lora_path=ADAPTER.gguf)`, or `llama_set_adapters_lora` on a
loaded context).

The file is what llama.cpp's own `convert_lora_to_gguf.py` writes, made with the `gguf`
package:

* metadata `general.architecture` (the base GGUF's: llama.cpp refuses another),
  `general.type` = "adapter", `adapter.type` = "lora", `adapter.lora.alpha` (float32);
* per adapted layer, the base tensor's GGUF name with `.lora_a` and `.lora_b`:
  `blk.N.attn_q.weight.lora_a` holds PEFT's `lora_A` ([r, in] in numpy order, so
  ggml's ne = [in, r], like the base weight's [in, out]) and `.lora_b` PEFT's
  `lora_B` ([out, r]). Layer names map from Hugging Face to GGUF through gguf-py's
  `TensorNameMap` for the base model's architecture (`model.layers.3.self_attn.q_proj`
  → `blk.3.attn_q`), and every mapped tensor must exist in the base GGUF with the
  adapter's shape.

llama.cpp computes `W·x + scale·(alpha / r)·B·(A·x)` with `r` read from each `lora_b`,
which is PEFT's scaling `alpha / r`. Where PEFT scales otherwise (rsLoRA's
`alpha / sqrt(r)`, a per-layer `alpha_pattern`) the difference is folded into `lora_b`,
so the file always computes what PEFT computes.

**Query and key rows.** llama.cpp's converter permutes the rows of a llama-family
model's `q_proj` and `k_proj` (rotary halves interleaved per head), and transformers
undoes that when it reads such a GGUF — so the Hugging Face folder training runs on
(`backends.hf.gguf_as_hf_folder`) has the rows in Hugging Face order. The adapter's
`lora_B` of those layers (the output rows; `lora_A` acts on the input) gets llama.cpp's
permutation again, with the key heads counted as `head_count_kv`. Architectures whose
tensors transformers rewrites in other ways when reading a GGUF (fused or transposed
projections) are refused rather than guessed.

The conversion is cached beside the adapter in the library (`adapter.gguf` in its PEFT
folder, which PEFT ignores), tagged with a hash of the adapter's files; a changed
adapter is converted again. numpy, torch and gguf are imported lazily.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.fsutil import Cancelled, fsync_dir
from workbench.core.lora_io import LoraAdapterError, LoraAdapterMismatchError
from workbench.core.peft_io import CONFIG_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    from workbench.core.library import Library
    from workbench.core.models import LoraAdapter

GGUF_FILE = "adapter.gguf"
CONVERTER_VERSION = 1
SOURCE_KEY = "workbench.lora.source"
"""A string key in the file: the converter version and the SHA-256 of the adapter's
files it was made from (`source_tag`)."""

# GGUF architectures whose q/k rows llama.cpp permutes and transformers un-permutes
_PERMUTED_QK = frozenset({"llama"})
# architectures transformers rewrites other tensors of when it reads a GGUF (fused qkv,
# transposed Conv1D weights, split experts, ...): an adapter is not mapped back blindly
_REWRITTEN = frozenset(
    {
        "bloom",
        "gpt2",
        "gpt_oss",
        "lfm2",
        "mamba",
        "minimax-m2",
        "nemotron",
        "qwen2moe",
        "qwen3moe",
        "t5",
        "t5encoder",
    }
)


def source_tag(folder: Path) -> str:
    """What a cached GGUF must say it was made from: the converter's version and the
    SHA-256 over the adapter's config and weights."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        digest.update(name.encode() + b"\0")
        digest.update((Path(folder) / name).read_bytes())
    return f"v{CONVERTER_VERSION}:{digest.hexdigest()}"


# ---------------------------------------------------------------------------
# the base model


class _Base:
    """What the conversion needs from the base GGUF: its architecture, head counts and
    tensor shapes (ggml order, [in, out] for a weight)."""

    def __init__(self, path: Path) -> None:
        import gguf

        try:
            reader = gguf.GGUFReader(str(path))
        except Exception as exc:  # a truncated or foreign file
            raise LoraAdapterError(f"{path}: not a readable GGUF model: {exc}") from None
        self.path = path

        def field(key: str) -> Any:
            found = reader.fields.get(key)
            return None if found is None else found.contents()

        self.arch = str(field("general.architecture") or "")
        self.blocks = int(field(f"{self.arch}.block_count") or 0)
        self.heads = _int(field(f"{self.arch}.attention.head_count"))
        kv = _int(field(f"{self.arch}.attention.head_count_kv"))
        self.kv_heads = kv if kv else self.heads
        self.shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
        arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == self.arch), None)
        if arch is None:
            raise LoraAdapterError(
                f"{path.name}: llama.cpp architecture {self.arch!r} is unknown to the "
                "installed gguf package; its LoRA adapters cannot be converted"
            )
        if self.arch in _REWRITTEN:
            raise LoraAdapterError(
                f"LoRA adapters for {self.arch!r} models cannot be converted for llama.cpp "
                "yet (transformers rewrites their layers when it reads the GGUF); run the "
                "adapter on the transformers backend"
            )
        self.names = gguf.get_tensor_name_map(arch, self.blocks)


def _int(value: Any) -> int:
    if isinstance(value, list):  # per-layer head counts: only a constant one is usable
        values = {int(v) for v in value}
        return values.pop() if len(values) == 1 else 0
    return int(value) if value is not None else 0


def _permute_rows(b: Any, heads: int) -> Any:
    """llama.cpp's q/k row order (convert_hf_to_gguf's `LlamaModel.permute`), on
    lora_B's output rows."""
    out, rank = b.shape
    return b.reshape(heads, 2, out // heads // 2, rank).swapaxes(1, 2).reshape(out, rank)


def _pattern_value(patterns: Mapping[str, Any], path: str, default: float) -> float:
    """PEFT's per-layer override: the first pattern that matches the layer's name or a
    dotted suffix of it."""
    for pattern, value in patterns.items():
        if re.fullmatch(rf"(.*\.)?{pattern}", path):
            return float(value)
    return default


# ---------------------------------------------------------------------------
# conversion


def convert_adapter(
    folder: Path, base_gguf: Path, out: Path, cancel: threading.Event | None = None
) -> Path:
    """Write the PEFT LoRA adapter in `folder` as a GGUF LoRA adapter for the model in
    `base_gguf`, at `out` (written beside it and moved into place). Raises
    `LoraAdapterMismatchError` when a layer has no counterpart in the base model, and
    `LoraAdapterError` for an adapter or model it cannot convert."""
    import numpy as np

    from workbench.core.lora_io import adapter_layers, read_adapter_folder

    folder, out = Path(folder), Path(out)
    config, tensors = read_adapter_folder(folder)
    layers = adapter_layers(tensors, folder / WEIGHTS_FILE)
    base = _Base(Path(base_gguf))
    alpha = float(config["lora_alpha"])
    rslora = bool(config.get("use_rslora"))
    alphas = config.get("alpha_pattern") or {}
    written: list[tuple[str, Any, Any]] = []
    for path in sorted(layers, key=_natural):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"converting the adapter in {folder} was stopped")
        a, b = layers[path]
        name = base.names.get_name(path)
        if name is None or f"{name}.weight" not in base.shapes:
            raise LoraAdapterMismatchError(
                f"{folder}: the adapter changes layer {path!r}, which {base.path.name} "
                f"({base.arch}) has no tensor for"
            )
        target = f"{name}.weight"
        want = (int(a.shape[1]), int(b.shape[0]))
        if base.shapes[target][:2] != want:
            raise LoraAdapterMismatchError(
                f"{folder}: the adapter's layer {path!r} maps {want[0]} → {want[1]} features "
                f"but {target} in {base.path.name} maps {base.shapes[target][0]} → "
                f"{base.shapes[target][1]}: it was made for another base model"
            )
        a_np = a.double().numpy()
        b_np = b.double().numpy()
        rank = int(a.shape[0])
        layer_alpha = _pattern_value(alphas, path, alpha)
        peft_scale = layer_alpha / (math.sqrt(rank) if rslora else rank)
        factor = peft_scale * rank / alpha  # what llama.cpp's alpha / r misses
        if abs(factor - 1.0) > 1e-12:
            b_np = b_np * factor
        if base.arch in _PERMUTED_QK and name.endswith((".attn_q", ".attn_k")):
            heads = base.heads if name.endswith(".attn_q") else base.kv_heads
            if heads < 1 or b_np.shape[0] % (2 * heads):
                raise LoraAdapterError(
                    f"{base.path.name}: cannot reorder {target}'s {b_np.shape[0]} rows into "
                    f"{heads} heads"
                )
            b_np = _permute_rows(b_np, heads)
        written.append(
            (
                target,
                np.ascontiguousarray(a_np, dtype=np.float32),
                np.ascontiguousarray(b_np, dtype=np.float32),
            )
        )
    _write(out, base.arch, alpha, source_tag(folder), written)
    return out


def _natural(path: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]


def _write(
    out: Path, arch: str, alpha: float, tag: str, tensors: list[tuple[str, Any, Any]]
) -> None:
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(temp, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(SOURCE_KEY, tag)
        for target, a, b in tensors:
            writer.add_tensor(f"{target}.lora_a", a)
            writer.add_tensor(f"{target}.lora_b", b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)


def read_source_tag(path: Path) -> str | None:
    """The `SOURCE_KEY` of a GGUF adapter file, or None (no file, another file, damaged)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        found = reader.fields.get(SOURCE_KEY)
        return None if found is None else str(found.contents())
    except Exception:  # missing, truncated: it is made again
        return None


def gguf_adapter(
    library: Library, adapter: LoraAdapter, base_gguf: Path, cancel: threading.Event | None = None
) -> Path:
    """The library adapter as a GGUF LoRA adapter for `base_gguf`: converted once and
    kept in the adapter's folder, made again when the adapter's files changed."""
    folder = library.lora_adapter_path(adapter)
    out = folder / GGUF_FILE
    try:
        tag = source_tag(folder)
    except OSError as exc:
        raise LoraAdapterError(f"{folder}: the adapter's files cannot be read: {exc}") from None
    if out.is_file() and read_source_tag(out) == tag:
        return out
    try:
        return convert_adapter(folder, base_gguf, out, cancel)
    except OSError as exc:
        raise LoraAdapterError(f"{out}: cannot write the llama.cpp adapter: {exc}") from None


__all__ = ["GGUF_FILE", "convert_adapter", "gguf_adapter", "read_source_tag", "source_tag"]
