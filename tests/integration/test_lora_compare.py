"""After a LoRA run the held-out comparison runs as after a soft prompt (one flow,
`graduation.compare_on_held_out`): zero-shot / few-shot / LoRA on the test split, the
adapter applied for its row only, the comparison saved as an evaluation run. On a tiny
random-weight Llama, so it takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.backends.base import BackendSettings
from workbench.core.graduation import LORA_VARIANT, ComparisonFinished, ComparisonStarted
from workbench.core.library import Library
from workbench.core.lora import LoraAdapterSaved, graduate_lora
from workbench.core.models import (
    FewShot,
    FewShotExample,
    LoraSettings,
    ModelSpec,
    TestRow,
    TestSet,
    TrainConfig,
)
from workbench.core.testsets_io import rows_in_split

pytestmark = pytest.mark.integration


def test_a_lora_graduation_compares_zero_shot_few_shot_and_lora_on_held_out_rows(
    library: Library, tiny_model_dir: Path
) -> None:
    prompt = library.new_prompt("Yes or no", system="Answer yes or no.", user_template="{{ text }}")
    prompt = library.save_prompt(
        prompt.model_copy(
            update={
                "few_shot": FewShot(
                    examples=[FewShotExample(vars={"text": "say yes"}, output="yes")], count=1
                )
            }
        )
    )
    rows = [
        TestRow(vars={"text": f"say {word} {i}"}, expected=word)
        for i, word in enumerate(["no", "yes"] * 6)
    ]
    test_set = library.save_test_set(
        TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"])
    )
    spec = ModelSpec(id="tiny-llama", name="tiny-llama", source="hf", path=str(tiny_model_dir))
    config = TrainConfig(
        steps=4, batch_size=2, eval_every=2, learning_rate=5e-2, device="cpu", seed=1
    )
    events = list(
        graduate_lora(
            library,
            prompt,
            test_set,
            spec,
            config,
            LoraSettings(rank=4, alpha=8),
            backend_settings=BackendSettings(threads=2),
            compare=True,
        )
    )
    kinds = [type(e).__name__ for e in events]
    saved = next(e for e in events if isinstance(e, LoraAdapterSaved)).adapter
    started = next(e for e in events if isinstance(e, ComparisonStarted))
    assert kinds.index("LoraAdapterSaved") < kinds.index("ComparisonStarted")
    assert started.variants == ["zero-shot", "few-shot", LORA_VARIANT]
    split = library.test_sets[test_set.id]  # split and saved by the flow
    held_out = rows_in_split(split, "test")
    assert started.rows == len(held_out) > 0

    finished = events[-1]
    assert isinstance(finished, ComparisonFinished)
    run = finished.run
    assert [s.name for s in run.summaries] == ["zero-shot", "few-shot", LORA_VARIANT]
    assert run.complete and run.split == "test" and run.prompt_id == prompt.id
    assert all(s.cases == len(held_out) for s in run.summaries)
    assert [r.id for r in Library(library.root).eval_runs_for(prompt.id)] == [run.id]
    # the adapter is in for its row only: LoRA scores the labels differently from the
    # zero-shot prompt it was trained on, and the model was not changed for the others
    zero, lora = run.results[0], run.results[2]
    assert [c.row for c in zero] == [c.row for c in lora]
    assert any(
        z.label_scores != pytest.approx(lo.label_scores, abs=1e-6)
        for z, lo in zip(zero, lora, strict=True)
    )
    # and the same adapter in the library is what ran
    assert saved.id in library.lora_adapters


def _yes_no(library: Library) -> tuple:
    prompt = library.new_prompt("Yes or no", system="Answer yes or no.", user_template="{{ text }}")
    example = FewShotExample(vars={"text": "say yes"}, output="yes")
    prompt = library.save_prompt(
        prompt.model_copy(update={"few_shot": FewShot(examples=[example], count=1)})
    )
    rows = [
        TestRow(vars={"text": f"say {word} {i}"}, expected=word)
        for i, word in enumerate(["no", "yes"] * 6)
    ]
    test_set = TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"])
    return prompt, library.save_test_set(test_set)


def _graduation(method, library, prompt, test_set, spec, config, compare: bool):
    """A soft-prompt (2 virtual tokens) or LoRA (rank 2) graduation's events, 2 threads."""
    from workbench.core import graduation

    settings = BackendSettings(threads=2)
    if method == "soft":
        soft = config.model_copy(update={"num_virtual_tokens": 2})
        return graduation.graduate(
            library, prompt, test_set, spec, soft, compare=compare, settings=settings
        )
    return graduate_lora(
        library,
        prompt,
        test_set,
        spec,
        config,
        LoraSettings(rank=2),
        backend_settings=settings,
        compare=compare,
    )


@pytest.mark.parametrize("method", ["soft", "lora"])
def test_the_eta_covers_the_held_out_comparison_by_one_rule_for_both_methods(
    library: Library, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """Each step's ETA is the training loop's plus the comparison's cases (held-out rows
    × zero-shot / few-shot / trained) at what validation measured per row (before the
    first validation, one example of a training step); a LoRA run without a comparison
    (the method table trains it) adds nothing."""
    from workbench.core import graduation, lora
    from workbench.core.tuning import StepEvent, ValidationEvent

    prompt, test_set = _yes_no(library)
    spec = ModelSpec(id="tiny-llama", name="tiny-llama", source="hf", path=str(tiny_model_dir))
    raw: list = []  # the training loop's own events, before the flow adds the comparison

    def spy(real):
        def trainer(*args, **kwargs):
            for event in real(*args, **kwargs):
                raw.append(event)
                yield event

        return trainer

    config = TrainConfig(steps=4, batch_size=2, eval_every=2, device="cpu", seed=1)

    monkeypatch.setattr(graduation, "train_soft_prompt", spy(graduation.train_soft_prompt))
    monkeypatch.setattr(lora, "train_lora", spy(lora.train_lora))

    def run(compare: bool) -> list:
        raw.clear()
        tuned = config if method == "soft" else config.model_copy(update={"learning_rate": 1e-2})
        return list(_graduation(method, library, prompt, test_set, spec, tuned, compare))

    events = run(compare=True)
    started = next(e for e in events if isinstance(e, ComparisonStarted))
    cases = started.rows * len(started.variants)
    assert cases == 3 * len(rows_in_split(library.test_sets[test_set.id], "test")) > 0
    steps = [e for e in events if isinstance(e, StepEvent)]
    trained = [e for e in raw if isinstance(e, StepEvent)]
    assert [s.step for s in steps] == [s.step for s in trained] == [1, 2, 3, 4]
    per_case = None
    for event in raw:
        if isinstance(event, ValidationEvent):
            per_case = event.seconds / event.rows
        elif isinstance(event, StepEvent):
            shown = steps[trained.index(event)]
            guess = per_case if per_case is not None else 1 / (event.steps_per_s * 2)
            assert shown.eta_s - event.eta_s == pytest.approx(cases * guess, rel=1e-9)
            assert shown.eta_s > event.eta_s
    if method == "lora":
        events = run(compare=False)
        assert not any(isinstance(e, ComparisonStarted) for e in events)
        shown = [e.eta_s for e in events if isinstance(e, StepEvent)]
        assert shown == [e.eta_s for e in raw if isinstance(e, StepEvent)]


@pytest.mark.parametrize("method", ["soft", "lora"])
def test_every_graduation_saves_its_training_time_and_peak_memory(
    library: Library, tiny_model_dir: Path, method: str
) -> None:
    """Graduate tab, `workbench tune` and the method table alike: the item saved carries
    the run's wall time (the model's load included) and its highest resident memory."""
    import time

    from workbench.core.tuning import StepEvent

    prompt, test_set = _yes_no(library)
    spec = ModelSpec(id="tiny-llama", name="tiny-llama", source="hf", path=str(tiny_model_dir))
    config = TrainConfig(steps=3, batch_size=2, eval_every=3, device="cpu", seed=1)
    started = time.perf_counter()
    events = list(_graduation(method, library, prompt, test_set, spec, config, compare=False))
    elapsed = time.perf_counter() - started
    saved = [getattr(e, "soft_prompt", None) or getattr(e, "adapter", None) for e in events]
    item = next(s for s in saved if s is not None)
    stored = library.soft_prompts[item.id] if method == "soft" else library.lora_adapters[item.id]
    assert 0 < stored.metrics["train_s"] <= elapsed
    rss = [e.ram_mb for e in events if isinstance(e, StepEvent) and e.ram_mb is not None]
    assert len(rss) == 3 and stored.metrics["peak_rss_mb"] == max(rss)
    assert "peak_cuda_mb" not in stored.metrics  # on CPU
