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
