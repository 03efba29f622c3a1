"""Nearest vocabulary tokens of a soft prompt's virtual tokens (Lester et al. 2021, §7),
the cheap way: the embedding matrix read from the model's safetensors and its tokenizer,
never the whole model. The Graduate panel and `workbench soft nearest` both call
`nearest_for_soft_prompt`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.core.models import ModelSpec

NEAREST_K = 5

_EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "tok_embeddings", "embed_in")


def find_embedding_key(shapes: dict[str, list[int]], hidden: int, vocab: int | None) -> str:
    """The input-embedding matrix among a checkpoint's tensors: a [vocab, hidden] tensor,
    preferring the usual embedding names over a (tied) output head."""
    candidates = [k for k, s in shapes.items() if len(s) == 2 and s[1] == hidden and s[0] > 1]
    if vocab is not None:
        exact = [k for k in candidates if shapes[k][0] == vocab]
        candidates = exact or candidates
    named = [k for k in candidates if any(n in k for n in _EMBEDDING_NAMES)]
    pool = named or [k for k in candidates if "head" not in k] or candidates
    if not pool:
        raise ValueError(f"no [vocabulary, {hidden}] embedding matrix in the checkpoint")
    return max(pool, key=lambda k: shapes[k][0])


def read_embedding_matrix(folder: Path, hidden: int) -> Any:
    """The [V, d] input-embedding matrix from a Hugging Face folder's safetensors."""
    from safetensors import safe_open

    vocab: int | None = None
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
        text_config = config.get("text_config")
        if "vocab_size" not in config and isinstance(text_config, dict):
            config = text_config
        vocab = int(config["vocab_size"]) if "vocab_size" in config else None
    except (OSError, ValueError, TypeError):
        vocab = None
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} holds no .safetensors weights")
    shapes: dict[str, list[int]] = {}
    where: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                shapes[key] = list(handle.get_slice(key).get_shape())
                where[key] = path
    key = find_embedding_key(shapes, hidden, vocab)
    with safe_open(str(where[key]), framework="numpy") as handle:
        dtype = str(handle.get_slice(key).get_dtype())
        if dtype != "BF16":
            import numpy as np  # not at start-up: the window imports this module

            return np.asarray(handle.get_tensor(key), dtype=np.float32)
    with safe_open(str(where[key]), framework="pt") as handle:  # numpy has no bfloat16
        return handle.get_tensor(key).float().numpy()


def nearest_for_soft_prompt(
    spec: ModelSpec, tensor: Any, backend: Any = None, k: int = NEAREST_K
) -> list[list[tuple[str, float]]]:
    """For each virtual token its `k` nearest vocabulary tokens (cosine). Uses a loaded
    transformers `backend` when it is the soft prompt's base model; else reads the
    embedding matrix and the tokenizer from the model's Hugging Face folder (a GGUF is
    dequantised once and cached)."""
    from workbench.core.graduation import model_folder
    from workbench.core.peft_io import nearest_tokens

    matrix: Any = None
    tokenizer: Any = None
    model = getattr(backend, "model", None)
    if (
        backend is not None
        and getattr(backend, "name", "") == "transformers"
        and backend.spec.id == spec.id
        and model is not None
        and getattr(backend, "tokenizer", None) is not None
    ):
        matrix = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        tokenizer = backend.tokenizer
    if matrix is None or matrix.shape[1] != tensor.shape[1]:
        from transformers import AutoTokenizer

        folder = model_folder(spec)
        matrix = read_embedding_matrix(folder, int(tensor.shape[1]))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)

    def decode(token_id: int) -> str:
        try:
            return str(tokenizer.decode([token_id]))
        except Exception:  # an id the tokenizer cannot decode on its own
            return str(tokenizer.convert_ids_to_tokens(token_id))

    return nearest_tokens(tensor, matrix, decode, k)
