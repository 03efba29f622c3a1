"""The evaluation flow: planning (rows by split and limit, variants → prompts, soft
prompts by name) and the run on a pool — filed under the evaluated prompt, one model
loaded at a time (fake backends through the pool's patched loader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.fake_pool import FakeBackend, make_pool, patch_loader
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.evaluation import EvalFinished, EvaluationError
from workbench.core.flows.evaluate import (
    default_split,
    plan_evaluation,
    run_evaluation,
    select_rows,
)
from workbench.core.library import Library
from workbench.core.models import EvalRun, Prompt, TestRow, TestSet, VariantSpec


def labelled(library: Library, prompt: Prompt, splits: bool = False) -> TestSet:
    rows = [
        TestRow(
            vars={"text": f"case {i}"},
            expected="positive",
            split=("test" if i % 2 else "train") if splits else None,
        )
        for i in range(4)
    ]
    return library.save_test_set(
        TestSet(name="cases", prompt_id=prompt.id, labels=["positive", "negative"], rows=rows)
    )


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[FakeBackend]:
    return patch_loader(monkeypatch)


def finished_run(events: object) -> EvalRun:
    runs = [e.run for e in events if isinstance(e, EvalFinished)]  # type: ignore[attr-defined]
    assert len(runs) == 1
    return runs[0]


def test_rows_by_split_and_limit(library: Library) -> None:
    prompt = library.new_prompt("p", user_template="{{ text }}")
    plain, split = labelled(library, prompt), labelled(library, prompt, splits=True)
    assert default_split(plain) is None and default_split(split) == "test"
    assert select_rows(split, "test") == [1, 3]
    assert select_rows(plain, None, limit=3) == [0, 1, 2]
    with pytest.raises(EvaluationError, match="no rows in the validation split"):
        plan_evaluation(library, prompt, split, [VariantSpec(name="v")], split="validation")
    with pytest.raises(EvaluationError, match="at least one variant"):
        plan_evaluation(library, prompt, plain, [], split=None)


def test_a_soft_prompt_may_be_named(library: Library) -> None:
    from tests.core.exchange_helpers import add_soft_prompt

    prompt = library.new_prompt("p", user_template="{{ text }}")
    soft = add_soft_prompt(library, "tuned", prompt.id, tokens=2, hidden=8)
    plan = plan_evaluation(
        library,
        prompt,
        labelled(library, prompt),
        [VariantSpec(name="soft", soft_prompt_id="tuned")],
        split=None,
    )
    assert plan.specs[0].soft_prompt_id == soft.id and soft.id in plan.soft_paths
    with pytest.raises(EvaluationError, match="Variant 'gone'"):
        plan_evaluation(
            library,
            prompt,
            labelled(library, prompt),
            [VariantSpec(name="gone", soft_prompt_id="nope")],
            split=None,
        )


def test_a_lora_adapter_may_be_named_and_a_variant_takes_one_tuned_method(
    library: Library,
) -> None:
    from tests.core.exchange_helpers import add_lora_adapter, add_soft_prompt

    prompt = library.new_prompt("p", user_template="{{ text }}")
    adapter = add_lora_adapter(library, "yes-no-lora", prompt.id)
    add_soft_prompt(library, "tuned", prompt.id, tokens=2, hidden=8)
    cases = labelled(library, prompt)
    plan = plan_evaluation(
        library, prompt, cases, [VariantSpec(name="lora", adapter_id="yes-no-lora")], split=None
    )
    assert plan.specs[0].adapter_id == adapter.id and plan.adapters == {adapter.id: adapter}
    assert plan.library is library
    with pytest.raises(EvaluationError, match="Variant 'gone': no single LoRA adapter 'nope'"):
        plan_evaluation(
            library, prompt, cases, [VariantSpec(name="gone", adapter_id="nope")], split=None
        )
    both = VariantSpec(name="both", soft_prompt_id="tuned", adapter_id="yes-no-lora")
    with pytest.raises(EvaluationError, match="'both' names a soft prompt and a LoRA adapter"):
        plan_evaluation(library, prompt, cases, [both], split=None)
    with pytest.raises(EvaluationError, match="uses a LoRA adapter: needs the library"):
        plan_evaluation(None, prompt, cases, [VariantSpec(name="lora", adapter_id="x")], split=None)


def test_a_lora_variant_on_a_model_that_cannot_run_it_is_refused_before_anything_loads(
    library: Library, tmp_path: Path, loads: list[FakeBackend]
) -> None:
    from tests.core.exchange_helpers import add_lora_adapter
    from workbench.core.flows.evaluate import check_runnable
    from workbench.core.models import ModelSpec

    prompt = library.new_prompt("p", user_template="{{ text }}")
    add_lora_adapter(library, "yes-no", prompt.id)
    pool = make_pool(tmp_path)
    server = ModelSpec(id="served", name="Served model", source="openai", url="http://127.0.0.1:1")
    pool.catalog.user_models.append(server)
    ok = VariantSpec(name="here", adapter_id="yes-no")  # the embedded GGUF on llama.cpp
    served = VariantSpec(name="there", model="served", adapter_id="yes-no")
    cases = labelled(library, prompt)
    check_runnable(plan_evaluation(library, prompt, cases, [ok], split=None), pool)
    plan = plan_evaluation(library, prompt, cases, [VariantSpec(name="plain"), served], split=None)
    with pytest.raises(EvaluationError) as refused:
        check_runnable(plan, pool)
    assert str(refused.value) == (
        "Variant 'there': LoRA adapter 'yes-no' runs on transformers, or on llama.cpp with a "
        "GGUF model; Served model would run on openai. Give the variant a model and backend "
        "that can run it."
    )
    assert loads == []  # nothing loaded to find out


def test_a_comparison_led_by_another_prompt_is_filed_under_the_evaluated_one(
    library: Library, tmp_path: Path, loads: list[FakeBackend]
) -> None:
    prompt = library.new_prompt("Evaluated", user_template="{{ text }}")
    other = library.new_prompt("Other", user_template="Say: {{ text }}")
    test_set = labelled(library, prompt)
    plan = plan_evaluation(
        library,
        prompt,
        test_set,
        [VariantSpec(name="other first", prompt_id=other.id), VariantSpec(name="this")],
        split=None,
    )
    assert [p.id for _, p in plan.variants] == [other.id, prompt.id]
    assert plan.new_run().prompt_id == prompt.id
    with make_pool(tmp_path) as pool:
        run = finished_run(list(run_evaluation(plan, pool)))
    assert run.prompt_id == prompt.id and run.complete
    library.save_eval_run(run)
    assert [r.id for r in library.eval_runs_for(prompt.id)] == [run.id]
    assert library.eval_runs_for(other.id) == []


def test_two_models_are_never_loaded_at_once(
    library: Library, tmp_path: Path, loads: list[FakeBackend]
) -> None:
    prompt = library.new_prompt("p", user_template="{{ text }}")
    plan = plan_evaluation(
        library,
        prompt,
        labelled(library, prompt),
        [VariantSpec(name="embedded"), VariantSpec(name="other", model="other")],
        split=None,
    )
    pool = make_pool(tmp_path)
    try:
        run = finished_run(list(run_evaluation(plan, pool)))
    finally:
        pool.close()
    assert run.complete and [len(r) for r in run.results] == [4, 4]
    assert [b.key for b in loads] == [(EMBEDDED_ID, "llama.cpp"), ("other", "transformers")]
    assert loads[1].open_at_load == []  # the first model was closed before the second
    assert all(b.closed for b in loads)
