"""LoRA adapters on disk: PEFT adapter folders in and out, the library's adapters, and
an adapter applied to a loaded transformers model.

A PEFT LoRA adapter (PEFT 0.21) is a folder holding

* `adapter_config.json`: a `LoraConfig` as PEFT writes it (`peft_type` "LORA",
  `task_type` "CAUSAL_LM", `r`, `lora_alpha`, `lora_dropout`, `target_modules`, ...);
* `adapter_model.safetensors`: for each adapted layer `<path>` two tensors,
  `base_model.model.<path>.lora_A.weight` [r, in_features] and `...lora_B.weight`
  [out_features, r], where `<path>` is the layer's name in the base model.

That is what `PeftModel.save_pretrained` writes and `PeftModel.from_pretrained` loads;
the library keeps exactly such a folder per adapter (`lora_adapters/<id>/`). Import
reads only safetensors and never unpickles (`adapter_model.bin` is refused). An
adapter whose layers the base model does not have, or has with other shapes, is
refused as made for another model; one trained here also records the base model's
hash, which must match the loaded model's (`Backend.model_hash`) to run it.

torch, peft, safetensors and transformers are imported lazily.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.backends.base import BackendError
from workbench.core.fsutil import fsync_dir
from workbench.core.models import LoraAdapter, LoraSettings, ModelSpec, new_id
from workbench.core.peft_io import (
    CONFIG_FILE,
    PICKLE_WEIGHTS_FILE,
    WEIGHTS_FILE,
    _check_target,
    _fsync_file,
    _move_into_place,
    read_adapter_config,
)

if TYPE_CHECKING:
    from workbench.core.backends.base import Backend
    from workbench.core.library import Library

PEFT_TYPE = "LORA"
TASK_TYPE = "CAUSAL_LM"
KEY_PREFIX = "base_model.model."
_PARTS = (".lora_A.weight", ".lora_B.weight")
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


class LoraAdapterError(BackendError):
    """A folder is not a usable PEFT LoRA adapter, or an adapter cannot run here; the
    message names the file, field or layer and what to do."""


class LoraAdapterMismatchError(LoraAdapterError):
    """An adapter was made for another base model (other layers, shapes or weights)."""


# ---------------------------------------------------------------------------
# writing a PEFT folder


def adapter_files(state: Mapping[str, Any], peft_config: Any) -> dict[str, bytes]:
    """The files of a PEFT adapter folder: `adapter_config.json` as PEFT's own writer
    makes it, and the tensors (PEFT's saved keys) as safetensors."""
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    with tempfile.TemporaryDirectory() as folder:
        peft_config.save_pretrained(folder)  # PEFT's writer: the JSON PEFT reads back
        config = (Path(folder) / CONFIG_FILE).read_bytes()
    return {CONFIG_FILE: config, WEIGHTS_FILE: bytes(save(tensors, metadata={"format": "pt"}))}


def write_folder(files: Mapping[str, bytes], out_dir: Path, overwrite: bool = False) -> Path:
    """Write an adapter folder's files at `out_dir`: built beside it and moved into
    place, so a crash never leaves a half-written adapter; an existing non-empty folder
    is replaced only with `overwrite=True`."""
    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
            _fsync_file(staging / name)
        fsync_dir(staging)
        _move_into_place(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(out_dir.parent)
    return out_dir


def write_adapter_folder(
    state: Mapping[str, Any], peft_config: Any, out_dir: Path, overwrite: bool = False
) -> Path:
    """A trained adapter (its tensors and `peft.LoraConfig`) as a PEFT folder."""
    return write_folder(adapter_files(state, peft_config), out_dir, overwrite)


def export_lora_adapter(
    library: Library, adapter: LoraAdapter, out_dir: Path, overwrite: bool = False
) -> Path:
    """Copy a library adapter's PEFT folder to `out_dir` (checked first)."""
    source = library.lora_adapter_path(adapter)
    read_adapter_folder(source)  # a damaged stored adapter is reported, not copied
    files = {name: (source / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}
    return write_folder(files, out_dir, overwrite)


# ---------------------------------------------------------------------------
# reading a PEFT folder


def read_adapter_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A PEFT LoRA adapter's config and tensors (torch, CPU), checked: only safetensors
    weights are read, a pickle checkpoint is refused without being opened, and anything
    malformed raises `LoraAdapterError` naming the file and the field or tensor."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LoraAdapterError(f"{folder}: not a folder (expected a PEFT adapter folder)")
    config = _read_config(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        if (folder / PICKLE_WEIGHTS_FILE).exists():
            raise LoraAdapterError(
                f"{folder / PICKLE_WEIGHTS_FILE}: the adapter's weights are a pickle file, "
                "which can run arbitrary code when loaded and is refused; save it as "
                f"{WEIGHTS_FILE} (PeftModel.save_pretrained(..., safe_serialization=True))"
            )
        raise LoraAdapterError(f"{weights}: file not found (the adapter's weights)")
    tensors = _read_tensors(weights)
    layers = adapter_layers(tensors, weights)
    ranks = config.get("rank_pattern") or {}
    for path, (a, _b) in layers.items():
        if not ranks and int(a.shape[0]) != config["r"]:
            raise LoraAdapterError(
                f"{weights}: layer {path!r} has rank {a.shape[0]} but {CONFIG_FILE} says r="
                f"{config['r']}"
            )
    return config, tensors


def adapter_layers(tensors: Mapping[str, Any], source: Path | str) -> dict[str, tuple[Any, Any]]:
    """{layer path in the base model: (lora_A, lora_B)}, checked for pairs and shapes."""
    import torch

    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        part = next((p for p in _PARTS if key.endswith(p)), None)
        if part is None or not key.startswith(KEY_PREFIX):
            raise LoraAdapterError(
                f"{source}: tensor {key!r} is not a LoRA weight ({KEY_PREFIX}<layer>"
                ".lora_A.weight / .lora_B.weight); DoRA, trained biases and embedding "
                "adapters are not supported"
            )
        path = key[len(KEY_PREFIX) : -len(part)]
        pairs.setdefault(path, {})[part] = tensor
        if tensor.ndim != 2:
            raise LoraAdapterError(
                f"{source}: tensor {key!r} has shape {list(tensor.shape)}, expected 2-D"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise LoraAdapterError(f"{source}: tensor {key!r} contains NaN or infinite values")
    if not pairs:
        raise LoraAdapterError(f"{source}: no LoRA tensors in the file")
    layers: dict[str, tuple[Any, Any]] = {}
    for path, found in pairs.items():
        if set(found) != set(_PARTS):
            missing = next(p for p in _PARTS if p not in found)
            raise LoraAdapterError(f"{source}: layer {path!r} has no {missing[1:]} tensor")
        a, b = found[_PARTS[0]], found[_PARTS[1]]
        if a.shape[0] != b.shape[1]:
            raise LoraAdapterError(
                f"{source}: layer {path!r}: lora_A has rank {a.shape[0]} but lora_B {b.shape[1]}"
            )
        layers[path] = (a, b)
    return layers


def _read_config(path: Path) -> dict[str, Any]:
    return check_config(read_adapter_config(path, LoraAdapterError), path)


def check_config(config: Any, path: Path | str) -> dict[str, Any]:
    """A PEFT LoRA `adapter_config.json`'s content, checked: a LoRA for a causal LM with
    a positive rank and alpha, no DoRA, no trained biases (`path` names it in errors)."""
    if not isinstance(config, dict):
        raise LoraAdapterError(f"{path}: expected a JSON object, got {type(config).__name__}")

    def field_error(field: str, problem: str) -> LoraAdapterError:
        return LoraAdapterError(f"{path}: field {field!r} {problem}")

    peft_type = config.get("peft_type")
    if peft_type != PEFT_TYPE:
        hint = (
            "; a prompt-tuning adapter is a soft prompt: `workbench soft import`"
            if peft_type == "PROMPT_TUNING"
            else ""
        )
        raise field_error("peft_type", f"is {peft_type!r}; only {PEFT_TYPE!r} adapters{hint}")
    task_type = config.get("task_type")
    if task_type not in (None, TASK_TYPE):
        raise field_error(
            "task_type", f"is {task_type!r}; only {TASK_TYPE!r} (decoder-only) is supported"
        )
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise field_error("r", f"must be a positive integer, got {rank!r}")
    alpha = config.get("lora_alpha")
    if not _positive(alpha):
        raise field_error("lora_alpha", f"must be a positive number, got {alpha!r}")
    for field in ("rank_pattern", "alpha_pattern"):
        patterns = config.get(field) or {}
        if not isinstance(patterns, dict) or not all(
            isinstance(k, str) and _positive(v) for k, v in patterns.items()
        ):
            raise field_error(field, "must map layer names to positive numbers")
    if config.get("use_dora"):
        raise field_error("use_dora", "is true; DoRA adapters are not supported")
    if config.get("bias", "none") != "none":
        raise field_error("bias", f"is {config.get('bias')!r}; only 'none' is supported")
    return config


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _read_tensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors: dict[str, Any] = {}
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                dtype = str(handle.get_slice(key).get_dtype())
                if dtype not in _FLOAT_DTYPES:
                    raise LoraAdapterError(
                        f"{path}: tensor {key!r} has dtype {dtype}, expected a float type"
                    )
                tensors[key] = handle.get_tensor(key).float()
    except LoraAdapterError:
        raise
    except Exception as exc:  # SafetensorError and friends: a corrupt or truncated file
        raise LoraAdapterError(f"{path}: not a readable safetensors file: {exc}") from None
    return tensors


def settings_from_config(config: Mapping[str, Any], layers: Mapping[str, Any]) -> LoraSettings:
    """The `LoraSettings` a PEFT config describes (the target modules as the layers'
    names when the config gives a pattern)."""
    targets = config.get("target_modules")
    if isinstance(targets, list) and all(isinstance(t, str) for t in targets):
        names = sorted(targets)
    else:
        names = sorted({path.rsplit(".", 1)[-1] for path in layers})
    dropout = config.get("lora_dropout", 0.0)
    return LoraSettings(
        rank=int(config["r"]),
        alpha=float(config["lora_alpha"]),
        dropout=float(dropout) if isinstance(dropout, int | float) and 0 <= dropout < 1 else 0.0,
        target_modules=names,
    )


# ---------------------------------------------------------------------------
# matching an adapter to a model


def check_fits_model(
    layers: Mapping[str, tuple[Any, Any]], model: Any, model_name: str, source: Path | str = ""
) -> None:
    """Refuse an adapter whose layers `model` lacks or has with other shapes."""
    modules = dict(model.named_modules())
    where = f"{source}: " if source else ""
    for path, (a, b) in layers.items():
        module = modules.get(path)
        if module is None:
            raise LoraAdapterMismatchError(
                f"{where}the adapter changes layer {path!r}, which model {model_name!r} does "
                "not have: it was made for another base model"
            )
        in_features, out_features = _features(module)
        if (a.shape[1], b.shape[0]) != (in_features, out_features):
            raise LoraAdapterMismatchError(
                f"{where}the adapter's layer {path!r} maps {a.shape[1]} → {b.shape[0]} "
                f"features but model {model_name!r} has {in_features} → {out_features}: it "
                "was made for another base model"
            )


def _features(module: Any) -> tuple[int, int]:
    in_features = getattr(module, "in_features", None)
    out_features = getattr(module, "out_features", None)
    if isinstance(in_features, int) and isinstance(out_features, int):
        return in_features, out_features
    weight = getattr(module, "weight", None)
    if weight is not None and weight.ndim == 2 and hasattr(module, "nf"):  # Conv1D: [in, out]
        return int(weight.shape[0]), int(weight.shape[1])
    if weight is not None and weight.ndim == 2:
        return int(weight.shape[1]), int(weight.shape[0])
    return -1, -1


def empty_model(folder: Path) -> Any:
    """A model with `folder`'s architecture and no weights (on the meta device): its
    layer names and shapes, for checking an adapter without loading the model."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise LoraAdapterError(f"cannot read the base model's config in {folder}: {exc}") from None
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, trust_remote_code=False)


# ---------------------------------------------------------------------------
# the library


def import_lora_adapter(
    library: Library,
    folder: Path,
    spec: ModelSpec,
    prompt_id: str | None = None,
    name: str | None = None,
    cancel: threading.Event | None = None,
) -> LoraAdapter:
    """Check a PEFT LoRA adapter folder against `spec` (the base model it was made for:
    its layers and shapes) and add it to the library, linked to a prompt when given."""
    from workbench.core.graduation import model_folder
    from workbench.core.softprompt import model_hash_for_spec

    config, tensors = read_adapter_folder(folder)
    layers = adapter_layers(tensors, Path(folder) / WEIGHTS_FILE)
    check_fits_model(layers, empty_model(model_folder(spec, cancel)), spec.name, folder)
    adapter_id = new_id()
    adapter = LoraAdapter(
        id=adapter_id,
        name=name or f"{Path(folder).name} (PEFT LoRA adapter)",
        prompt_id=prompt_id,
        base_model=spec.id,
        base_model_hash=model_hash_for_spec(spec, cancel),
        lora=settings_from_config(config, layers),
        trainable_parameters=sum(int(t.numel()) for t in tensors.values()),
        folder=adapter_id,
    )
    files = {name: (Path(folder) / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}
    library.save_lora_adapter(adapter, files)
    return adapter


# ---------------------------------------------------------------------------
# running with an adapter


@dataclass
class AppliedAdapter:
    """An adapter applied to a loaded model (PEFT's LoRA layers injected into a
    transformers model, never merged; set on a llama.cpp context); `remove()` takes it
    out again, leaving the model exactly as it was."""

    adapter: LoraAdapter
    peft_model: Any
    backend: Any = None  # a llama.cpp backend the GGUF adapter is set on

    def remove(self) -> None:
        if self.backend is not None:
            self.backend.set_lora_adapter(None)
            self.backend = None
        if self.peft_model is None:
            return
        # the LoRA layers give back the base layers they wrap, whose weights were never
        # written to: bit-identical to before (merging and unmerging would leave drift)
        self.peft_model.unload()
        self.peft_model = None


def runs_adapters(backend_name: str, spec: ModelSpec) -> bool:
    """Whether a LoRA adapter runs on this backend with the model `spec`: transformers
    (PEFT's LoRA layers in the model) and, for a GGUF model, llama.cpp (the adapter as a
    GGUF LoRA file)."""
    return backend_name == "transformers" or (backend_name == "llama.cpp" and spec.source == "gguf")


def check_compatible(adapter: LoraAdapter, backend: Backend) -> None:
    """Refuse an adapter on a backend that cannot run one (`runs_adapters`) or for
    another base model than the loaded one (by the weights' hash, as soft prompts)."""
    if not runs_adapters(backend.name, backend.spec):
        raise LoraAdapterError(
            f"LoRA adapters run on the transformers and llama.cpp backends; model "
            f"{backend.spec.name!r} is loaded on {backend.name}"
        )
    loaded = backend.model_hash
    if adapter.base_model_hash != loaded:
        raise LoraAdapterMismatchError(
            f"LoRA adapter {adapter.name!r} was made for model {adapter.base_model!r} "
            f"(weights {adapter.base_model_hash[:12]}) but the loaded model is "
            f"{backend.spec.name!r} (weights {loaded[:12]}); load {adapter.base_model!r} "
            "to use it"
        )


def apply_adapter(library: Library, adapter: LoraAdapter, backend: Backend) -> AppliedAdapter:
    """Put a library adapter into the loaded transformers model (PEFT's LoRA layers
    around the base layers, unmerged: each call adds the low-rank update, and the base
    weights are never written), or set it (converted to GGUF once,
    `lora_gguf.gguf_adapter`) on the loaded llama.cpp model, after checking that it was
    made for this model; the backend then runs with it until `remove()`."""
    from peft import PeftModel

    check_compatible(adapter, backend)
    if backend.name == "llama.cpp":
        from workbench.core.lora_gguf import gguf_adapter

        path = gguf_adapter(library, adapter, Path(str(backend.spec.path)))
        backend.set_lora_adapter(path)  # type: ignore[attr-defined]
        return AppliedAdapter(adapter, None, backend)
    folder = library.lora_adapter_path(adapter)
    _config, tensors = read_adapter_folder(folder)  # safetensors only, checked
    model = getattr(backend, "model", None)
    if model is None:
        raise LoraAdapterError(f"model {backend.spec.name!r} is not loaded")
    check_fits_model(adapter_layers(tensors, folder), model, backend.spec.name, folder)
    try:
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise LoraAdapterError(f"PEFT could not load the adapter in {folder}: {exc}") from None
    return AppliedAdapter(adapter, peft_model)


def adapter_applier(
    library: Library, adapters: Iterable[LoraAdapter]
) -> Callable[[str, Backend], AppliedAdapter]:
    """`apply_adapter` by adapter id, as `evaluation.evaluate`'s `adapter_for` takes it
    (the method table and the held-out comparison pass one over their adapters)."""
    by_id = {adapter.id: adapter for adapter in adapters}
    return lambda adapter_id, backend: apply_adapter(library, by_id[adapter_id], backend)


__all__ = [
    "AppliedAdapter",
    "LoraAdapterError",
    "LoraAdapterMismatchError",
    "adapter_applier",
    "adapter_files",
    "apply_adapter",
    "check_compatible",
    "check_config",
    "export_lora_adapter",
    "import_lora_adapter",
    "read_adapter_folder",
    "write_adapter_folder",
]
