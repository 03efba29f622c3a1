"""Soft prompts in and out of PEFT's prompt-tuning adapter format, and their nearest tokens.

A PEFT prompt-tuning adapter (PEFT 0.21) is a folder holding

* `adapter_config.json`: a `PromptTuningConfig` as PEFT writes it (`peft_type`
  "PROMPT_TUNING", `task_type` "CAUSAL_LM", `num_virtual_tokens`, `token_dim`,
  `num_transformer_submodules`, ...), and
* `adapter_model.safetensors`: one tensor under the key `"prompt_embeddings"` of shape
  `[num_virtual_tokens * num_transformer_submodules, token_dim]` (metadata
  `{"format": "pt"}`). `PeftModel.from_pretrained` loads it with
  `prompt_encoder[adapter].embedding.load_state_dict({"weight": t}, strict=True)`, so the
  shape must match exactly; for a causal LM `num_transformer_submodules` is 1.

That tensor is exactly our soft prompt: the virtual tokens' input embeddings, which PEFT
prepends to the token embeddings. Export builds the config with the real
`peft.PromptTuningConfig` so its fields are the ones PEFT expects; import reads only
safetensors and never unpickles (`adapter_model.bin` is refused).

torch, peft and transformers are imported lazily (inside functions), numpy and
safetensors too, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.fsutil import fsync_dir
from workbench.core.models import ModelSpec, SoftPrompt, new_id

if TYPE_CHECKING:
    import numpy as np

    from workbench.core.library import Library

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_WEIGHTS_FILE = "adapter_model.bin"
TENSOR_KEY = "prompt_embeddings"
PEFT_TYPE = "PROMPT_TUNING"
TASK_TYPE = "CAUSAL_LM"

_FLOAT_DTYPES = ("F16", "F32", "F64")  # safetensors dtypes numpy reads directly; BF16 by hand


class PeftAdapterError(ValueError):
    """A folder is not a usable PEFT prompt-tuning adapter; the message names file and field."""


# ---------------------------------------------------------------------------
# export


def export_peft_adapter(
    embeddings: np.ndarray,
    meta: SoftPrompt,
    base_model_path: str,
    out_dir: Path,
    *,
    overwrite: bool = False,
    tokenizer_name_or_path: str | None = None,
    num_layers: int | None = None,
    num_attention_heads: int | None = None,
) -> Path:
    """Write `embeddings` ([N, d] float32) as a PEFT prompt-tuning adapter folder at `out_dir`.

    `base_model_path` is the Hugging Face model (folder or hub name) the prompt was trained
    on; it goes into `base_model_name_or_path` and, unless given, `tokenizer_name_or_path`.
    When it is a local folder with a `config.json`, the layer and head counts are read from
    it and its hidden size must equal d. The folder is built beside `out_dir` and moved into
    place with `os.replace`, so a crash never leaves a half-written adapter; an existing
    non-empty `out_dir` is replaced only with `overwrite=True`.
    """
    import numpy as np

    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"soft prompt embeddings must be [N, d], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"soft prompt embeddings must be floating point, got {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError("soft prompt embeddings contain NaN or infinite values")
    count, dim = (int(s) for s in array.shape)
    if meta.num_virtual_tokens != count:
        raise ValueError(
            f"soft prompt {meta.name!r} says num_virtual_tokens={meta.num_virtual_tokens} "
            f"but the tensor has {count} rows"
        )
    if meta.hidden_size is not None and meta.hidden_size != dim:
        raise ValueError(
            f"soft prompt {meta.name!r} says hidden_size={meta.hidden_size} "
            f"but the tensor has {dim} columns"
        )
    if not base_model_path:
        raise ValueError("base_model_path is required (the Hugging Face model of the prompt)")
    dims = _base_model_dims(base_model_path)
    if dims.get("hidden_size") not in (None, dim):
        raise ValueError(
            f"the base model {base_model_path} has hidden size {dims['hidden_size']} "
            f"but the soft prompt's embeddings have {dim} columns"
        )
    if num_layers is None:
        num_layers = dims.get("num_layers")
    if num_attention_heads is None:
        num_attention_heads = dims.get("num_attention_heads")

    from peft import PromptTuningConfig

    init_text = meta.init_text or meta.train_config.init_text
    if meta.init == "text" and init_text:
        init: dict[str, Any] = {"prompt_tuning_init": "TEXT", "prompt_tuning_init_text": init_text}
    elif meta.init == "vocab":
        init = {"prompt_tuning_init": "SAMPLE_VOCAB"}
    else:
        init = {"prompt_tuning_init": "RANDOM"}
    config = PromptTuningConfig(
        task_type=TASK_TYPE,
        num_virtual_tokens=count,
        token_dim=dim,
        num_transformer_submodules=1,
        num_attention_heads=num_attention_heads,
        num_layers=num_layers,
        tokenizer_name_or_path=tokenizer_name_or_path or base_model_path,
        base_model_name_or_path=base_model_path,
        inference_mode=True,  # what PeftModel.save_pretrained writes
        **init,
    )

    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        config.save_pretrained(str(staging))  # PEFT's own writer: the JSON PEFT reads back
        save_file({TENSOR_KEY: array}, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            _fsync_file(staging / name)
        fsync_dir(staging)
        _move_into_place(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(out_dir.parent)
    return out_dir


def _base_model_dims(base_model_path: str) -> dict[str, int]:
    """hidden size, layer and head counts from a local model folder's config.json, if any."""
    config_path = Path(base_model_path) / "config.json"
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    text_config = config.get("text_config")
    if "hidden_size" not in config and isinstance(text_config, dict):
        config = text_config  # a multimodal model's language part
    found: dict[str, int] = {}
    for field, keys in (
        ("hidden_size", ("hidden_size", "n_embd", "d_model")),
        ("num_layers", ("num_hidden_layers", "n_layer", "num_layers")),
        ("num_attention_heads", ("num_attention_heads", "n_head", "num_heads")),
    ):
        for key in keys:
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                found[field] = value
                break
    return found


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise FileExistsError(f"{out_dir} exists and is not a folder; not replacing it")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass overwrite=True to replace it")


def _move_into_place(staging: Path, out_dir: Path, overwrite: bool) -> None:
    _check_target(out_dir, overwrite)  # again: the folder may have appeared meanwhile
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
        os.replace(staging, out_dir)
        return
    aside = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".old"))
    os.replace(out_dir, aside / "adapter")
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(aside / "adapter", out_dir)  # put the old adapter back
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


# ---------------------------------------------------------------------------
# import


def import_peft_adapter(folder: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a PEFT prompt-tuning adapter: its embeddings ([N, d] float32) and its config.

    Only safetensors weights are read; a pickle checkpoint (`adapter_model.bin`) is refused
    without being opened. Anything malformed raises `PeftAdapterError` naming the file and
    the field.
    """
    import numpy as np

    folder = Path(folder)
    if not folder.is_dir():
        raise PeftAdapterError(f"{folder}: not a folder (expected a PEFT adapter folder)")
    config = _read_config(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        if (folder / PICKLE_WEIGHTS_FILE).exists():
            raise PeftAdapterError(
                f"{folder / PICKLE_WEIGHTS_FILE}: the adapter's weights are a pickle file, which "
                "can run arbitrary code when loaded and is refused; convert it to "
                f"{WEIGHTS_FILE} (PeftModel.save_pretrained(..., safe_serialization=True))"
            )
        raise PeftAdapterError(f"{weights}: file not found (the adapter's weights)")
    array = _read_prompt_embeddings(weights)

    rows_expected = config["num_virtual_tokens"] * (config.get("num_transformer_submodules") or 1)
    if array.ndim != 2:
        raise PeftAdapterError(
            f"{weights}: tensor {TENSOR_KEY!r} has shape {list(array.shape)}, expected "
            "[num_virtual_tokens, token_dim]"
        )
    if array.shape[0] != rows_expected:
        raise PeftAdapterError(
            f"{weights}: tensor {TENSOR_KEY!r} has {array.shape[0]} rows but "
            f"{CONFIG_FILE} says num_virtual_tokens={config['num_virtual_tokens']}"
        )
    token_dim = config.get("token_dim")
    if token_dim is not None and array.shape[1] != token_dim:
        raise PeftAdapterError(
            f"{weights}: tensor {TENSOR_KEY!r} has {array.shape[1]} columns but "
            f"{CONFIG_FILE} says token_dim={token_dim}"
        )
    if not np.isfinite(array).all():
        raise PeftAdapterError(f"{weights}: tensor {TENSOR_KEY!r} contains NaN or infinite values")
    return array, config


def import_adapter_into_library(
    library: Library,
    folder: Path,
    spec: ModelSpec,
    prompt_id: str | None = None,
    name: str | None = None,
) -> SoftPrompt:
    """Read a PEFT prompt-tuning adapter and save it in the library as a soft prompt for
    `spec` (the base model it was trained on), linked to a prompt when given."""
    from workbench.core.softprompt import model_hash_for_spec, soft_prompt_bytes

    tensor, config = import_peft_adapter(folder)
    soft_id = new_id()
    init = config.get("prompt_tuning_init")
    init_text = config.get("prompt_tuning_init_text")
    soft = SoftPrompt(
        id=soft_id,
        name=name or f"{Path(folder).name} (PEFT adapter)",
        prompt_id=prompt_id,
        base_model=spec.id,
        base_model_hash=model_hash_for_spec(spec),
        num_virtual_tokens=int(tensor.shape[0]),
        hidden_size=int(tensor.shape[1]),
        init="text" if init == "TEXT" else "random",
        init_text=init_text if isinstance(init_text, str) else None,
        tensor_file=f"{soft_id}.safetensors",
    )
    library.save_soft_prompt(soft, soft_prompt_bytes(tensor))
    return soft


def read_adapter_config(path: Path, error: type[Exception]) -> Any:
    """An adapter folder's `adapter_config.json`, parsed; every failure (missing,
    unreadable, not JSON) is an `error` naming the file. The caller checks the content."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found (the adapter's config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None


def _read_config(path: Path) -> dict[str, Any]:
    config = read_adapter_config(path, PeftAdapterError)
    if not isinstance(config, dict):
        raise PeftAdapterError(f"{path}: expected a JSON object, got {type(config).__name__}")

    def field_error(field: str, problem: str) -> PeftAdapterError:
        return PeftAdapterError(f"{path}: field {field!r} {problem}")

    peft_type = config.get("peft_type")
    if peft_type != PEFT_TYPE:
        raise field_error(
            "peft_type",
            f"is {peft_type!r}; only {PEFT_TYPE!r} adapters (soft prompts) can be imported",
        )
    task_type = config.get("task_type")
    if task_type != TASK_TYPE:
        raise field_error(
            "task_type", f"is {task_type!r}; only {TASK_TYPE!r} (decoder-only) is supported"
        )
    for field, required in (("num_virtual_tokens", True), ("token_dim", False)):
        value = config.get(field)
        if value is None and not required:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise field_error(field, f"must be a positive integer, got {value!r}")
    submodules = config.get("num_transformer_submodules")
    if submodules not in (None, 1):
        raise field_error(
            "num_transformer_submodules",
            f"is {submodules!r}; a causal LM's prompt-tuning adapter has 1",
        )
    return config


def _read_prompt_embeddings(path: Path) -> np.ndarray:
    import numpy as np
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            keys = list(handle.keys())
            if TENSOR_KEY not in keys:
                raise PeftAdapterError(
                    f"{path}: no tensor {TENSOR_KEY!r} (found: {', '.join(keys) or 'none'})"
                )
            view = handle.get_slice(TENSOR_KEY)
            dtype = str(view.get_dtype())
            shape = [int(s) for s in view.get_shape()]
            if dtype in _FLOAT_DTYPES:
                array = handle.get_tensor(TENSOR_KEY)
            elif dtype == "BF16":
                array = _read_bf16(path, TENSOR_KEY, shape)
            else:
                raise PeftAdapterError(
                    f"{path}: tensor {TENSOR_KEY!r} has dtype {dtype}, expected a float type"
                )
    except PeftAdapterError:
        raise
    except Exception as exc:  # SafetensorError and friends: a corrupt or truncated file
        raise PeftAdapterError(f"{path}: not a readable safetensors file: {exc}") from None
    result: np.ndarray = np.array(array, dtype=np.float32)  # a writable float32 copy
    return result


def _read_bf16(path: Path, key: str, shape: list[int]) -> np.ndarray:
    """numpy has no bfloat16: widen the raw bits (bf16 is the top half of a float32)."""
    import numpy as np

    with path.open("rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
        start, end = header[key]["data_offsets"]
        handle.seek(8 + header_len + start)
        raw = handle.read(end - start)
    if len(raw) != 2 * math.prod(shape):
        raise PeftAdapterError(f"{path}: tensor {key!r} is truncated")
    bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    result: np.ndarray = bits.view(np.float32).reshape(shape)
    return result


def placement_caveat(soft: SoftPrompt) -> str:
    """What an exported adapter does differently: PEFT puts the virtual tokens before the
    whole input, which is this soft prompt's own layout only for the `start` placement."""
    if soft.placement == "start":
        return ""
    where = (
        "in place of the system message"
        if soft.placement == "replace"
        else ("after the system message")
    )
    return (
        f"PEFT puts the virtual tokens before the whole input; this soft prompt was trained "
        f"{where}, so under PEFT it runs in a layout it was not trained in"
    )


# ---------------------------------------------------------------------------
# interpretability


def nearest_tokens(
    embeddings: np.ndarray,
    embedding_matrix: np.ndarray,
    decode: Callable[[int], str],
    k: int = 5,
    *,
    chunk_size: int = 8192,
) -> list[list[tuple[str, float]]]:
    """For each virtual token, the `k` vocabulary tokens whose input embeddings have the
    highest cosine similarity, best first (Lester et al. 2021, §7).

    `embedding_matrix` is the model's [V, d] input-embedding matrix; it is scanned in
    chunks of `chunk_size` rows so only a [N, chunk] block of similarities is in memory.
    Ties go to the lower token id. A zero vector has similarity 0 to everything.
    """
    import numpy as np

    prompts = np.asarray(embeddings, dtype=np.float64)
    vocab = np.asarray(embedding_matrix)
    if prompts.ndim != 2 or vocab.ndim != 2:
        raise ValueError(
            f"expected [N, d] embeddings and a [V, d] matrix, got {prompts.shape} and {vocab.shape}"
        )
    if prompts.shape[1] != vocab.shape[1]:
        raise ValueError(
            f"embedding width {prompts.shape[1]} does not match the matrix's {vocab.shape[1]}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    count, size = prompts.shape[0], vocab.shape[0]
    k = min(k, size)
    if count == 0 or k == 0:
        return [[] for _ in range(count)]

    tiny = np.finfo(np.float64).tiny
    prompts = prompts / np.maximum(np.linalg.norm(prompts, axis=1, keepdims=True), tiny)
    best_sims = np.full((count, 0), -np.inf)
    best_ids = np.zeros((count, 0), dtype=np.int64)
    for start in range(0, size, chunk_size):
        block = np.asarray(vocab[start : start + chunk_size], dtype=np.float64)
        block = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), tiny)
        sims = prompts @ block.T  # [N, chunk]
        ids = np.broadcast_to(np.arange(start, start + block.shape[0]), sims.shape)
        if sims.shape[1] > k:
            # each chunk's top k, ties at the k-th value going to the lower id: rank every
            # entry 0 (above the k-th value), 1 (equal) or 2 (below) and take the first k
            # in (rank, id) order; a stable sort of int8 ranks is a linear radix sort
            kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k]
            rank = (sims < kth).astype(np.int8) + (sims <= kth).astype(np.int8)
            top = np.argsort(rank, axis=1, kind="stable")[:, :k]
            sims = np.take_along_axis(sims, top, axis=1)
            ids = np.take_along_axis(ids, top, axis=1)
        best_sims = np.concatenate([best_sims, sims], axis=1)
        best_ids = np.concatenate([best_ids, ids], axis=1)
        order = np.lexsort((best_ids, -best_sims), axis=1)[:, :k]  # by sim desc, then id
        best_sims = np.take_along_axis(best_sims, order, axis=1)
        best_ids = np.take_along_axis(best_ids, order, axis=1)
    return [
        [(decode(int(i)), float(s)) for i, s in zip(id_row, sim_row, strict=True)]
        for id_row, sim_row in zip(best_ids, best_sims, strict=True)
    ]


__all__ = [
    "CONFIG_FILE",
    "TENSOR_KEY",
    "WEIGHTS_FILE",
    "PeftAdapterError",
    "export_peft_adapter",
    "import_peft_adapter",
    "nearest_tokens",
    "placement_caveat",
]
