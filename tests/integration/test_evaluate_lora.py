"""An evaluation variant can run with a LoRA adapter (`VariantSpec.adapter_id`, the
Evaluate tab's Tuned column, `eval --variant NAME:adapter=...`): the adapter is put into
the variant's model for that variant's cases only and taken out after them, also when
the run is stopped; an adapter made for another model is refused with a message and the
model is left as it was. On a tiny random-weight Llama, so it takes seconds."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.core.exchange_helpers import add_lora_adapter
from workbench.core.backends.base import BackendSettings
from workbench.core.backends.pool import BackendPool
from workbench.core.backends.registry import ModelCatalog
from workbench.core.evaluation import CaseDone, EvalFinished, EvaluationError
from workbench.core.flows.evaluate import plan_evaluation, run_evaluation
from workbench.core.library import Library
from workbench.core.lora import LoraAdapterSaved, graduate_lora
from workbench.core.models import (
    LoraAdapter,
    LoraSettings,
    ModelSpec,
    Prompt,
    TestRow,
    TestSet,
    TrainConfig,
    VariantSpec,
)

pytestmark = pytest.mark.integration


def _task(library: Library) -> tuple[Prompt, TestSet]:
    prompt = library.new_prompt("Yes or no", system="Answer yes or no.", user_template="{{ text }}")
    rows = [
        TestRow(vars={"text": f"say {word} {i}"}, expected=word)
        for i, word in enumerate(["no", "yes"] * 4)
    ]
    test_set = TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"])
    return prompt, library.save_test_set(test_set)


def _tiny(tiny_model_dir: Path) -> ModelSpec:
    return ModelSpec(id="tiny-llama", name="tiny-llama", source="hf", path=str(tiny_model_dir))


def _trained(library: Library, prompt: Prompt, test_set: TestSet, spec: ModelSpec) -> LoraAdapter:
    config = TrainConfig(steps=2, batch_size=2, eval_every=2, learning_rate=5e-2, device="cpu")
    events = graduate_lora(
        library,
        prompt,
        test_set,
        spec,
        config,
        LoraSettings(rank=2, alpha=4),
        backend_settings=BackendSettings(threads=2),
        compare=False,
    )
    return next(e for e in events if isinstance(e, LoraAdapterSaved)).adapter


def _pool(tmp_path: Path, spec: ModelSpec) -> BackendPool:
    return BackendPool(ModelCatalog(tmp_path / "config"), BackendSettings(threads=2), spec)


def _weights(backend) -> dict:
    return {name: p.detach().clone() for name, p in backend.model.named_parameters()}


def _unchanged(backend, before: dict) -> bool:
    after = dict(backend.model.named_parameters())
    if after.keys() != before.keys():  # LoRA layers left in the model
        return False
    return all(bool((after[name] == value).all()) for name, value in before.items())


def test_a_variant_runs_with_a_lora_adapter_for_its_own_cases_only(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    prompt, test_set = _task(library)
    spec = _tiny(tiny_model_dir)
    adapter = _trained(library, prompt, test_set, spec)
    variants = [
        VariantSpec(name="base", few_shot_count=0),
        VariantSpec(name="lora", few_shot_count=0, adapter_id=adapter.id),
        VariantSpec(name="base again", few_shot_count=0),
    ]
    plan = plan_evaluation(library, prompt, test_set, variants, split=None, limit=4)
    with _pool(tmp_path, spec) as pool:
        backend = pool.get(plan.specs[0])
        before = _weights(backend)
        run = next(e.run for e in run_evaluation(plan, pool) if isinstance(e, EvalFinished))
        assert pool.get(plan.specs[0]) is backend  # one model for all three
        assert _unchanged(backend, before)
    assert run.complete and [s.cases for s in run.summaries] == [4, 4, 4]
    assert run.variants[1].adapter_id == adapter.id  # the run says what ran
    base, lora, again = (run.results[i] for i in range(3))
    # the adapter changes the label scores, and is out again for the last variant
    assert any(
        b.label_scores != pytest.approx(lo.label_scores, abs=1e-6)
        for b, lo in zip(base, lora, strict=True)
    )
    for b, a in zip(base, again, strict=True):
        assert b.label_scores == pytest.approx(a.label_scores, abs=1e-6)


def test_a_stopped_run_takes_the_adapter_out(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    prompt, test_set = _task(library)
    spec = _tiny(tiny_model_dir)
    adapter = _trained(library, prompt, test_set, spec)
    lora = VariantSpec(name="lora", few_shot_count=0, adapter_id=adapter.id)
    plan = plan_evaluation(library, prompt, test_set, [lora], split=None)
    cancel = threading.Event()
    with _pool(tmp_path, spec) as pool:
        backend = pool.get(lora)
        before = _weights(backend)
        done = 0
        for event in run_evaluation(plan, pool, cancel):
            if isinstance(event, CaseDone):
                done += 1
                cancel.set()  # the user presses Stop after the first case
            elif isinstance(event, EvalFinished):
                assert not event.run.complete
        assert 1 <= done < len(test_set.rows)
        assert _unchanged(backend, before)


def test_an_adapter_made_for_another_model_is_refused_and_the_model_left_as_it_was(
    library: Library, tiny_model_dir: Path, tmp_path: Path
) -> None:
    prompt, test_set = _task(library)
    spec = _tiny(tiny_model_dir)
    other = add_lora_adapter(library, "other-model", prompt.id)  # made for model "tiny"
    variants = [
        VariantSpec(name="base", few_shot_count=0),
        VariantSpec(name="lora", few_shot_count=0, adapter_id="other-model"),
    ]
    plan = plan_evaluation(library, prompt, test_set, variants, split=None, limit=2)
    assert plan.specs[1].adapter_id == other.id
    with _pool(tmp_path, spec) as pool:
        backend = pool.get(plan.specs[0])
        before = _weights(backend)
        with pytest.raises(EvaluationError, match="'other-model' was made for model 'tiny'"):
            list(run_evaluation(plan, pool))
        assert _unchanged(backend, before)
