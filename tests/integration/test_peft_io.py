"""Soft prompts exported to, and imported from, real PEFT prompt-tuning adapters."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.core.backends.base import Finished
from workbench.core.models import GenerationParams, SoftPrompt
from workbench.core.peft_io import (
    PeftAdapterError,
    export_peft_adapter,
    import_peft_adapter,
    nearest_tokens,
)

pytestmark = pytest.mark.integration

INIT_TEXT = "positive or negative"


def _meta(count: int, dim: int | None = None) -> SoftPrompt:
    return SoftPrompt(
        name="sentiment",
        base_model="SmolLM2-135M",
        base_model_hash="0" * 64,
        num_virtual_tokens=count,
        hidden_size=dim,
        init="text",
        init_text=INIT_TEXT,
        tensor_file="sentiment.safetensors",
    )


@pytest.fixture(scope="module")
def smol_folder(hf_backend) -> Path:
    """The embedded model as the cached Hugging Face safetensors folder it was converted to."""
    from workbench.core.backends.hf import gguf_as_hf_folder

    return gguf_as_hf_folder(Path(hf_backend.spec.path))


@pytest.fixture(scope="module")
def soft_prompt(hf_backend) -> np.ndarray:
    """8 virtual tokens: the init text's token embeddings, repeated, plus noise (a 'trained'
    prompt that sits near, not on, the vocabulary)."""
    matrix = hf_backend.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    ids = list(hf_backend.tokenizer(INIT_TEXT, add_special_tokens=False)["input_ids"])
    rows = matrix[(ids * 8)[:8]]
    noise = np.random.default_rng(0).normal(0.0, 0.02, rows.shape)
    return (rows + noise).astype(np.float32)


# ---------------------------------------------------------------------------
# (a) our tensor -> PEFT


def test_exported_adapter_loads_in_peft_and_generates_like_our_prepending(
    hf_backend, smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    count, dim = soft_prompt.shape
    adapter = export_peft_adapter(
        soft_prompt, _meta(count, dim), str(smol_folder), tmp_path / "adapter"
    )
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["task_type"] == "CAUSAL_LM"
    assert config["num_virtual_tokens"] == count and config["token_dim"] == dim
    assert config["num_transformer_submodules"] == 1 and config["inference_mode"] is True
    assert config["prompt_tuning_init"] == "TEXT"
    assert config["prompt_tuning_init_text"] == INIT_TEXT
    assert config["base_model_name_or_path"] == str(smol_folder)
    assert config["tokenizer_name_or_path"] == str(smol_folder)
    model_config = json.loads((smol_folder / "config.json").read_text())
    assert config["num_layers"] == model_config["num_hidden_layers"]
    assert config["num_attention_heads"] == model_config["num_attention_heads"]

    base = AutoModelForCausalLM.from_pretrained(str(smol_folder), dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(adapter))
    peft_model.eval()
    weight = peft_model.prompt_encoder["default"].embedding.weight.detach().cpu().numpy()
    np.testing.assert_array_equal(weight, soft_prompt)

    ids = hf_backend.tokenize("Review: the film was a delight from start to finish.\nSentiment:")
    input_ids = torch.tensor([ids])
    prefix = torch.from_numpy(soft_prompt)

    # next-token logits: PEFT's forward vs our manual prepend on the backend's model
    with torch.inference_mode():
        peft_logits = peft_model(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids)
        ).logits
        assert peft_logits.shape[1] == count + len(ids)
        model = hf_backend.model
        embeds = model.get_input_embeddings()(input_ids)
        manual = model(inputs_embeds=torch.cat([prefix.unsqueeze(0), embeds], dim=1)).logits
    diff = (peft_logits[0, -1] - manual[0, -1]).abs().max().item()
    assert diff < 1e-3, diff

    # greedy generation: PEFT (use_cache=False, huggingface/peft#2123) vs our decoding loop
    new_tokens = 8
    with torch.inference_mode():
        generated = peft_model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            use_cache=False,
        )
    theirs = [int(t) for t in generated[0, len(ids) :]]
    while theirs and theirs[-1] in hf_backend.eos_ids:
        theirs.pop()
    events = list(
        hf_backend.stream_ids(
            ids,
            GenerationParams(temperature=0.0, max_new_tokens=new_tokens),
            threading.Event(),
            prefix_embeds=prefix,
        )
    )
    finished = events[-1]
    assert isinstance(finished, Finished)
    ours = list(finished.token_ids)
    assert ours, "generation produced no tokens"
    assert ours == theirs

    # the soft prompt matters: without it the model says something else (or the same
    # thing with different logits), so the comparison above is not vacuous
    with torch.inference_mode():
        plain = model(input_ids=input_ids).logits[0, -1]
    assert (plain - manual[0, -1]).abs().max().item() > 1e-2


def test_export_round_trips_through_import(
    smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path
) -> None:
    count, dim = soft_prompt.shape
    adapter = export_peft_adapter(soft_prompt, _meta(count), str(smol_folder), tmp_path / "a")
    array, config = import_peft_adapter(adapter)
    np.testing.assert_array_equal(array, soft_prompt)
    assert config["num_virtual_tokens"] == count and config["token_dim"] == dim


def test_export_maps_init_methods(
    smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path
) -> None:
    count = soft_prompt.shape[0]
    cases = {
        "random": _meta(count).model_copy(update={"init": "random", "init_text": None}),
        "vocab": _meta(count).model_copy(update={"init": "vocab", "init_text": None}),
        # "text" with no text recorded anywhere: PEFT's TEXT init needs one, so RANDOM
        "textless": _meta(count).model_copy(update={"init_text": None}),
    }
    expected = {"random": "RANDOM", "vocab": "SAMPLE_VOCAB", "textless": "RANDOM"}
    for name, meta in cases.items():
        adapter = export_peft_adapter(soft_prompt, meta, str(smol_folder), tmp_path / name)
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert config["prompt_tuning_init"] == expected[name], name
        assert config["prompt_tuning_init_text"] is None


def test_export_is_atomic_and_refuses_to_overwrite(
    smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path
) -> None:
    count = soft_prompt.shape[0]
    meta = _meta(count)
    target = tmp_path / "adapter"
    target.mkdir()  # an existing empty folder is fine
    export_peft_adapter(soft_prompt, meta, str(smol_folder), target)

    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_peft_adapter(soft_prompt * 2, meta, str(smol_folder), target)
    np.testing.assert_array_equal(import_peft_adapter(target)[0], soft_prompt)

    (target / "stale.txt").write_text("from the old adapter")
    export_peft_adapter(soft_prompt * 2, meta, str(smol_folder), target, overwrite=True)
    np.testing.assert_array_equal(import_peft_adapter(target)[0], soft_prompt * 2)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temp folders left

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        export_peft_adapter(soft_prompt, meta, str(smol_folder), a_file, overwrite=True)


def test_export_failure_leaves_nothing_behind(
    smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.numpy

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        export_peft_adapter(
            soft_prompt, _meta(soft_prompt.shape[0]), str(smol_folder), tmp_path / "adapter"
        )
    assert list(tmp_path.iterdir()) == []


def test_export_rejects_inconsistent_input(
    smol_folder: Path, soft_prompt: np.ndarray, tmp_path: Path
) -> None:
    count = soft_prompt.shape[0]
    out = tmp_path / "adapter"
    with pytest.raises(ValueError, match="num_virtual_tokens=9"):
        export_peft_adapter(soft_prompt, _meta(count + 1), str(smol_folder), out)
    with pytest.raises(ValueError, match="hidden_size=32"):
        export_peft_adapter(soft_prompt, _meta(count, 32), str(smol_folder), out)
    with pytest.raises(ValueError, match="hidden size 576"):
        export_peft_adapter(soft_prompt[:, :32], _meta(count), str(smol_folder), out)
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        export_peft_adapter(soft_prompt[0], _meta(count), str(smol_folder), out)
    broken = soft_prompt.copy()
    broken[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        export_peft_adapter(broken, _meta(count), str(smol_folder), out)
    assert not out.exists()


# ---------------------------------------------------------------------------
# (b) PEFT's adapter -> our tensor


def test_import_adapter_saved_by_peft(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    peft_config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=7,
        prompt_tuning_init="TEXT",
        prompt_tuning_init_text=INIT_TEXT,
        tokenizer_name_or_path=str(tiny_model_dir),
    )
    peft_model = get_peft_model(model, peft_config)
    expected = peft_model.prompt_encoder["default"].embedding.weight.detach().cpu().numpy()
    # TEXT init: the init text's token embeddings, cycled to fill 7 positions
    matrix = model.get_input_embeddings().weight.detach().cpu().numpy()
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(tiny_model_dir))(INIT_TEXT)["input_ids"]
    np.testing.assert_array_equal(expected, matrix[(ids * 7)[:7]])

    peft_dir = tmp_path / "peft-saved"
    peft_model.save_pretrained(str(peft_dir))
    array, config = import_peft_adapter(peft_dir)
    assert array.dtype == np.float32 and array.shape == (7, 32)
    np.testing.assert_array_equal(array, expected)
    assert config["peft_type"] == "PROMPT_TUNING" and config["token_dim"] == 32

    # our export of the same tensor writes the very config PEFT wrote
    meta = _meta(7, 32)
    ours = export_peft_adapter(array, meta, str(tiny_model_dir), tmp_path / "ours")
    peft_json = json.loads((peft_dir / "adapter_config.json").read_text())
    our_json = json.loads((ours / "adapter_config.json").read_text())
    assert our_json == peft_json

    # ...and PEFT loads it back onto a fresh copy of the model
    fresh = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(fresh, str(ours))
    weight = reloaded.prompt_encoder["default"].embedding.weight.detach().cpu().numpy()
    np.testing.assert_array_equal(weight, expected)


def test_import_refuses_pickle_adapter_saved_by_peft(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    peft_model = get_peft_model(
        model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    )
    peft_model.save_pretrained(str(tmp_path / "bin"), safe_serialization=False)
    assert (tmp_path / "bin" / "adapter_model.bin").is_file()
    with pytest.raises(PeftAdapterError, match="pickle"):
        import_peft_adapter(tmp_path / "bin")


# ---------------------------------------------------------------------------
# (c) nearest tokens on the real vocabulary


def test_nearest_tokens_of_a_text_initialised_prompt(hf_backend) -> None:
    matrix = hf_backend.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    ids = list(hf_backend.tokenizer(INIT_TEXT, add_special_tokens=False)["input_ids"])
    assert len(ids) == 3
    soft = matrix[ids]  # Lester et al.'s "class label" initialisation
    result = nearest_tokens(soft, matrix, hf_backend.token_text, k=5)
    assert len(result) == len(ids)
    for token, neighbours in zip(ids, result, strict=True):
        assert len(neighbours) == 5
        name, similarity = neighbours[0]
        assert name == hf_backend.token_text(token)
        assert similarity == pytest.approx(1.0, abs=1e-6)
        assert all(sim < 1.0 - 1e-4 for _, sim in neighbours[1:])
        sims = [sim for _, sim in neighbours]
        assert sims == sorted(sims, reverse=True)
    assert [row[0][0].strip() for row in result] == ["positive", "or", "negative"]
