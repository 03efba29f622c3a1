"""Soft prompts (Lester et al. 2021 prompt tuning): stored tensors and model matching.

A soft prompt is a float32 array of shape [N, d_model]: N "virtual token" input
embeddings that a backend feeds right before the first token of the chat-templated
text (the prefix of the whole input, as PEFT does). The virtual tokens count towards
the context length.

The tensor is stored as safetensors under the single key `SOFT_PROMPT_KEY`; the
metadata (`models.SoftPrompt`) records the base model's hash, which must match the
loaded model's `Backend.model_hash` for the soft prompt to be used.

Nothing heavy is imported here at module level (numpy and safetensors lazily).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.backends.base import BackendError
from workbench.core.fsutil import atomic_write_bytes, file_sha256
from workbench.core.models import ModelSpec, SoftPrompt

if TYPE_CHECKING:
    from workbench.core.backends.base import Backend

SOFT_PROMPT_KEY = "prompt_embeddings"

SoftPromptArray = Any
"""A numpy float32 array of shape [N, d_model] (numpy is untyped in this project)."""


class SoftPromptError(BackendError):
    """A soft prompt tensor is malformed or cannot be used."""


class SoftPromptMismatchError(SoftPromptError):
    """A soft prompt was trained for another model (other weights or hidden size)."""


# -- tensors ---------------------------------------------------------------------


def as_soft_prompt_array(array: Any) -> SoftPromptArray:
    """`array` as a C-contiguous float32 numpy array [N, d]; refuses other shapes and
    non-finite values. Accepts numpy arrays, nested lists and CPU torch tensors."""
    import numpy as np

    detach = getattr(array, "detach", None)
    if callable(detach):  # a torch tensor
        array = detach().float().cpu().numpy()
    result = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    if result.ndim != 2 or result.shape[0] < 1 or result.shape[1] < 1:
        raise SoftPromptError(
            f"a soft prompt must be a 2-D array [virtual tokens, hidden size], "
            f"not shape {tuple(result.shape)}"
        )
    if not np.isfinite(result).all():
        raise SoftPromptError("the soft prompt contains NaN or infinite values")
    return result


def soft_prompt_bytes(array: Any) -> bytes:
    """The safetensors file content for a soft prompt tensor."""
    from safetensors.numpy import save

    return bytes(save({SOFT_PROMPT_KEY: as_soft_prompt_array(array)}))


def save_soft_prompt_tensor(array: Any, path: Path) -> None:
    """Write a soft prompt tensor as safetensors, atomically."""
    atomic_write_bytes(Path(path), soft_prompt_bytes(array))


def load_soft_prompt_tensor(path: Path) -> SoftPromptArray:
    """Read a soft prompt tensor: numpy float32 [N, d]."""
    from safetensors.numpy import load

    path = Path(path)
    try:
        tensors = load(path.read_bytes())
    except OSError as exc:
        raise SoftPromptError(f"cannot read soft prompt tensor {path}: {exc}") from None
    except Exception as exc:  # safetensors raises its own error types
        raise SoftPromptError(f"{path.name} is not a valid safetensors file: {exc}") from None
    if SOFT_PROMPT_KEY not in tensors:
        found = ", ".join(sorted(tensors)) or "none"
        raise SoftPromptError(
            f"{path.name} holds no {SOFT_PROMPT_KEY!r} tensor (tensors found: {found})"
        )
    return as_soft_prompt_array(tensors[SOFT_PROMPT_KEY])


# -- matching a soft prompt to the loaded model ------------------------------------


def model_hash_for_spec(spec: ModelSpec, cancel: threading.Event | None = None) -> str:
    """The identity of a model's weights: the SHA-256 of a GGUF file, or for a Hugging
    Face folder a SHA-256 over config.json and the weight files' names and sizes.
    A set `cancel` stops the hashing of a big GGUF file (`fsutil.Cancelled`)."""
    if spec.source == "openai" or not spec.path:
        raise SoftPromptError(
            f"model {spec.name!r} is not a local model file or folder; "
            "soft prompts need a local GGUF file or Hugging Face folder"
        )
    path = Path(spec.path)
    if spec.source == "gguf" or path.is_file():
        return file_sha256(path, cancel)
    digest = hashlib.sha256()
    config = path / "config.json"
    digest.update(b"config.json\0")
    digest.update(config.read_bytes() if config.is_file() else b"")
    weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    for weight in weights:
        digest.update(f"\0{weight.name}\0{weight.stat().st_size}".encode())
    return digest.hexdigest()


def check_array_fits(array: Any, backend: Backend) -> SoftPromptArray:
    """`array` validated (see `as_soft_prompt_array`) against the loaded model's hidden
    size; raises SoftPromptMismatchError when the widths differ."""
    result = as_soft_prompt_array(array)
    hidden = backend.hidden_size
    if hidden is not None and result.shape[1] != hidden:
        raise SoftPromptMismatchError(
            f"the soft prompt's embeddings are {result.shape[1]} wide but model "
            f"{backend.spec.name!r} has a hidden size of {hidden}; "
            "it was trained for another model"
        )
    return result


def check_compatible(meta: SoftPrompt, backend: Backend, array: Any = None) -> None:
    """Refuse a soft prompt trained on another base model than the loaded one: the
    weights' hash and the hidden size must match (and the tensor, if given, its
    metadata's shape)."""
    loaded = backend.model_hash
    if meta.base_model_hash != loaded:
        raise SoftPromptMismatchError(
            f"soft prompt {meta.name!r} was trained on model {meta.base_model!r} "
            f"(weights {meta.base_model_hash[:12]}) but the loaded model is "
            f"{backend.spec.name!r} (weights {loaded[:12]}); load {meta.base_model!r} "
            "to use it"
        )
    hidden = backend.hidden_size
    if meta.hidden_size is not None and hidden is not None and meta.hidden_size != hidden:
        raise SoftPromptMismatchError(
            f"soft prompt {meta.name!r} has a hidden size of {meta.hidden_size} "
            f"(trained on model {meta.base_model!r}) but the loaded model "
            f"{backend.spec.name!r} has {hidden}"
        )
    if array is not None:
        result = check_array_fits(array, backend)
        if result.shape[0] != meta.num_virtual_tokens:
            raise SoftPromptMismatchError(
                f"soft prompt {meta.name!r} should have {meta.num_virtual_tokens} virtual "
                f"tokens but its tensor has {result.shape[0]}"
            )
