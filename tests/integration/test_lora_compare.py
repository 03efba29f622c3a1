"""After a LoRA run the held-out comparison runs as after a soft prompt (one flow,
`graduation.compare_on_held_out`): zero-shot / few-shot / LoRA on the test split, the
adapter merged for its row only, the comparison saved as an evaluation run. On a tiny
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
