"""The evaluation flow: variants → prompts, versions, soft prompts and LoRA adapters; rows
by split and limit; then the run itself on a `BackendPool`. The Evaluate panel and `workbench eval`
both plan with `plan_evaluation` and run with `run_evaluation`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.backends.base import Backend
from workbench.core.backends.pool import BackendPool
from workbench.core.evaluation import (
    DEFAULT_METRICS,
    AppliedAdapter,
    EvalEvent,
    EvaluationError,
    choose_mode,
    evaluate,
    new_eval_run,
)
from workbench.core.flows.lookup import find_lora_adapter, find_soft_prompt
from workbench.core.library import Library
from workbench.core.models import (
    EvalMode,
    EvalRun,
    LoraAdapter,
    Prompt,
    ScoringMode,
    SoftPromptPlacement,
    Split,
    TestSet,
    VariantSpec,
)
from workbench.core.placement import VirtualTokens
from workbench.core.softprompt import load_soft_prompt_tensor
from workbench.core.testsets_io import rows_in_split

__all__ = [
    "DEFAULT_METRICS",
    "EvalPlan",
    "check_runnable",
    "default_split",
    "plan_evaluation",
    "run_evaluation",
    "select_rows",
]


def default_split(test_set: TestSet) -> Split | None:
    """The held-out `test` split when the test set is split, else every row (None)."""
    return "test" if any(row.split for row in test_set.rows) else None


def select_rows(test_set: TestSet, split: Split | None, limit: int | None = None) -> list[int]:
    """The row indices of a split (None = all), the first `limit` of them when given."""
    rows = rows_in_split(test_set, split)
    return rows[:limit] if limit else rows


@dataclass(frozen=True)
class EvalPlan:
    """One evaluation, fully resolved before anything loads (checked on the GUI thread in
    the app, before a model loads in the CLI)."""

    prompt: Prompt  # the evaluated prompt: the run is filed under it
    variants: list[tuple[VariantSpec, Prompt]]
    test_set: TestSet
    rows: list[int]
    split: Split | None
    metrics: list[str]
    mode: EvalMode
    chosen_mode: ScoringMode
    soft_paths: dict[str, Path] = field(default_factory=dict)  # soft prompt id -> tensor
    soft_placements: dict[str, SoftPromptPlacement] = field(default_factory=dict)
    adapters: dict[str, LoraAdapter] = field(default_factory=dict)  # by id
    library: Library | None = None  # where the adapters' files are

    @property
    def specs(self) -> list[VariantSpec]:
        return [spec for spec, _ in self.variants]

    @property
    def total(self) -> int:
        return len(self.variants) * len(self.rows)

    def new_run(self) -> EvalRun:
        """The run as `run_evaluation` starts it (no results yet): what a live view shows."""
        return new_eval_run(
            self.prompt.id,
            self.test_set,
            self.specs,
            self.metrics,
            self.chosen_mode,
            self.split,
        )


def variant_prompt(library: Library | None, prompt: Prompt, spec: VariantSpec) -> Prompt:
    """The prompt (and version) a variant runs: `prompt` unless the variant names another."""
    base = prompt
    if spec.prompt_id is not None and spec.prompt_id != prompt.id:
        if library is None:
            raise EvaluationError(f"variant {spec.name!r} names another prompt: needs the library")
        base = library.find_prompt(spec.prompt_id)
    if spec.prompt_version is not None:
        if library is None:
            raise EvaluationError(f"variant {spec.name!r} names a version: needs the library")
        base = library.version(base.id, spec.prompt_version)
    return base


def plan_evaluation(
    library: Library | None,
    prompt: Prompt,
    test_set: TestSet,
    specs: Sequence[VariantSpec],
    *,
    split: Split | None,
    limit: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    mode: EvalMode = "auto",
) -> EvalPlan:
    """Resolve variants, rows, soft prompts and LoRA adapters; every mistake raises here,
    with a message for the user, before any model loads. A variant's `soft_prompt_id`
    (`adapter_id`) may be a soft prompt's (LoRA adapter's) id or name (the command
    line's `soft=NAME`, `adapter=NAME`); the plan holds ids."""
    rows = select_rows(test_set, split, limit)
    if not rows:
        where = f"the {split} split of " if split else ""
        raise EvaluationError(f"There are no rows in {where}{test_set.name!r} to evaluate.")
    if not specs:
        raise EvaluationError("Add at least one variant to evaluate.")
    chosen = choose_mode(test_set, mode)
    if chosen == "generate" and not metrics:
        raise EvaluationError("Pick at least one metric to score generated answers with.")
    variants: list[tuple[VariantSpec, Prompt]] = []
    soft_paths: dict[str, Path] = {}
    soft_placements: dict[str, SoftPromptPlacement] = {}
    adapters: dict[str, LoraAdapter] = {}
    for spec in specs:
        if spec.soft_prompt_id is not None and spec.adapter_id is not None:
            raise EvaluationError(
                f"Variant {spec.name!r} names a soft prompt and a LoRA adapter: a variant "
                "runs with one of them."
            )
        if spec.soft_prompt_id is not None:
            if library is None:
                raise EvaluationError(
                    f"variant {spec.name!r} uses a soft prompt: needs the library"
                )
            try:
                soft = find_soft_prompt(library, spec.soft_prompt_id)
            except LookupError as exc:
                raise EvaluationError(f"Variant {spec.name!r}: {exc}") from None
            spec = spec.model_copy(update={"soft_prompt_id": soft.id})
            soft_paths[soft.id] = library.soft_prompt_tensor_path(soft)
            soft_placements[soft.id] = soft.placement
        if spec.adapter_id is not None:
            if library is None:
                raise EvaluationError(
                    f"variant {spec.name!r} uses a LoRA adapter: needs the library"
                )
            try:
                adapter = find_lora_adapter(library, spec.adapter_id)
            except LookupError as exc:
                raise EvaluationError(f"Variant {spec.name!r}: {exc}") from None
            spec = spec.model_copy(update={"adapter_id": adapter.id})
            adapters[adapter.id] = adapter
        variants.append((spec, variant_prompt(library, prompt, spec)))
    return EvalPlan(
        prompt,
        variants,
        test_set,
        rows,
        split,
        list(metrics),
        mode,
        chosen,
        soft_paths,
        soft_placements,
        adapters,
        library,
    )


def check_runnable(plan: EvalPlan, pool: BackendPool) -> None:
    """Raise now, before any model loads, what the run would otherwise refuse part-way
    through (the earlier variants' work lost): the pool's checks (an unknown model, the
    lent model still loading) and a LoRA adapter on a backend that cannot run one."""
    from workbench.core.lora_io import runs_adapters

    pool.check(plan.specs)
    for spec in plan.specs:
        if spec.adapter_id is None:
            continue
        model, backend = pool.model_for(spec), pool.key_for(spec)[1]
        if not runs_adapters(backend, model):
            adapter = plan.adapters[spec.adapter_id]
            raise EvaluationError(
                f"Variant {spec.name!r}: LoRA adapter {adapter.name!r} runs on transformers, "
                f"or on llama.cpp with a GGUF model; {model.name} would run on {backend}. "
                "Give the variant a model and backend that can run it."
            )


def run_evaluation(
    plan: EvalPlan, pool: BackendPool, cancel: threading.Event | None = None
) -> Iterator[EvalEvent]:
    """Evaluate the plan (a generator of `evaluate`'s events); the caller owns the pool
    and closes it. A LoRA adapter is put into its variant's model for that variant's
    cases only (PEFT's layers on transformers, a GGUF adapter on llama.cpp), after
    checking it was made for that model."""

    def adapter_for(adapter_id: str, backend: Backend) -> AppliedAdapter:
        from workbench.core.lora_io import LoraAdapterError, apply_adapter

        assert plan.library is not None  # a plan with adapters has its library
        try:
            return apply_adapter(plan.library, plan.adapters[adapter_id], backend)
        except LoraAdapterError as exc:
            raise EvaluationError(str(exc)) from None

    yield from evaluate(
        plan.variants,
        plan.test_set,
        plan.rows,
        pool.get,
        plan.metrics,
        plan.mode,
        cancel,
        split=plan.split,
        soft_prompt_for=lambda soft_id: VirtualTokens(
            load_soft_prompt_tensor(plan.soft_paths[soft_id]), plan.soft_placements[soft_id]
        ),
        prompt_id=plan.prompt.id,
        adapter_for=adapter_for,
    )
