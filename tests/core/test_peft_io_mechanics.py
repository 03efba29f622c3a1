"""PEFT adapter import and nearest-token mechanics, with hand-made files (no model, no torch)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.core.peft_io import (
    PeftAdapterError,
    import_peft_adapter,
    nearest_tokens,
)


def _config(**overrides: Any) -> dict[str, Any]:
    """adapter_config.json as PeftModel.save_pretrained writes it for prompt tuning."""
    config: dict[str, Any] = {
        "auto_mapping": None,
        "base_model_name_or_path": "some/model",
        "inference_mode": True,
        "modules_to_save": None,
        "num_attention_heads": 4,
        "num_layers": 2,
        "num_transformer_submodules": 1,
        "num_virtual_tokens": 4,
        "peft_type": "PROMPT_TUNING",
        "peft_version": "0.21.2",
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "revision": None,
        "task_type": "CAUSAL_LM",
        "token_dim": 8,
        "tokenizer_kwargs": None,
        "tokenizer_name_or_path": None,
    }
    config.update(overrides)
    return config


def _adapter(
    folder: Path,
    config: dict[str, Any] | None = None,
    tensor: np.ndarray | None = None,
    key: str = "prompt_embeddings",
) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    array = (
        tensor
        if tensor is not None
        else np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    )
    (folder / "adapter_config.json").write_text(json.dumps(config or _config(), indent=2))
    save_file({key: array}, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    return array


# ---------------------------------------------------------------------------
# import: the happy path


def test_import_reads_tensor_and_config(tmp_path: Path) -> None:
    written = _adapter(tmp_path / "a")
    array, config = import_peft_adapter(tmp_path / "a")
    assert array.dtype == np.float32 and array.shape == (4, 8)
    np.testing.assert_array_equal(array, written)
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 4
    array[0, 0] = 123.0  # the returned array is a writable copy


def test_import_widens_float16_and_bfloat16(tmp_path: Path) -> None:
    values = np.arange(32, dtype=np.float32).reshape(4, 8) / 4  # exact in fp16 and bf16
    _adapter(tmp_path / "f16", tensor=values.astype(np.float16))
    array, _ = import_peft_adapter(tmp_path / "f16")
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, values)

    # numpy cannot write bfloat16: lay out the safetensors file by hand (bf16 = top 16 bits)
    folder = tmp_path / "bf16"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(_config()))
    data = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "prompt_embeddings": {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 64]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    (folder / "adapter_model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + data
    )
    array, _ = import_peft_adapter(folder)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, values)


def test_import_accepts_null_submodules_and_token_dim(tmp_path: Path) -> None:
    """PEFT fills both in at load time; an unsaved-by-PeftModel config may leave them null."""
    _adapter(tmp_path / "a", _config(num_transformer_submodules=None, token_dim=None))
    array, _ = import_peft_adapter(tmp_path / "a")
    assert array.shape == (4, 8)


# ---------------------------------------------------------------------------
# import: malformed folders


def _error(folder: Path) -> str:
    with pytest.raises(PeftAdapterError) as info:
        import_peft_adapter(folder)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_not_a_folder(tmp_path: Path) -> None:
    assert "not a folder" in _error(tmp_path / "missing")


def test_missing_config(tmp_path: Path) -> None:
    _adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").unlink()
    message = _error(tmp_path / "a")
    assert "adapter_config.json" in message and "not found" in message


def test_config_not_json(tmp_path: Path) -> None:
    _adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").write_text("{not json")
    message = _error(tmp_path / "a")
    assert "adapter_config.json" in message and "JSON" in message


def test_config_not_an_object(tmp_path: Path) -> None:
    _adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").write_text("[1, 2]")
    assert "JSON object" in _error(tmp_path / "a")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"peft_type": "LORA"}, "peft_type"),
        ({"peft_type": None}, "peft_type"),
        ({"task_type": "SEQ_2_SEQ_LM"}, "task_type"),
        ({"num_virtual_tokens": 0}, "num_virtual_tokens"),
        ({"num_virtual_tokens": "4"}, "num_virtual_tokens"),
        ({"num_virtual_tokens": True}, "num_virtual_tokens"),
        ({"token_dim": -8}, "token_dim"),
        ({"num_transformer_submodules": 2}, "num_transformer_submodules"),
    ],
)
def test_bad_config_field(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    _adapter(tmp_path / "a", _config(**overrides))
    message = _error(tmp_path / "a")
    assert "adapter_config.json" in message and repr(field) in message


def test_missing_num_virtual_tokens(tmp_path: Path) -> None:
    config = _config()
    del config["num_virtual_tokens"]
    _adapter(tmp_path / "a", config)
    assert "'num_virtual_tokens'" in _error(tmp_path / "a")


def test_rows_mismatch_num_virtual_tokens(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", _config(num_virtual_tokens=5))
    message = _error(tmp_path / "a")
    assert "adapter_model.safetensors" in message
    assert "4 rows" in message and "num_virtual_tokens=5" in message


def test_columns_mismatch_token_dim(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", _config(token_dim=16))
    message = _error(tmp_path / "a")
    assert "8 columns" in message and "token_dim=16" in message


def test_tensor_not_two_dimensional(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", tensor=np.zeros((4, 8, 1), dtype=np.float32))
    assert "shape [4, 8, 1]" in _error(tmp_path / "a")


def test_wrong_tensor_key(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", key="base_model.embedding.weight")
    message = _error(tmp_path / "a")
    assert "'prompt_embeddings'" in message and "base_model.embedding.weight" in message


def test_integer_tensor_refused(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", tensor=np.zeros((4, 8), dtype=np.int32))
    assert "dtype I32" in _error(tmp_path / "a")


def test_non_finite_values_refused(tmp_path: Path) -> None:
    tensor = np.zeros((4, 8), dtype=np.float32)
    tensor[2, 3] = np.nan
    _adapter(tmp_path / "a", tensor=tensor)
    assert "NaN" in _error(tmp_path / "a")


def test_pickle_weights_refused_unopened(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    _adapter(folder)
    (folder / "adapter_model.safetensors").unlink()
    marker = tmp_path / "pwned"
    # a pickle that would create `marker` if anything unpickled it
    payload = (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."  # os.system("touch ...")
    )
    (folder / "adapter_model.bin").write_bytes(payload)
    message = _error(folder)
    assert "adapter_model.bin" in message and "pickle" in message and "refused" in message
    assert not marker.exists()


def test_missing_weights(tmp_path: Path) -> None:
    _adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_model.safetensors").unlink()
    message = _error(tmp_path / "a")
    assert "adapter_model.safetensors" in message and "not found" in message


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: b"this is not a safetensors file at all",
        lambda data: data[: len(data) - 10],  # truncated tensor data
        lambda data: data[:20],  # truncated header
        lambda data: b"",
        lambda data: struct.pack("<Q", 1 << 40) + data[8:],  # absurd header length
    ],
    ids=["garbage", "truncated-data", "truncated-header", "empty", "huge-header"],
)
def test_corrupt_safetensors(tmp_path: Path, corrupt: Any) -> None:
    _adapter(tmp_path / "a")
    weights = tmp_path / "a" / "adapter_model.safetensors"
    weights.write_bytes(corrupt(weights.read_bytes()))
    message = _error(tmp_path / "a")
    assert "adapter_model.safetensors" in message and "safetensors" in message


# ---------------------------------------------------------------------------
# nearest tokens


def _decode(token: int) -> str:
    return f"t{token}"


def test_nearest_tokens_on_hand_made_matrix() -> None:
    vocab = np.array(
        [
            [1.0, 0.0, 0.0],  # t0
            [0.0, 1.0, 0.0],  # t1
            [0.0, 0.0, 1.0],  # t2
            [1.0, 1.0, 0.0],  # t3: cos 0.7071 to x and to y
            [-1.0, 0.0, 0.0],  # t4: opposite of x
            [5.0, 0.0, 0.0],  # t5: x again, longer (cosine ignores length)
        ],
        dtype=np.float32,
    )
    prompts = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.1]], dtype=np.float32)
    result = nearest_tokens(prompts, vocab, _decode, k=3)
    assert [name for name, _ in result[0]] == ["t0", "t5", "t3"]  # t0/t5 tie: lower id first
    assert [sim for _, sim in result[0]] == pytest.approx([1.0, 1.0, 2**-0.5])
    assert result[1][0][0] == "t1"
    assert result[1][0][1] == pytest.approx(3 / np.hypot(3, 0.1))
    assert result[1][1][0] == "t3"
    # the worst match for x is its opposite, cosine -1
    assert nearest_tokens(prompts[:1], vocab, _decode, k=6)[0][-1] == ("t4", pytest.approx(-1.0))


def test_nearest_tokens_k_larger_than_vocab_and_zero_vector() -> None:
    vocab = np.eye(3, dtype=np.float32)
    result = nearest_tokens(np.zeros((1, 3), dtype=np.float32), vocab, _decode, k=10)
    assert result == [[("t0", 0.0), ("t1", 0.0), ("t2", 0.0)]]


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64, 100_000])
def test_nearest_tokens_chunking_matches_brute_force(chunk_size: int) -> None:
    rng = np.random.default_rng(1)
    vocab = rng.normal(size=(300, 16)).astype(np.float32)
    vocab[200] = vocab[17] * 3  # a duplicate direction: ties must resolve to the lower id
    prompts = rng.normal(size=(5, 16)).astype(np.float32)
    prompts[0] = vocab[17]
    result = nearest_tokens(prompts, vocab, _decode, k=4, chunk_size=chunk_size)

    unit = vocab / np.linalg.norm(vocab, axis=1, keepdims=True)
    sims = (prompts / np.linalg.norm(prompts, axis=1, keepdims=True)) @ unit.T
    for row, found in zip(sims, result, strict=True):
        order = np.argsort(-row, kind="stable")[:4]
        assert [name for name, _ in found] == [f"t{i}" for i in order]
        assert [sim for _, sim in found] == pytest.approx(row[order].tolist(), abs=1e-6)
    assert [name for name, _ in result[0][:2]] == ["t17", "t200"]


def test_nearest_tokens_scales_to_a_real_vocabulary() -> None:
    """SmolLM2's shape (49152 x 576): chunked, so no [N, V] similarity matrix is built."""
    rng = np.random.default_rng(2)
    vocab = rng.normal(size=(49152, 576)).astype(np.float32)
    picks = [5, 49151, 31000]
    result = nearest_tokens(vocab[picks], vocab, _decode, k=5)
    assert [row[0][0] for row in result] == [f"t{i}" for i in picks]
    assert all(row[0][1] == pytest.approx(1.0) for row in result)
    assert all(len(row) == 5 for row in result)


def test_nearest_tokens_rejects_bad_input() -> None:
    vocab = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="width"):
        nearest_tokens(np.zeros((2, 4)), vocab, _decode)
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        nearest_tokens(np.zeros(3), vocab, _decode)
    with pytest.raises(ValueError, match="k must"):
        nearest_tokens(np.zeros((1, 3)), vocab, _decode, k=0)
    assert nearest_tokens(np.zeros((0, 3)), vocab, _decode) == []
