"""What the Graduate panel tests share: a sentiment prompt and test set, a comparison run,
a stored soft prompt, a tiny random-weight model, and small ways to press the panel's
buttons and read its labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSpinBox

from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.evaluation import summarise
from workbench.core.library import Library
from workbench.core.models import (
    CaseResult,
    EvalRun,
    FewShot,
    FewShotExample,
    GenerationParams,
    Prompt,
    SoftPrompt,
    TestRow,
    TestSet,
    TrainConfig,
    VariantSpec,
)
from workbench.core.softprompt import soft_prompt_bytes
from workbench.ui.graduate import GraduatePanel
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection

MODEL_TIMEOUT_MS = 300_000

REVIEWS = [
    ("I love it! Wonderful, perfect, the best purchase ever.", "positive"),
    ("Terrible. It broke on day one, awful, I hate it.", "negative"),
    ("Great value and it works beautifully, very happy.", "positive"),
    ("Awful quality, a complete waste of money.", "negative"),
]


@dataclass
class Opened:
    """What a standalone panel was built from (no main window)."""

    library: Library
    jobs: JobRunner
    session: ModelSession
    selection: PromptSelection


def sentiment_prompt(library: Library, examples: bool = True) -> Prompt:
    """Like the sample library's review-sentiment prompt, with two labels."""
    shots = [
        FewShotExample(vars={"review": "Absolutely brilliant, I adore it."}, output="positive"),
        FewShotExample(vars={"review": "Dreadful, it stopped working."}, output="negative"),
    ]
    return library.new_prompt(
        "Review sentiment",
        system="Classify the sentiment of the review as positive or negative. "
        "Answer with one word.",
        user_template="Review: {{ review }}\nSentiment:",
        few_shot=FewShot(examples=shots if examples else []),
        params=GenerationParams(max_new_tokens=4),
    )


def sentiment_set(library: Library, prompt: Prompt, count: int = 12) -> TestSet:
    rows = [
        TestRow(vars={"review": f"{REVIEWS[i % 4][0]} ({i})"}, expected=REVIEWS[i % 4][1])
        for i in range(count)
    ]
    return library.save_test_set(
        TestSet(name="reviews", prompt_id=prompt.id, labels=["positive", "negative"], rows=rows)
    )


def child(panel: GraduatePanel, kind: type, name: str) -> Any:
    found = panel.findChild(kind, name)
    assert found is not None, name
    return found


def click(qtbot, panel: GraduatePanel, name: str) -> None:
    qtbot.mouseClick(child(panel, QPushButton, name), Qt.MouseButton.LeftButton)


def text_of(panel: GraduatePanel, name: str) -> str:
    return str(child(panel, QLabel, name).text())


def tiny_settings(
    panel: GraduatePanel, tokens: int = 8, steps: int = 6, batch: int = 4, every: int = 3
) -> None:
    child(panel, QSpinBox, "gradTokens").setValue(tokens)
    child(panel, QSpinBox, "gradSteps").setValue(steps)
    child(panel, QSpinBox, "gradBatch").setValue(batch)
    child(panel, QSpinBox, "gradEvalEvery").setValue(every)


def wait_idle(qtbot, opened: Opened, panel: GraduatePanel) -> None:
    """The run and every job it queued (nearest tokens, export) have finished."""
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not opened.jobs.busy, timeout=MODEL_TIMEOUT_MS)


def comparison_run(prompt: Prompt, test_set: TestSet) -> EvalRun:
    specs = [
        VariantSpec(name="zero-shot", few_shot_count=0),
        VariantSpec(name="few-shot"),
        VariantSpec(name="soft prompt", few_shot_count=0, soft_prompt_id="abc123"),
    ]
    results = [
        [
            CaseResult(
                row=r,
                answer="positive",
                scores={"label": float(r % 2 == v % 2)},
                latency_s=0.01 * (v + 1),
                context_tokens=30 + 20 * (v == 1) + 8 * (v == 2),
            )
            for r in (0, 1, 2)
        ]
        for v in range(3)
    ]
    run = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        split="test",
        mode="likelihood",
        metrics=["label"],
        variants=specs,
        results=results,
    )
    run.summaries = [
        summarise(s.name, r, test_set, run.metrics) for s, r in zip(specs, results, strict=True)
    ]
    return run


def stored_soft_prompt(library: Library, prompt: Prompt, tokens: int = 3) -> SoftPrompt:
    soft = SoftPrompt(
        name="stored soft prompt",
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        base_model=EMBEDDED_ID,
        base_model_hash="0" * 64,
        num_virtual_tokens=tokens,
        hidden_size=4,
        train_config=TrainConfig(num_virtual_tokens=tokens, steps=5),
        metrics={"steps": 5.0, "best_val_accuracy": 0.75},
        curves={
            "train_loss": [2.0, 1.5, 1.2, 1.0, 0.9],
            "val_loss": [1.4, 1.1],
            "val_accuracy": [0.5, 0.75],
            "val_step": [2.0, 4.0],
        },
        tensor_file="stored.safetensors",
    )
    tensor = np.arange(tokens * 4, dtype=np.float32).reshape(tokens, 4) + 1
    library.save_soft_prompt(soft, soft_prompt_bytes(tensor))
    return soft


def save_tiny_model(folder: Path) -> Path:
    """A random-weight 2-layer Llama with the embedded SmolLM2's tokenizer, saved as a
    Hugging Face folder (as tests/integration's `tiny_model_dir`): a training step takes
    milliseconds. The tokenizer comes from the converted-model cache the tests share."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from workbench.core.backends.hf import gguf_as_hf_folder
    from workbench.core.backends.registry import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_as_hf_folder(embedded_model_path())))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
