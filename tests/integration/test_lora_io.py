"""LoRA adapters as library items and PEFT folders, both ways, with the real peft
library and a tiny random-weight Llama: trained and saved here → loaded by
`PeftModel.from_pretrained`; made by PEFT → imported and run here; pickles and
adapters for another model refused with a clear message, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.core.backends.base import BackendSettings
from workbench.core.flows.lookup import find_lora_adapter
from workbench.core.library import Library
from workbench.core.lora import LoraAdapterSaved, LoraFinished, checkpoint_folder, graduate_lora
from workbench.core.lora_io import (
    LoraAdapterError,
    LoraAdapterMismatchError,
    apply_adapter,
    check_compatible,
    export_lora_adapter,
    import_lora_adapter,
)
from workbench.core.models import (
    FewShot,
    FewShotExample,
    LoraSettings,
    ModelSpec,
    TestRow,
    TestSet,
    TrainConfig,
)

pytestmark = pytest.mark.integration


def tiny_spec(folder: Path, name: str = "tiny-llama") -> ModelSpec:
    return ModelSpec(id=name, name=name, source="hf", path=str(folder))


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """Another random Llama, 48 wide: adapters for the 32-wide one do not fit it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("other-llama")
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def peft_made_adapter(model_dir: Path, out: Path, safe: bool = True) -> Path:
    """An adapter as PEFT makes it: `get_peft_model` + `save_pretrained`, with non-zero
    B so the adapter changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(str(out), safe_serialization=safe)
    return out


def logits(model, tokenizer, text: str = "Say yes to apple 3"):
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def sentiment(library: Library):
    prompt = library.new_prompt(
        "Yes or no",
        system="Answer yes or no.",
        user_template="{{ text }}",
    )
    prompt = prompt.model_copy(
        update={
            "few_shot": FewShot(
                examples=[FewShotExample(vars={"text": "say yes"}, output="yes")], count=1
            )
        }
    )
    prompt = library.save_prompt(prompt)
    rows = [
        TestRow(vars={"text": f"say {'yes' if i % 2 else 'no'} {i}"}, expected=w)
        for i, w in enumerate(["no", "yes"] * 6)
    ]
    test_set = library.save_test_set(
        TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"])
    )
    return prompt, test_set


def test_a_trained_adapter_is_a_library_item_that_peft_loads(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt, test_set = sentiment(library)
    spec = tiny_spec(tiny_model_dir)
    config = TrainConfig(
        steps=6, batch_size=2, eval_every=3, learning_rate=1e-2, device="cpu", seed=3
    )
    events = list(
        graduate_lora(
            library,
            prompt,
            test_set,
            spec,
            config,
            LoraSettings(rank=4, alpha=8),
            name="yes-no LoRA",
            backend_settings=BackendSettings(threads=2),
        )
    )
    finished = next(e for e in events if isinstance(e, LoraFinished)).result
    saved = events[-1]
    assert isinstance(saved, LoraAdapterSaved)
    adapter = saved.adapter
    # provenance: the prompt, the base model and its hash, the data, config, curves
    assert adapter.prompt_id == prompt.id and adapter.prompt_version == prompt.version
    assert adapter.base_model == "tiny-llama" and len(adapter.base_model_hash) == 64
    assert adapter.lora.rank == 4 and adapter.lora.target_modules == ["q_proj", "v_proj"]
    assert adapter.train_config == config and adapter.data_hash
    assert adapter.curves["train_loss"] == finished.curves["train_loss"]
    assert len(adapter.curves["train_loss"]) == adapter.metrics["steps"]
    assert adapter.trainable_parameters == finished.trainable_parameters > 0
    # listed under its prompt, found by name, read back from disk as it was saved
    reopened = Library(library.root)
    assert reopened.problems == []
    assert [a.id for a in reopened.lora_adapters_for(prompt.id)] == [adapter.id]
    assert find_lora_adapter(reopened, "yes-no LoRA") == adapter
    folder = reopened.lora_adapter_path(adapter)
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    config_json = json.loads((folder / "adapter_config.json").read_text())
    assert config_json["peft_type"] == "LORA" and config_json["r"] == 4
    # the stored folder and an exported copy load in PEFT, and change the model
    exported = export_lora_adapter(reopened, adapter, tmp_path / "export")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    plain = logits(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), tokenizer)
    for where in (folder, exported):
        base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
        peft_model = PeftModel.from_pretrained(base, str(where))
        assert not logits(peft_model, tokenizer).allclose(plain)
    assert not checkpoint_folder(adapter.id).exists()  # the library holds it now
    reopened.delete_lora_adapter(adapter.id)
    assert Library(library.root).lora_adapters == {} and not folder.exists()


def test_a_peft_made_adapter_imports_and_runs_like_peft(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from workbench.core.backends.hf import TransformersBackend

    source = peft_made_adapter(tiny_model_dir, tmp_path / "made-by-peft")
    spec = tiny_spec(tiny_model_dir)
    adapter = import_lora_adapter(library, source, spec, name="imported")
    assert adapter.lora.rank == 4 and adapter.lora.alpha == 8
    assert adapter.lora.target_modules == ["o_proj", "q_proj"]
    assert adapter.train_config is None and adapter.trainable_parameters == 2 * 2 * (
        4 * 32 + 32 * 4
    )
    backend = TransformersBackend(spec, BackendSettings(device="cpu", threads=2))
    try:
        plain = logits(backend.model, backend.tokenizer)
        applied = apply_adapter(library, adapter, backend)
        ours = logits(backend.model, backend.tokenizer)
        reference = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(source)
        )
        torch.testing.assert_close(ours, logits(reference, backend.tokenizer))
        assert not ours.allclose(plain)
        applied.remove()
        torch.testing.assert_close(logits(backend.model, backend.tokenizer), plain)
    finally:
        backend.close()


def test_taking_an_adapter_out_leaves_the_base_weights_bit_identical(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Applied for a run and taken out again, twice: the adapter changes the outputs
    while it is in, and afterwards every parameter and buffer of the model is
    `torch.equal` to before, and so are its outputs (nothing was merged and unmerged,
    which leaves rounding drift in the weights)."""
    import torch

    from workbench.core.backends.hf import TransformersBackend

    source = peft_made_adapter(tiny_model_dir, tmp_path / "made-by-peft")
    spec = tiny_spec(tiny_model_dir)
    adapter = import_lora_adapter(library, source, spec, name="imported")
    backend = TransformersBackend(spec, BackendSettings(device="cpu", threads=2))
    try:
        model = backend.model
        before = {n: t.detach().clone() for n, t in model.state_dict(keep_vars=True).items()}
        plain = logits(model, backend.tokenizer)
        for _ in range(2):
            applied = apply_adapter(library, adapter, backend)
            assert not torch.equal(logits(backend.model, backend.tokenizer), plain)
            applied.remove()
            assert backend.model is model
            after = model.state_dict(keep_vars=True)
            assert list(after) == list(before)  # no LoRA layer left behind
            changed = [n for n, t in after.items() if not torch.equal(t.detach(), before[n])]
            assert changed == []
            assert torch.equal(logits(model, backend.tokenizer), plain)
    finally:
        backend.close()


def test_a_pickled_adapter_is_refused_and_nothing_is_written(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = peft_made_adapter(tiny_model_dir, tmp_path / "pickled", safe=False)
    assert (source / "adapter_model.bin").is_file()
    with pytest.raises(LoraAdapterError, match=r"pickle file.*refused"):
        import_lora_adapter(library, source, tiny_spec(tiny_model_dir))
    assert library.lora_adapters == {} and not library.lora_adapters_dir.exists()


def test_an_adapter_for_another_model_is_refused(
    library: Library, tiny_model_dir: Path, other_model_dir: Path, tmp_path: Path
) -> None:
    from workbench.core.backends.hf import TransformersBackend

    source = peft_made_adapter(tiny_model_dir, tmp_path / "for-tiny")
    other = tiny_spec(other_model_dir, "other-llama")
    with pytest.raises(LoraAdapterMismatchError) as refused:
        import_lora_adapter(library, source, other)
    text = str(refused.value)
    assert "'other-llama'" in text and "has 48 → 48" in text
    assert "made for another base model" in text
    assert library.lora_adapters == {}
    # stored for the tiny model, then run on the other one: refused by the weights' hash
    adapter = import_lora_adapter(library, source, tiny_spec(tiny_model_dir))
    backend = TransformersBackend(other, BackendSettings(device="cpu", threads=2))
    try:
        with pytest.raises(LoraAdapterMismatchError, match="made for model 'tiny-llama'"):
            check_compatible(adapter, backend)
        with pytest.raises(LoraAdapterMismatchError):
            apply_adapter(library, adapter, backend)
    finally:
        backend.close()


def test_other_folders_are_refused_with_what_is_wrong(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(tiny_model_dir)
    source = peft_made_adapter(tiny_model_dir, tmp_path / "good")
    prompt_tuning = tmp_path / "prompt-tuning"
    shutil.copytree(source, prompt_tuning)
    config = json.loads((prompt_tuning / "adapter_config.json").read_text())
    (prompt_tuning / "adapter_config.json").write_text(
        json.dumps({**config, "peft_type": "PROMPT_TUNING"})
    )
    with pytest.raises(LoraAdapterError, match=r"PROMPT_TUNING.*workbench soft import"):
        import_lora_adapter(library, prompt_tuning, spec)
    truncated = tmp_path / "truncated"
    shutil.copytree(source, truncated)
    weights = truncated / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(LoraAdapterError, match="not a readable safetensors file"):
        import_lora_adapter(library, truncated, spec)
    with pytest.raises(LoraAdapterError, match="not a folder"):
        import_lora_adapter(library, tmp_path / "missing", spec)
    assert library.lora_adapters == {}
