"""Prompt tuning for real: a tiny random-weight model for mechanics, the embedded model
through `workbench tune`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.core.library import Library
from workbench.core.models import (
    FewShot,
    FewShotExample,
    Message,
    Prompt,
    TestRow,
    TestSet,
    TrainConfig,
)
from workbench.core.tuning import (
    StepEvent,
    TrainingError,
    TrainingExample,
    TrainingState,
    TuningFinished,
    ValidationEvent,
    load_base_model,
    train_soft_prompt,
    training_data,
)

pytestmark = pytest.mark.integration


def examples(n: int) -> list[TrainingExample]:
    words = ["apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "chair"]
    return [
        TrainingExample(
            [Message(role="user", content=f"Say yes to {words[i % 8]} {i}")],
            "yes" if i % 2 else "no",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    return load_base_model(tiny_model_dir, "cpu", "fp32")


def run(tiny, config: TrainConfig, **kwargs):
    base, tokenizer = tiny
    events = list(
        train_soft_prompt(
            base,
            tokenizer,
            examples(16),
            examples(8)[:4],
            config,
            init_from="Answer yes or no.",
            **kwargs,
        )
    )
    final = events[-1]
    assert isinstance(final, TuningFinished)
    return events, final.result


def test_loss_decreases_and_the_run_is_reproducible(tiny) -> None:
    config = TrainConfig(
        num_virtual_tokens=4,
        steps=30,
        batch_size=4,
        learning_rate=0.1,
        eval_every=10,
        device="cpu",
        init="random",
        early_stopping_patience=None,  # the whole run: all 30 steps, 3 validations
    )
    events, result = run(tiny, config, labels=["yes", "no"])
    losses = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert [e.step for e in events if isinstance(e, ValidationEvent)] == [10, 20, 30]
    assert result.reason == "done" and result.embeddings.shape == (4, 32)
    assert result.embeddings.dtype == np.float32
    _, again = run(tiny, config, labels=["yes", "no"])
    np.testing.assert_array_equal(result.embeddings, again.embeddings)


def test_epochs_decide_the_number_of_steps(tiny) -> None:
    """2.5 passes over 16 examples in batches of 4 = 10 steps; validation at the end."""
    config = TrainConfig(
        num_virtual_tokens=4, steps=999, epochs=2.5, batch_size=4, eval_every=100, device="cpu"
    )
    events, result = run(tiny, config, labels=["yes", "no"])
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(1, 11))
    assert {e.total_steps for e in steps} == {10}
    assert [e.step for e in events if isinstance(e, ValidationEvent)] == [10]
    assert result.steps == 10


def test_only_the_prompt_is_trained(tiny) -> None:
    base, _ = tiny
    before = {k: v.clone() for k, v in base.state_dict().items()}
    run(tiny, TrainConfig(num_virtual_tokens=4, steps=3, batch_size=4, device="cpu"))
    after = base.state_dict()
    assert all(bool((before[k] == after[k]).all()) for k in before)


def test_cancel_stops_within_one_step(tiny) -> None:
    cancel = threading.Event()
    base, tokenizer = tiny
    config = TrainConfig(num_virtual_tokens=4, steps=50, batch_size=4, device="cpu")
    steps = 0
    result = None
    for event in train_soft_prompt(
        base, tokenizer, examples(16), [], config, cancel=cancel, init_from="x"
    ):
        if isinstance(event, StepEvent):
            steps += 1
            cancel.set()
        if isinstance(event, TuningFinished):
            result = event.result
    assert steps == 1 and result is not None
    assert result.reason == "cancelled" and result.steps == 1


def test_checkpoint_round_trip_and_resume_continues_the_same_run(tiny, tmp_path: Path) -> None:
    config = TrainConfig(
        num_virtual_tokens=4, steps=8, batch_size=4, device="cpu", early_stopping_patience=None
    )
    _, straight = run(tiny, config)
    _, first = run(tiny, config.model_copy(update={"steps": 4}))
    assert first.checkpoint is not None and first.checkpoint.step == 4
    path = tmp_path / "ckpt.safetensors"
    first.checkpoint.save(path)
    state = TrainingState.load(path)
    np.testing.assert_array_equal(state.embeddings, first.checkpoint.embeddings)
    events, resumed = run(tiny, config, resume=state)
    assert [e.step for e in events if isinstance(e, StepEvent)] == [5, 6, 7, 8]
    np.testing.assert_allclose(resumed.embeddings, straight.embeddings, rtol=1e-4, atol=1e-5)


def test_a_nan_loss_stops_the_run_with_a_message_and_keeps_a_good_prompt(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = tiny
    head = base.get_output_embeddings()
    real_forward = head.forward
    calls = {"n": 0}

    def failing_after_three_steps(hidden):  # fault injection: the model starts to emit NaN
        calls["n"] += 1
        out = real_forward(hidden)
        return out * float("nan") if calls["n"] > 3 else out

    monkeypatch.setattr(head, "forward", failing_after_three_steps)
    config = TrainConfig(num_virtual_tokens=4, steps=20, batch_size=4, device="cpu")
    events, result = run(tiny, config)
    assert result.reason == "nan"
    assert "lower learning rate" in result.message
    assert [e.step for e in events if isinstance(e, StepEvent)] == [1, 2, 3]
    assert result.steps == 3 and np.isfinite(result.embeddings).all()


def test_no_training_data_is_a_clear_error(tiny) -> None:
    base, tokenizer = tiny
    with pytest.raises(TrainingError, match="no training examples"):
        list(train_soft_prompt(base, tokenizer, [], [], TrainConfig(device="cpu")))


def test_training_data_uses_examples_and_the_train_split() -> None:
    prompt = Prompt(
        name="p",
        user_template="Q: {{ q }}",
        few_shot=FewShot(examples=[FewShotExample(vars={"q": "a"}, output="x")]),
    )
    test_set = TestSet(
        name="t",
        rows=[
            TestRow(vars={"q": "1"}, expected="y", split="train"),
            TestRow(vars={"q": "2"}, expected="z", split="validation"),
            TestRow(vars={"q": "3"}, expected="w", split="test"),
        ],
    )
    train, validation = training_data(prompt, test_set)
    assert [(e.messages[-1].content, e.target) for e in train] == [("Q: a", "x"), ("Q: 1", "y")]
    assert [(e.messages[-1].content, e.target) for e in validation] == [("Q: 2", "z")]
    # the soft prompt replaces the examples: training inputs are zero-shot
    assert all(len(e.messages) == 1 for e in train)


def test_workbench_tune_on_the_embedded_model(library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = library.save_prompt(
        Prompt(
            name="Polarity",
            system="Answer positive or negative.",
            user_template="{{ text }}",
            few_shot=FewShot(
                examples=[
                    FewShotExample(vars={"text": "great"}, output="positive"),
                    FewShotExample(vars={"text": "awful"}, output="negative"),
                ]
            ),
        )
    )
    rows = [
        TestRow(vars={"text": t}, expected=e)
        for t, e in [
            ("love it", "positive"),
            ("hate it", "negative"),
            ("superb", "positive"),
            ("broken", "negative"),
            ("wonderful", "positive"),
            ("useless", "negative"),
            ("perfect", "positive"),
            ("terrible", "negative"),
        ]
    ]
    library.save_test_set(
        TestSet(name="polarity", prompt_id=prompt.id, rows=rows, labels=["positive", "negative"])
    )
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library_dir)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "tune",
            "Polarity",
            "--steps",
            "3",
            "--tokens",
            "4",
            "--batch-size",
            "2",
            "--eval-every",
            "3",
            "--no-compare",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    assert any(e["event"] == "validation" for e in events)
    saved = [e for e in events if e["event"] == "saved"]
    assert len(saved) == 1
    reloaded = Library(library_dir)
    soft = reloaded.soft_prompts[saved[0]["soft_prompt"]]
    assert soft.prompt_id == prompt.id and soft.num_virtual_tokens == 4
    assert soft.hidden_size == 576 and soft.base_model == "smollm2-135m-instruct"
    assert soft.data_hash and soft.base_model_hash and soft.curves["train_loss"]
    assert reloaded.soft_prompt_tensor_path(soft).stat().st_size > 4 * 576 * 4
    # the split was made once and saved, so the held-out rows stay held out
    splits = {r.split for r in reloaded.test_sets_for(prompt.id)[0].rows}
    assert splits == {"train", "validation", "test"}
    # the new soft prompt runs on both backends from the command line
    for backend in ("llama.cpp", "transformers"):
        generated = subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench",
                "generate",
                "Polarity",
                "--var",
                "text=lovely",
                "--soft",
                soft.id,
                "--backend",
                backend,
                "--max-tokens",
                "3",
                "--json",
                "--no-save",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert generated.returncode == 0, generated.stderr[-2000:]
        done = json.loads(generated.stdout.splitlines()[-1])
        assert done["event"] == "done" and done["stats"]["completion_tokens"] >= 1
    refused = subprocess.run(
        [sys.executable, "-m", "workbench", "generate", "--text", "hi", "--soft", "missing"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert refused.returncode == 2 and "no single soft prompt" in refused.stderr


def test_soft_prompt_export_import_and_nearest_from_the_command_line(
    library_dir: Path, tmp_path: Path, hf_backend
) -> None:
    from workbench.core.backends.registry import embedded_spec
    from workbench.core.models import SoftPrompt
    from workbench.core.softprompt import (
        load_soft_prompt_tensor,
        model_hash_for_spec,
        soft_prompt_bytes,
    )

    weight = hf_backend.model.get_input_embeddings().weight.detach().float().numpy()
    tokens = hf_backend.tokenizer("yes or no", add_special_tokens=False)["input_ids"]
    tensor = weight[tokens].copy()
    library = Library(library_dir)
    spec = embedded_spec()
    soft = SoftPrompt(
        name="yn",
        base_model=spec.id,
        base_model_hash=model_hash_for_spec(spec),
        num_virtual_tokens=len(tokens),
        hidden_size=576,
        init="text",
        init_text="yes or no",
        tensor_file="yn.safetensors",
    )
    library.save_soft_prompt(soft, soft_prompt_bytes(tensor))
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    out = tmp_path / "adapter"
    exported = cli("soft", "export", "yn", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "PROMPT_TUNING"
    imported = cli("soft", "import", str(out), "--name", "back")
    assert imported.returncode == 0, imported.stderr
    back = next(s for s in Library(library_dir).soft_prompts.values() if s.name == "back")
    again = load_soft_prompt_tensor(Library(library_dir).soft_prompt_tensor_path(back))
    np.testing.assert_array_equal(again, tensor)
    nearest = cli("soft", "nearest", "back", "-k", "1")
    assert nearest.returncode == 0, nearest.stderr
    assert [line.split(None, 1)[1].rsplit(" ", 1)[0] for line in nearest.stdout.splitlines()] == [
        repr(hf_backend.tokenizer.decode([t])) for t in tokens
    ]


@pytest.mark.parametrize("placement", ["replace", "add"])
def test_each_placement_trains_and_its_soft_prompt_runs_on_both_backends(
    library_dir: Path, embedded_spec, llama_backend, hf_backend, placement: str
) -> None:
    """A few steps of the real flow on the embedded model in each placement: the soft
    prompt is saved with its placement, and both backends score with it alike."""
    from workbench.core.flows.lookup import load_virtual_tokens
    from workbench.core.graduation import SoftPromptSaved, graduate

    library = Library(library_dir)
    prompt = library.new_prompt(
        "Yes or no",
        system="Answer yes or no.",
        user_template="Is {{ thing }} a fruit?",
        few_shot=FewShot(
            examples=[
                FewShotExample(vars={"thing": "an apple"}, output="yes"),
                FewShotExample(vars={"thing": "a chair"}, output="no"),
                FewShotExample(vars={"thing": "a pear"}, output="yes"),
                FewShotExample(vars={"thing": "a stone"}, output="no"),
            ]
        ),
    )
    config = TrainConfig(
        num_virtual_tokens=4, steps=3, batch_size=2, device="cpu", placement=placement
    )
    events = list(graduate(library, prompt, None, embedded_spec, config, compare=False))
    saved = [e.soft_prompt for e in events if isinstance(e, SoftPromptSaved)]
    assert len(saved) == 1 and saved[0].placement == placement
    tokens = load_virtual_tokens(library, saved[0])
    assert tokens.placement == placement and tokens.count == 4
    messages = [
        Message(role="system", content=prompt.system),
        Message(role="user", content="Is a plum a fruit?"),
    ]
    on_llama = llama_backend.score_continuations(messages, ["yes", "no"], soft_prompt=tokens)
    on_hf = hf_backend.score_continuations(messages, ["yes", "no"], soft_prompt=tokens)
    assert on_llama == pytest.approx(on_hf, abs=0.3)
    without = hf_backend.context_tokens(messages)
    with_soft = hf_backend.context_tokens(messages, tokens)
    assert (with_soft < without) if placement == "replace" else (with_soft == without + 4)
