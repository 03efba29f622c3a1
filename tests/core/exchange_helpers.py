"""Shared by the exchange tests: a rich library and a byte snapshot of a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save

from workbench.core.library import Library
from workbench.core.models import (
    ChainOfThought,
    CoTMode,
    FewShot,
    FewShotExample,
    GenerationParams,
    LoraAdapter,
    LoraSettings,
    Prompt,
    SoftPrompt,
    TestRow,
    TestSet,
    Variable,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exchange"


def tensor_bytes(tokens: int = 4, hidden: int = 8, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return save({"prompt_embeddings": rng.standard_normal((tokens, hidden), dtype=np.float32)})


def add_soft_prompt(
    library: Library,
    name: str,
    prompt_id: str | None = None,
    tokens: int = 4,
    hidden: int = 8,
    seed: int = 0,
    base_model: str = "tiny",
    **fields: object,
) -> SoftPrompt:
    """A soft prompt with a random [tokens, hidden] tensor, saved in the library."""
    soft = SoftPrompt(
        name=name,
        prompt_id=prompt_id,
        base_model=base_model,
        base_model_hash="0" * 64,
        num_virtual_tokens=tokens,
        hidden_size=hidden,
        tensor_file="placeholder.safetensors",
        **fields,  # type: ignore[arg-type]
    )
    soft = soft.model_copy(update={"tensor_file": f"{soft.id}.safetensors"})
    library.save_soft_prompt(soft, tensor_bytes(tokens, hidden, seed))
    return soft


def lora_files(rank: int = 2, width: int = 8, layers: int = 2, seed: int = 0) -> dict[str, bytes]:
    """A PEFT LoRA adapter folder's files (as PEFT writes them: the config, and lora_A /
    lora_B of each layer's q_proj and v_proj) with random weights."""
    import json

    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for name in ("q_proj", "v_proj"):
            key = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((rank, width), np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((width, rank), np.float32)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "bias": "none",
        "use_dora": False,
        "use_rslora": False,
    }
    return {
        "adapter_config.json": json.dumps(config, indent=2).encode(),
        "adapter_model.safetensors": save(tensors, metadata={"format": "pt"}),
    }


def add_lora_adapter(
    library: Library, name: str, prompt_id: str | None = None, rank: int = 2, seed: int = 0
) -> LoraAdapter:
    """A LoRA adapter with random weights, saved in the library."""
    adapter = LoraAdapter(
        name=name,
        prompt_id=prompt_id,
        base_model="tiny",
        base_model_hash="0" * 64,
        lora=LoraSettings(rank=rank, alpha=2 * rank, target_modules=["q_proj", "v_proj"]),
        trainable_parameters=2 * 2 * 2 * rank * 8,
        metrics={"accuracy": 0.5},
        folder="placeholder",
    )
    adapter = adapter.model_copy(update={"folder": adapter.id})
    library.save_lora_adapter(adapter, lora_files(rank, seed=seed))
    return adapter


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path → bytes)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def rich_library(library: Library) -> Prompt:
    """A prompt with three versions, variables, few-shot examples, chain of thought and
    parameters; a test set with groups and splits; a soft prompt; and a second prompt."""
    prompt = library.new_prompt(
        "Capital",
        description="Capitals of countries",
        tags=["geo", "demo"],
        labels=["production"],
        system="You are a geography tutor.",
        user_template="What is the capital of {{ country }}?",
        variables=[Variable(name="country", default="France", description="a country")],
        few_shot=FewShot(
            examples=[
                FewShotExample(input="What is the capital of Italy?", output="Rome"),
                FewShotExample(vars={"country": "Spain"}, output="Madrid"),
            ]
        ),
        params=GenerationParams(temperature=0.3, max_new_tokens=32, stop=["\n"], seed=7),
        sample_values={"country": "Peru"},
    )
    prompt = library.save_prompt(prompt.model_copy(update={"description": "Capitals, v2"}))
    prompt = library.save_prompt(
        prompt.model_copy(update={"cot": ChainOfThought(mode=CoTMode.ZERO_SHOT)})
    )
    library.add_test_set_verbatim(
        TestSet(
            name="capitals",
            prompt_id=prompt.id,
            labels=None,
            rows=[
                TestRow(vars={"country": "Chile"}, expected="Santiago", group="americas"),
                TestRow(vars={"country": "Kenya"}, expected="Nairobi", split="test"),
            ],
        )
    )
    add_soft_prompt(
        library,
        "capital soft",
        prompt.id,
        prompt_version=prompt.version,
        metrics={"accuracy": 0.75},
    )
    library.new_prompt("Greeting", user_template="Say hello to {{ name }}.")
    return prompt
