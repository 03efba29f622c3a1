"""LoRA fine-tuning for real on a tiny random-weight Llama: the loop's events, early
stopping, cancel, NaN and out-of-memory handling, checkpoints PEFT loads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.core.lora import (
    LoraFinished,
    default_target_modules,
    linear_layer_names,
    target_modules,
    train_lora,
)
from workbench.core.models import LoraSettings, Message, TrainConfig
from workbench.core.tuning import (
    StepEvent,
    TrainingError,
    TrainingExample,
    ValidationEvent,
    load_base_model,
)

pytestmark = pytest.mark.integration


def examples(n: int) -> list[TrainingExample]:
    words = ["apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "chair"]
    return [
        TrainingExample(
            [
                Message(role="system", content="Answer yes or no."),
                Message(role="user", content=f"Say yes to {words[i % 8]} {i}"),
            ],
            "yes" if i % 2 else "no",
        )
        for i in range(n)
    ]


@pytest.fixture
def tiny(tiny_model_dir: Path):
    """A fresh copy each test: training injects (and then removes) LoRA layers."""
    return load_base_model(tiny_model_dir, "cpu", "fp32")


def config(**overrides) -> TrainConfig:
    values = {
        "steps": 12,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "eval_every": 4,
        "device": "cpu",
        "early_stopping_patience": None,
    }
    return TrainConfig(**{**values, **overrides})


def run(tiny, train_config: TrainConfig, **kwargs):
    base, tokenizer = tiny
    events = list(
        train_lora(base, tokenizer, examples(16), examples(8)[:4], train_config, **kwargs)
    )
    final = events[-1]
    assert isinstance(final, LoraFinished)
    return events, final.result


def test_targets_are_found_from_the_model_s_module_names(tiny) -> None:
    base, _ = tiny
    names = linear_layer_names(base)
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= set(names)
    assert "lm_head" not in names  # the LM head is never adapted
    assert default_target_modules(base) == ["q_proj", "v_proj"]
    chosen = target_modules(base, LoraSettings(target_modules=["o_proj", "up_proj"]))
    assert chosen == ["o_proj", "up_proj"]
    with pytest.raises(TrainingError, match=r"no linear layers named 'query'.*q_proj"):
        target_modules(base, LoraSettings(target_modules=["query"]))


def test_loss_decreases_validation_keeps_the_best_and_the_base_is_left_as_it_was(
    tiny, tmp_path: Path
) -> None:
    base, _ = tiny
    before = {k: v.clone() for k, v in base.state_dict().items()}
    events, result = run(tiny, config(), labels=["yes", "no"], checkpoint_dir=tmp_path / "ckpt")
    losses = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    validations = [e for e in events if isinstance(e, ValidationEvent)]
    assert [e.step for e in validations] == [4, 8, 12]
    assert all(e.accuracy is not None for e in validations)
    assert validations[0].best  # the first validation is the best so far
    best = max(validations, key=lambda e: (e.accuracy, -e.loss, -e.step))
    assert result.reason == "done" and result.steps == 12
    assert result.best_step in [e.step for e in validations if e.best]
    assert result.curves["val_step"] == [4.0, 8.0, 12.0]
    assert result.metrics["best_val_accuracy"] == best.accuracy
    # rank 8 on q_proj (32 -> 32) and v_proj (32 -> 16) of 2 layers
    assert result.trainable_parameters == 2 * (8 * 32 + 32 * 8 + 8 * 32 + 16 * 8)
    assert set(result.settings.target_modules) == {"q_proj", "v_proj"}
    assert {k.rsplit(".", 2)[-2] for k in result.state} == {"lora_A", "lora_B"}
    assert result.checkpoint == tmp_path / "ckpt"
    assert sorted(p.name for p in result.checkpoint.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    after = base.state_dict()
    assert set(after) == set(before)  # no LoRA layers left behind
    assert all(bool((before[k] == after[k]).all()) for k in before)


def test_the_checkpoint_loads_in_peft_and_changes_the_model_as_trained(
    tiny, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel

    _, result = run(tiny, config(steps=6, eval_every=100), checkpoint_dir=tmp_path / "ckpt")
    fresh, tokenizer = load_base_model(tiny_model_dir, "cpu", "fp32")
    ids = tokenizer("Say yes to apple 3", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        plain = fresh(input_ids=ids).logits
    peft_model = PeftModel.from_pretrained(fresh, str(tmp_path / "ckpt"))
    loaded = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    for key, tensor in result.state.items():
        stored = key.replace(".weight", ".default.weight")
        torch.testing.assert_close(loaded[stored], tensor)
    with torch.no_grad():
        adapted = peft_model(input_ids=ids).logits
    assert not torch.allclose(plain, adapted)  # the trained update is applied


def test_cancel_stops_within_one_step(tiny) -> None:
    base, tokenizer = tiny
    cancel = threading.Event()
    steps = 0
    result = None
    for event in train_lora(base, tokenizer, examples(16), [], config(steps=50), cancel=cancel):
        if isinstance(event, StepEvent):
            steps += 1
            cancel.set()
        if isinstance(event, LoraFinished):
            result = event.result
    assert steps == 1 and result is not None
    assert result.reason == "cancelled" and result.steps == 1
    assert "stopped at step 1" in result.message


def test_a_nan_loss_stops_and_keeps_the_best_adapter(tiny, tmp_path: Path) -> None:
    import torch

    _, result = run(
        tiny,
        config(steps=40, learning_rate=1e6, eval_every=1),
        labels=["yes", "no"],
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert result.reason == "nan", result.message
    assert "lower learning rate" in result.message and "adapter" in result.message
    assert result.steps < 40
    assert all(bool(torch.isfinite(t).all()) for t in result.state.values())
    assert (tmp_path / "ckpt" / "adapter_model.safetensors").is_file()


def test_out_of_memory_is_a_clear_error_and_the_best_adapter_is_kept(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the 4th forward pass runs out of memory."""
    import torch

    from workbench.core import lora

    real = lora._make_module
    calls = {"n": 0}

    def failing(base):
        module = real(base)
        forward = module.forward

        def once_too_many(*args):
            calls["n"] += 1
            if calls["n"] == 4:
                raise torch.OutOfMemoryError("CUDA out of memory (injected)")
            return forward(*args)

        module.forward = once_too_many
        return module

    monkeypatch.setattr(lora, "_make_module", failing)
    base, _ = tiny
    before = {k: v.clone() for k, v in base.state_dict().items()}
    with pytest.raises(TrainingError) as failed:
        run(tiny, config(eval_every=100), checkpoint_dir=tmp_path / "ckpt")
    text = str(failed.value)
    assert "out of memory at batch size 4" in text and "batch size of 2" in text
    assert "lower rank" in text and "from step 3" in text and str(tmp_path / "ckpt") in text
    assert (tmp_path / "ckpt" / "adapter_model.safetensors").is_file()
    after = base.state_dict()
    assert set(after) == set(before)  # the LoRA layers were taken out again


@pytest.mark.slow
def test_a_short_real_lora_run_on_the_embedded_model(
    library, embedded_spec, hf_backend, tmp_path: Path
) -> None:
    """A few steps on the embedded SmolLM2 through the whole flow: the loss goes down on
    the rows it trains on, the adapter is saved, PEFT loads it, and the transformers
    backend runs with it (and without it again once it is taken out)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from workbench.core.backends.hf import gguf_as_hf_folder
    from workbench.core.lora import LoraAdapterSaved, graduate_lora
    from workbench.core.lora_io import apply_adapter
    from workbench.core.models import FewShot, FewShotExample

    prompt = library.new_prompt(
        "Fruit",
        system="Answer yes or no.",
        user_template="Is {{ thing }} a fruit?",
        few_shot=FewShot(
            examples=[
                FewShotExample(vars={"thing": "a chair"}, output="no"),
                FewShotExample(vars={"thing": "a stone"}, output="no"),
            ]
        ),
    )
    # both rows in every step: the losses are comparable step to step
    config = TrainConfig(steps=5, batch_size=2, learning_rate=2e-3, device="cpu")
    events = list(graduate_lora(library, prompt, None, embedded_spec, config))
    losses = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    final = next(e for e in events if isinstance(e, LoraFinished)).result
    assert final.reason == "done" and final.settings.target_modules == ["q_proj", "v_proj"]
    adapter = events[-1].adapter if isinstance(events[-1], LoraAdapterSaved) else None
    assert adapter is not None and adapter.base_model == embedded_spec.id
    folder = library.lora_adapter_path(adapter)

    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(gguf_as_hf_folder(Path(embedded_spec.path)))),
        str(folder),
    )
    assert any("lora_A" in name for name, _ in reference.named_parameters())

    messages = [
        Message(role="system", content=prompt.system),
        Message(role="user", content="Is a chair a fruit?"),
    ]
    before = hf_backend.score_continuations(messages, ["yes", "no"])
    applied = apply_adapter(library, adapter, hf_backend)
    try:
        with_adapter = hf_backend.score_continuations(messages, ["yes", "no"])
    finally:
        applied.remove()
    after = hf_backend.score_continuations(messages, ["yes", "no"])
    assert with_adapter[1] > before[1]  # the trained answer became likelier
    assert after == pytest.approx(before, abs=1e-4)  # and the model is its own again
