"""Nearest vocabulary tokens the cheap way (workbench.core.flows.nearest): the embedding
matrix found among a checkpoint's tensors and read from safetensors files on disk."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.core.flows.nearest import (
    NEAREST_K,
    find_embedding_key,
    nearest_for_soft_prompt,
    read_embedding_matrix,
)
from workbench.core.models import ModelSpec

VOCAB, HIDDEN = 6, 4

# -- choosing the embedding matrix ---------------------------------------------------


def test_the_usual_embedding_names_win_over_a_tied_head() -> None:
    shapes = {"lm_head.weight": [VOCAB, HIDDEN], "model.embed_tokens.weight": [VOCAB, HIDDEN]}
    assert find_embedding_key(shapes, HIDDEN, VOCAB) == "model.embed_tokens.weight"
    for name in ("transformer.wte.weight", "word_embeddings.weight", "gpt_neox.embed_in.weight"):
        assert (
            find_embedding_key(
                {name: [VOCAB, HIDDEN], "lm_head.weight": [VOCAB, HIDDEN]}, HIDDEN, VOCAB
            )
            == name
        )


def test_the_vocabulary_size_narrows_the_choice() -> None:
    shapes = {"a.embed_tokens.weight": [8, HIDDEN], "b.embed_tokens.weight": [VOCAB, HIDDEN]}
    assert find_embedding_key(shapes, HIDDEN, VOCAB) == "b.embed_tokens.weight"
    # without it (or when nothing has that size) the largest matrix is taken
    assert find_embedding_key(shapes, HIDDEN, None) == "a.embed_tokens.weight"
    assert find_embedding_key(shapes, HIDDEN, 99) == "a.embed_tokens.weight"


def test_unnamed_matrices_prefer_anything_but_the_head() -> None:
    shapes = {"head.weight": [50, HIDDEN], "table": [VOCAB, HIDDEN], "bias": [HIDDEN]}
    assert find_embedding_key(shapes, HIDDEN, None) == "table"
    assert find_embedding_key({"lm_head.weight": [VOCAB, HIDDEN]}, HIDDEN, None) == (
        "lm_head.weight"  # a head is the last resort
    )


def test_no_matrix_of_the_right_width_is_an_error() -> None:
    shapes = {"model.embed_tokens.weight": [VOCAB, 8], "one_row": [1, HIDDEN], "norm": [HIDDEN]}
    with pytest.raises(ValueError, match=r"no \[vocabulary, 4\] embedding matrix"):
        find_embedding_key(shapes, HIDDEN, None)


# -- reading it from a folder ----------------------------------------------------------


def _matrix(seed: int = 0) -> np.ndarray:
    # multiples of 1/8 in a small range: exact in bfloat16 too
    rng = np.random.default_rng(seed)
    return (rng.integers(-16, 16, size=(VOCAB, HIDDEN)) / 8).astype(np.float32)


def _folder(tmp_path: Path, config: dict[str, Any] | None = None) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    body = {"vocab_size": VOCAB, "hidden_size": HIDDEN} if config is None else config
    (folder / "config.json").write_text(json.dumps(body), encoding="utf-8")
    return folder


def test_read_an_fp32_matrix(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    embeddings = _matrix(1)
    save_file(
        {
            "model.embed_tokens.weight": embeddings,
            "lm_head.weight": _matrix(2),
            "model.layers.0.mlp.up_proj.weight": np.ones((8, HIDDEN), np.float32),
            "model.norm.weight": np.ones(HIDDEN, np.float32),
        },
        str(folder / "model.safetensors"),
    )
    matrix = read_embedding_matrix(folder, HIDDEN)
    assert matrix.dtype == np.float32 and matrix.shape == (VOCAB, HIDDEN)
    assert np.array_equal(matrix, embeddings)


def test_read_a_half_precision_matrix_as_fp32(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    embeddings = _matrix(3)
    save_file(
        {"model.embed_tokens.weight": embeddings.astype(np.float16)},
        str(folder / "model.safetensors"),
    )
    matrix = read_embedding_matrix(folder, HIDDEN)
    assert matrix.dtype == np.float32 and np.array_equal(matrix, embeddings)


def test_read_a_bf16_matrix_from_a_sharded_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    folder = _folder(tmp_path, {"text_config": {"vocab_size": VOCAB}})  # a multimodal config
    embeddings = _matrix(4)
    save_torch(
        {"lm_head.weight": torch.zeros((VOCAB, HIDDEN), dtype=torch.bfloat16)},
        str(folder / "model-00002-of-00002.safetensors"),
    )
    save_torch(
        {
            "model.embed_tokens.weight": torch.from_numpy(embeddings).to(torch.bfloat16),
            "model.bigger.weight": torch.zeros((8, HIDDEN), dtype=torch.bfloat16),
        },
        str(folder / "model-00001-of-00002.safetensors"),
    )
    matrix = read_embedding_matrix(folder, HIDDEN)
    assert isinstance(matrix, np.ndarray) and matrix.dtype == np.float32
    assert np.array_equal(matrix, embeddings)  # the vocabulary size beat the larger tensor


def test_a_missing_config_still_finds_the_matrix(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    embeddings = _matrix(5)
    save_file({"transformer.wte.weight": embeddings}, str(folder / "model.safetensors"))
    assert np.array_equal(read_embedding_matrix(folder, HIDDEN), embeddings)


def test_a_folder_without_safetensors_is_an_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"holds no \.safetensors weights"):
        read_embedding_matrix(folder, HIDDEN)


# -- nearest tokens of a soft prompt ---------------------------------------------------


class _Tokenizer:
    def decode(self, ids: list[int]) -> str:
        return f"tok{ids[0]}"


def test_nearest_reads_the_folder_and_its_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    embeddings = _matrix(6)
    save_file({"model.embed_tokens.weight": embeddings}, str(folder / "model.safetensors"))
    loaded: list[str] = []

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(path: str, trust_remote_code: bool) -> _Tokenizer:
            assert trust_remote_code is False
            loaded.append(path)
            return _Tokenizer()

    # a stand-in transformers module: only its tokenizer is used on this path
    monkeypatch.setitem(
        sys.modules, "transformers", types.SimpleNamespace(AutoTokenizer=AutoTokenizer)
    )
    spec = ModelSpec(id="tiny", name="tiny", source="hf", path=str(folder))
    soft = embeddings[[4, 1]] * 3.0  # a scaled copy has cosine 1 with its row
    result = nearest_for_soft_prompt(spec, soft, k=2)
    assert loaded == [str(folder)]
    assert len(result) == 2 and all(len(r) == 2 for r in result)
    assert [r[0][0] for r in result] == ["tok4", "tok1"]
    assert all(r[0][1] == pytest.approx(1.0) for r in result)
    assert len(nearest_for_soft_prompt(spec, soft)[0]) == NEAREST_K


def test_nearest_uses_a_loaded_transformers_backend_of_the_same_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    embeddings = _matrix(7)

    class _Model:
        def get_input_embeddings(self) -> Any:
            return types.SimpleNamespace(weight=torch.from_numpy(embeddings))

    spec = ModelSpec(id="tiny", name="tiny", source="hf", path=str(tmp_path / "absent"))
    backend = types.SimpleNamespace(
        name="transformers", spec=spec, model=_Model(), tokenizer=_Tokenizer()
    )
    # the folder does not exist: reading it would fail, so the backend's matrix was used
    result = nearest_for_soft_prompt(spec, embeddings[[2]], backend=backend, k=1)
    assert result[0][0][0] == "tok2" and result[0][0][1] == pytest.approx(1.0)
    other = types.SimpleNamespace(
        name="transformers",
        spec=spec.model_copy(update={"id": "other"}),
        model=_Model(),
        tokenizer=_Tokenizer(),
    )
    with pytest.raises((OSError, ValueError)):  # another model's backend is not used
        nearest_for_soft_prompt(spec, embeddings[[2]], backend=other, k=1)
