"""The method table: which method suits this task, measured on the prompt's own held-out
data. One row per method — zero-shot, few-shot, few-shot (optimised), chain of thought,
soft prompt, LoRA — scored on the test set's held-out `test` split, with what each costs.

- `plan_methods` decides which methods run (and which are missing, and why) before any
  model loads; `run_methods` evaluates them (a generator of evaluation events with a
  cancel event, one `CaseDone` per case, `Progress` over the whole table) and ends with
  `MethodsFinished`: the `MethodTable` and the `EvalRun` it was computed from, with the
  table kept in the run's `method_table` field. The caller saves the run.
- Hard prompts (zero-shot, few-shot, the optimised version, the soft prompt) go through
  the evaluation's label-scoring path; chain of thought generates its reasoning, and its
  extracted answer counts as the chosen label (normalised match); LoRA runs on the
  transformers backend with the adapter applied for its cases and taken out after.
  When a LoRA row is compared every method runs on transformers, so latencies compare.
- Costs come from the stored artifacts: trainable parameters (a soft prompt's virtual
  tokens × hidden size, the adapter's own count), training time and peak memory where
  the training recorded them (every graduation does, `tuning.TrainingCosts`:
  `train_s`, `peak_cuda_mb` or `peak_rss_mb` in the item's metrics), size on disk of
  the tensors. What is unknown is None, shown "–".
- `verdict` is computed from the numbers: the best method and those a paired exact
  McNemar test cannot tell apart from it, then the cheapest per call among them.
- `export_table` writes CSV, JSON or Markdown, all or nothing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.backends.base import BackendError
from workbench.core.evaluation import (
    AdapterFor,
    CaseDone,
    EvalFinished,
    EvaluationError,
    Progress,
    choose_mode,
    evaluate,
    summarise,
)
from workbench.core.models import (
    CaseResult,
    CoTMode,
    EvalRun,
    LoraAdapter,
    Prompt,
    SoftPrompt,
    TestSet,
    VariantSpec,
)
from workbench.core.testsets_io import rows_in_split

if TYPE_CHECKING:
    from workbench.core.backends.base import BackendSettings
    from workbench.core.backends.pool import BackendPool
    from workbench.core.library import Library
    from workbench.core.models import ModelSpec

METHOD_KEYS = ("zero-shot", "few-shot", "optimised", "cot", "soft", "lora")
"""The methods' keys, in the table's order (the CLI's --methods takes them)."""

LABELS = {
    "zero-shot": "zero-shot",
    "few-shot": "few-shot",
    "optimised": "few-shot (optimised)",
    "cot": "chain of thought",
    "soft": "soft prompt",
    "lora": "LoRA",
}
TRAINABLE = ("soft", "lora")
OPTIMISED_NOTE = "optimised"  # the version note `flows.optimise.apply_winner` records

# row statuses
EVALUATED = "evaluated"
NOT_TRAINED = "not trained"
NOT_AVAILABLE = "not available"
NOT_COMPARED = "not compared yet"
STOPPED = "stopped"
FAILED = "failed"


class MethodsError(EvaluationError):
    """The method table cannot be made as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Method:
    """One row of the table as planned: what it runs, or why it cannot."""

    key: str
    status: str  # NOT_COMPARED (it will run), NOT_TRAINED or NOT_AVAILABLE
    detail: str  # what it uses ("version 3", the soft prompt's name) or why it is missing
    spec: VariantSpec | None = None
    prompt: Prompt | None = None
    soft: SoftPrompt | None = None
    adapter: LoraAdapter | None = None

    @property
    def label(self) -> str:
        return LABELS[self.key]

    @property
    def runnable(self) -> bool:
        return self.spec is not None

    @property
    def trainable(self) -> bool:
        """Missing, and a train function exists for it (a Train button)."""
        return self.status == NOT_TRAINED and self.key in TRAINABLE


@dataclass(frozen=True)
class MethodsPlan:
    prompt: Prompt
    test_set: TestSet
    rows: list[int]  # held-out row indices
    methods: list[Method]
    mode: str  # "likelihood" (the test set has labels) or "generate"

    @property
    def runnable(self) -> list[Method]:
        return [m for m in self.methods if m.runnable]

    @property
    def missing(self) -> list[Method]:
        return [m for m in self.methods if m.trainable]

    @property
    def uses_transformers(self) -> bool:
        return any(m.key == "lora" for m in self.runnable)

    def describe(self) -> str:
        from workbench.core.flows.report import count

        names = ", ".join(m.label for m in self.runnable) or "nothing"
        text = (
            f"comparing {names} on {count(len(self.rows), 'held-out row')} of "
            f"{self.test_set.name!r}"
        )
        if self.missing:
            text += f"; not trained yet: {', '.join(m.label for m in self.missing)}"
        return text


def parse_methods(text: str | Sequence[str] | None) -> list[str]:
    """--methods zero-shot,few-shot,... as keys (labels such as "soft prompt" and "chain
    of thought" are understood too); None or empty: every method."""
    if text is None:
        return list(METHOD_KEYS)
    items = text.split(",") if isinstance(text, str) else list(text)
    by_label = {label.casefold(): key for key, label in LABELS.items()}
    aliases = {"soft-prompt": "soft", "chain-of-thought": "cot", "few-shot-optimised": "optimised"}
    keys: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        key = item if item in METHOD_KEYS else aliases.get(item, by_label.get(item.casefold()))
        if key is None:
            raise MethodsError(f"unknown method {item!r} (known: {', '.join(METHOD_KEYS)})")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise MethodsError(f"name at least one method ({', '.join(METHOD_KEYS)})")
    return [k for k in METHOD_KEYS if k in keys]


def held_out_test_set(library: Library | None, prompt: Prompt, ref: str | None = None) -> TestSet:
    """The test set the table uses: `ref` (a file, name or id), else the prompt's first."""
    from workbench.core.flows.lookup import resolve_test_set

    if ref is None and (library is None or not library.test_sets_for(prompt.id)):
        raise MethodsError(
            f"prompt {prompt.name!r} has no test set: add one in the Test sets tab (or "
            "pass --test-set) and split it, then compare"
        )
    return resolve_test_set(library, prompt, ref)


def optimised_versions(library: Library | None, prompt: Prompt) -> tuple[Prompt, Prompt] | None:
    """(the prompt as written, its optimised version) when an optimised version exists:
    the newest version noted "optimised". When that is the current version, the prompt as
    written is the version before it."""
    if library is None or prompt.id not in library.prompts:
        return None
    notes = library.version_notes(prompt.id)
    versions = {p.version: p for p in library.history(prompt.id)}
    versions[prompt.version] = prompt  # the working copy the caller holds
    optimised = [v for v, note in notes.items() if note == OPTIMISED_NOTE and v in versions]
    if not optimised:
        return None
    newest = max(optimised)
    if newest != prompt.version:
        return prompt, versions[newest]
    before = [v for v in versions if v < newest]
    return (versions[max(before)] if before else prompt), versions[newest]


def newest_soft_prompt(library: Library, prompt: Prompt) -> SoftPrompt | None:
    found = sorted(library.soft_prompts_for(prompt.id), key=lambda s: (s.created, s.id))
    return found[-1] if found else None


def newest_adapter(library: Library, prompt: Prompt) -> LoraAdapter | None:
    found = library.lora_adapters_for(prompt.id)  # newest first
    return found[0] if found else None


def plan_methods(
    library: Library | None,
    prompt: Prompt,
    test_set: TestSet,
    methods: Sequence[str] | None = None,
    limit: int | None = None,
) -> MethodsPlan:
    """Which methods run on which rows, and which are missing; every mistake raises a
    `MethodsError` here, before any model loads."""
    keys = parse_methods(methods)
    rows = rows_in_split(test_set, "test")
    if not rows:
        split = any(row.split for row in test_set.rows)
        raise MethodsError(
            f"test set {test_set.name!r} has no held-out test rows"
            + (
                ""
                if split
                else ": split it in the Test sets tab (training a soft prompt splits it too)"
            )
        )
    if limit is not None:
        if limit < 1:
            raise MethodsError("--limit must be at least 1")
        rows = rows[:limit]
    mode = choose_mode(test_set, "auto")
    off = CoTMode.OFF
    planned: list[Method] = []
    for key in keys:
        label = LABELS[key]
        if key == "zero-shot":
            spec = VariantSpec(name=label, few_shot_count=0, cot_mode=off)
            planned.append(Method(key, NOT_COMPARED, "no examples", spec, prompt))
        elif key == "few-shot":
            pair = optimised_versions(library, prompt)
            base = pair[0] if pair else prompt
            if not base.few_shot.examples:
                planned.append(Method(key, NOT_AVAILABLE, "the prompt has no few-shot examples"))
                continue
            spec = VariantSpec(name=label, cot_mode=off)
            detail = f"version {base.version}, {_examples(base)}"
            planned.append(Method(key, NOT_COMPARED, detail, spec, base))
        elif key == "optimised":
            pair = optimised_versions(library, prompt)
            if pair is None:
                planned.append(
                    Method(key, NOT_AVAILABLE, "not optimised yet (Optimise… in the Few-shot tab)")
                )
                continue
            winner = pair[1]
            spec = VariantSpec(name=label, cot_mode=off)
            detail = f"version {winner.version}, {_examples(winner)}"
            planned.append(Method(key, NOT_COMPARED, detail, spec, winner))
        elif key == "cot":
            if prompt.cot.mode is off:
                planned.append(Method(key, NOT_AVAILABLE, "the prompt has no chain of thought"))
                continue
            spec = VariantSpec(name=label)
            detail = f"{prompt.cot.mode.value.replace('_', '-')}, generated"
            planned.append(Method(key, NOT_COMPARED, detail, spec, prompt))
        elif key == "soft":
            soft = newest_soft_prompt(library, prompt) if library is not None else None
            if soft is None:
                planned.append(Method(key, NOT_TRAINED, "no soft prompt for this prompt"))
                continue
            spec = VariantSpec(name=label, few_shot_count=0, cot_mode=off, soft_prompt_id=soft.id)
            planned.append(Method(key, NOT_COMPARED, soft.name, spec, prompt, soft=soft))
        elif key == "lora":
            adapter = newest_adapter(library, prompt) if library is not None else None
            if adapter is None:
                planned.append(Method(key, NOT_TRAINED, "no LoRA adapter for this prompt"))
                continue
            spec = VariantSpec(name=label, few_shot_count=0, cot_mode=off, adapter_id=adapter.id)
            planned.append(Method(key, NOT_COMPARED, adapter.name, spec, prompt, adapter=adapter))
    return MethodsPlan(prompt, test_set, rows, planned, mode)


def _examples(prompt: Prompt) -> str:
    from workbench.core.flows.report import count

    shown = prompt.few_shot.examples
    n = len(shown) if prompt.few_shot.count is None else min(prompt.few_shot.count, len(shown))
    return count(n, "example")


# ---------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class MethodRow:
    """One method's line of the table (None: unknown, shown "–")."""

    key: str
    label: str
    status: str
    detail: str = ""
    accuracy: float | None = None
    interval: tuple[float, float] | None = None
    cases: int = 0
    macro_f1: float | None = None
    trainable_parameters: int | None = None
    train_s: float | None = None
    peak_memory_mb: float | None = None
    size_bytes: int | None = None
    context_tokens: float | None = None
    latency_s: float | None = None
    llama_cpp: bool | None = None
    best: bool = False  # the best, or not distinguishable from it
    trainable: bool = False  # missing, with a train function: a Train button
    error: str | None = None

    @property
    def evaluated(self) -> bool:
        return self.status == EVALUATED


@dataclass(frozen=True)
class MethodTable:
    prompt_id: str | None
    prompt_name: str
    test_set_name: str
    held_out_rows: int
    metric: str  # what "accuracy" is: label (likelihood) or normalised (generated)
    rows: list[MethodRow]
    verdict: str
    complete: bool = True
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def row(self, key: str) -> MethodRow:
        return next(r for r in self.rows if r.key == key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MethodTable:
        rows = []
        for item in data.get("rows", []):
            values = dict(item)
            if values.get("interval") is not None:
                values["interval"] = tuple(values["interval"])
            rows.append(MethodRow(**{k: v for k, v in values.items() if k in _ROW_FIELDS}))
        fields = {k: v for k, v in data.items() if k in _TABLE_FIELDS and k != "rows"}
        return cls(rows=rows, **fields)


_ROW_FIELDS = set(MethodRow.__dataclass_fields__)
_TABLE_FIELDS = set(MethodTable.__dataclass_fields__)


def _size(path: Path) -> int | None:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return None


def _peak_memory(metrics: Mapping[str, float]) -> float | None:
    for key in ("peak_cuda_mb", "peak_rss_mb"):
        if metrics.get(key) is not None:
            return float(metrics[key])
    return None


def lora_on_llama_cpp() -> bool:
    """Whether a LoRA adapter can run on llama.cpp (converted to a GGUF adapter)."""
    import importlib.util

    return importlib.util.find_spec("workbench.core.lora_gguf") is not None


def costs(library: Library | None, method: Method) -> dict[str, Any]:
    """What a method costs apart from its calls, from the stored artifacts."""
    if method.key == "soft" and method.soft is not None:
        soft = method.soft
        params = soft.num_virtual_tokens * soft.hidden_size if soft.hidden_size else None
        size = _size(library.soft_prompt_tensor_path(soft)) if library is not None else None
        return {
            "trainable_parameters": params,
            "train_s": soft.metrics.get("train_s"),
            "peak_memory_mb": _peak_memory(soft.metrics),
            "size_bytes": size,
            "llama_cpp": True,
        }
    if method.key == "lora" and method.adapter is not None:
        adapter = method.adapter
        size = _size(library.lora_adapter_path(adapter)) if library is not None else None
        return {
            "trainable_parameters": adapter.trainable_parameters,
            "train_s": adapter.metrics.get("train_s"),
            "peak_memory_mb": _peak_memory(adapter.metrics),
            "size_bytes": size,
            "llama_cpp": lora_on_llama_cpp(),
        }
    if method.key in ("soft", "lora"):
        return {"llama_cpp": method.key == "soft" or lora_on_llama_cpp()}
    if not method.runnable:
        return {}  # a hard prompt that does not exist costs nothing worth showing
    # a hard prompt trains nothing and stores no weights (an optimised version's search
    # time is not recorded: unknown)
    return {
        "trainable_parameters": 0,
        "train_s": None if method.key == "optimised" else 0.0,
        "peak_memory_mb": None,
        "size_bytes": 0,
        "llama_cpp": True,
    }


def pending_table(library: Library | None, plan: MethodsPlan) -> MethodTable:
    """The table before a comparison: every planned row with its stored costs."""
    rows = [
        MethodRow(
            m.key,
            m.label,
            m.status,
            m.detail,
            trainable=m.trainable,
            **costs(library, m),
        )
        for m in plan.methods
    ]
    return MethodTable(
        plan.prompt.id,
        plan.prompt.name,
        plan.test_set.name,
        len(plan.rows),
        "label" if plan.mode == "likelihood" else "normalised",
        rows,
        "Nothing compared yet: press Compare.",
        complete=False,
    )


def build_table(
    library: Library | None,
    plan: MethodsPlan,
    run: EvalRun,
    errors: Mapping[str, str] | None = None,
) -> MethodTable:
    """The table from an evaluation of the plan's methods (`run`'s variants are named
    by the methods' labels)."""
    from workbench.core.analysis import analyse

    errors = errors or {}
    analysis = analyse(run, plan.test_set) if run.variants else None
    best = set(analysis.best) if analysis is not None else set()
    expected = len(plan.rows)
    rows: list[MethodRow] = []
    for method in plan.methods:
        base = MethodRow(
            method.key,
            method.label,
            method.status,
            method.detail,
            trainable=method.trainable,
            **costs(library, method),
        )
        if method.key in errors:
            rows.append(replace(base, status=FAILED, error=errors[method.key]))
            continue
        index = next((i for i, v in enumerate(run.variants) if v.name == method.label), None)
        if not method.runnable or index is None or analysis is None:
            status = STOPPED if method.runnable else method.status
            rows.append(replace(base, status=status))
            continue
        results = run.results[index]
        report = analysis.variant(method.label)
        if not results:
            rows.append(replace(base, status=STOPPED))
            continue
        rows.append(
            replace(
                base,
                status=EVALUATED if len(results) == expected else STOPPED,
                accuracy=report.primary.value,
                interval=report.primary.interval,
                cases=report.primary.cases,
                macro_f1=report.classification.macro_f1 if report.classification else None,
                context_tokens=_mean(r.context_tokens for r in results),
                latency_s=_mean(r.latency_s for r in results),
                best=method.label in best and len(run.variants) > 0,
            )
        )
    table = MethodTable(
        plan.prompt.id,
        plan.prompt.name,
        plan.test_set.name,
        expected,
        analysis.primary if analysis is not None else "label",
        rows,
        "",
        complete=run.complete and not errors,
        run_id=run.id,
    )
    return replace(table, verdict=verdict(table, analysis))


def _mean(values: Iterator[float | None] | Sequence[float | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def verdict(table: MethodTable, analysis: Any = None) -> str:
    """Which methods are best within the interval, and the cheapest per call among them,
    from the table's numbers (and the analysis's paired tests)."""
    from workbench.core.flows.report import format_latency, format_percent

    scored = [r for r in table.rows if r.accuracy is not None]
    if not scored:
        return "Nothing compared yet: press Compare."
    best = [r for r in scored if r.best] or [max(scored, key=lambda r: r.accuracy or 0.0)]
    top = max(best, key=lambda r: r.accuracy or 0.0)
    equals = [r for r in best if r is not top]
    text = f"Best on {table.held_out_rows} held-out rows: {top.label} at "
    text += format_percent(top.accuracy, top.interval)
    if equals:
        text += (
            f"; {_join([r.label for r in equals])} "
            f"{'is' if len(equals) == 1 else 'are'} not distinguishable from it "
            "(paired McNemar test, p ≥ 0.05)"
        )
    elif len(scored) > 1:
        text += "; every other method is worse (paired McNemar test, p < 0.05)"
    priced = [r for r in best if r.context_tokens is not None]
    if len(best) > 1 and priced:
        cheapest = min(priced, key=lambda r: (r.context_tokens or 0.0, r.latency_s or 0.0))
        text += (
            f". Cheapest per call among them: {cheapest.label} "
            f"({cheapest.context_tokens:.0f} context tokens, "
            f"{format_latency(cheapest.latency_s)})"
        )
    text += "."
    if not table.complete:
        text += " (Partial: not every method finished.)"
    return text


# ---------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class MethodsFinished:
    table: MethodTable
    run: EvalRun


MethodsEvent = CaseDone | Progress | MethodsFinished


def _soft_for(library: Library, plan: MethodsPlan) -> Callable[[str], Any]:
    from workbench.core.placement import VirtualTokens
    from workbench.core.softprompt import load_soft_prompt_tensor

    def load(soft_id: str) -> Any:
        soft = next(m.soft for m in plan.methods if m.soft is not None and m.soft.id == soft_id)
        return VirtualTokens(
            load_soft_prompt_tensor(library.soft_prompt_tensor_path(soft)), soft.placement
        )

    return load


def _adapter_for(library: Library, plan: MethodsPlan) -> AdapterFor:
    from workbench.core.lora_io import adapter_applier

    return adapter_applier(library, (m.adapter for m in plan.methods if m.adapter is not None))


def run_methods(
    library: Library | None,
    plan: MethodsPlan,
    pool: BackendPool,
    cancel: threading.Event | None = None,
) -> Iterator[MethodsEvent]:
    """Evaluate the plan's methods on its held-out rows (the caller owns the pool and
    saves the run). `CaseDone.variant` is the method's index among the run's variants."""
    cancel = cancel or threading.Event()
    runnable = plan.runnable
    if not runnable:
        raise MethodsError("nothing to compare: every method asked for is missing")
    backend = "transformers" if plan.uses_transformers else None
    specs: list[VariantSpec] = []
    for method in runnable:
        assert method.spec is not None
        spec = method.spec
        specs.append(spec.model_copy(update={"backend": backend}) if backend else spec)
    metrics = ["normalised"] if plan.mode == "likelihood" else ["normalised", "f1"]
    total = len(runnable) * len(plan.rows)
    started = time.perf_counter()
    done = 0
    results: dict[str, list[CaseResult]] = {}
    errors: dict[str, str] = {}
    for index, (method, spec) in enumerate(zip(runnable, specs, strict=True)):
        if cancel.is_set():
            break
        assert method.prompt is not None
        mode = "generate" if method.key == "cot" else plan.mode
        try:
            events = evaluate(
                [(spec, method.prompt)],
                plan.test_set,
                plan.rows,
                pool.get,
                metrics,
                "likelihood" if mode == "likelihood" else "generate",
                cancel,
                split="test",
                soft_prompt_for=_soft_for(library, plan) if library is not None else None,
                prompt_id=plan.prompt.id,
                adapter_for=_adapter_for(library, plan) if library is not None else None,
            )
            with contextlib.closing(events):  # a stopped job takes an adapter out now
                for event in events:
                    if isinstance(event, CaseDone):
                        result = event.result
                        if method.key == "cot" and plan.mode == "likelihood":
                            # the extracted answer is the chosen label
                            scores = {**result.scores, "label": result.scores.get("normalised", 0)}
                            result = result.model_copy(update={"scores": scores})
                        results.setdefault(method.label, []).append(result)
                        done += 1
                        yield CaseDone(index, result)
                        elapsed = time.perf_counter() - started
                        yield Progress(done, total, elapsed / done * (total - done))
                    elif isinstance(event, EvalFinished):
                        pass
        except (EvaluationError, BackendError, OSError) as exc:
            errors[method.key] = str(exc)
    run = merged_run(plan, runnable, specs, results, done == total)
    table = build_table(library, plan, run, errors)
    run.method_table = table.to_dict()
    yield MethodsFinished(table, run)


def merged_run(
    plan: MethodsPlan,
    runnable: Sequence[Method],
    specs: Sequence[VariantSpec],
    results: Mapping[str, list[CaseResult]],
    complete: bool,
) -> EvalRun:
    """One evaluation run of every method (in the plan's mode), for the analysis and the
    Evaluate panel's history."""
    from workbench.core.evaluation import new_eval_run

    metrics = ["normalised"] if plan.mode == "likelihood" else ["normalised", "f1"]
    ran = [(m, s) for m, s in zip(runnable, specs, strict=True) if results.get(m.label)]
    run = new_eval_run(
        plan.prompt.id,
        plan.test_set,
        [s for _, s in ran],
        metrics,
        "likelihood" if plan.mode == "likelihood" else "generate",
        "test",
    )
    run.results = [list(results[m.label]) for m, _ in ran]
    run.summaries = [
        summarise(s.name, rs, plan.test_set, run.metrics)
        for s, rs in zip(run.variants, run.results, strict=True)
    ]
    run.complete = complete
    return run


def latest_table(library: Library, prompt_id: str) -> MethodTable | None:
    """The newest method table saved with one of the prompt's evaluation runs."""
    for run in library.eval_runs_for(prompt_id):
        if run.method_table:
            try:
                return MethodTable.from_dict(run.method_table)
            except (TypeError, ValueError):
                continue
    return None


def current_table(library: Library | None, plan: MethodsPlan) -> MethodTable | None:
    """The newest saved table brought up to date with the plan: a method trained since
    reads "not compared yet", a missing one keeps its Train button. None when nothing
    was compared yet."""
    if library is None:
        return None
    saved = latest_table(library, plan.prompt.id)
    if saved is None:
        return None
    planned = {m.key: m for m in plan.methods}
    rows = []
    for row in saved.rows:
        method = planned.get(row.key)
        if method is None:
            rows.append(row)
            continue
        if method.runnable and not row.evaluated:
            rows.append(replace(row, status=NOT_COMPARED, detail=method.detail, trainable=False))
        else:
            rows.append(replace(row, trainable=method.trainable))
    keys = {r.key for r in rows}
    pending = pending_table(library, plan)
    rows += [r for r in pending.rows if r.key not in keys]
    order = {k: i for i, k in enumerate(METHOD_KEYS)}
    rows.sort(key=lambda r: order.get(r.key, len(order)))
    return replace(saved, rows=rows)


# ---------------------------------------------------------------------------
# Training what is missing


@dataclass(frozen=True)
class TrainingStarted:
    key: str
    label: str


@dataclass(frozen=True)
class TrainingDone:
    key: str
    item: SoftPrompt | LoraAdapter | None  # None: stopped before anything was saved
    seconds: float
    peak_memory_mb: float | None


def can_train(key: str) -> bool:
    """Whether a train function exists for the method (soft prompts; LoRA once built)."""
    if key == "soft":
        return True
    if key == "lora":
        try:
            from workbench.core import lora
        except ImportError:
            return False
        return hasattr(lora, "graduate_lora")
    return False


def train_methods(
    library: Library,
    plan: MethodsPlan,
    spec: ModelSpec,
    keys: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
    settings: BackendSettings | None = None,
    options: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Train the missing methods (`keys`, default all the plan's missing ones), one after
    another, with graduation's defaults (`options` overrides TrainConfig fields); each is
    saved with its training time and peak memory in its metrics (as every graduation
    saves them). Yields `TrainingStarted`,
    the training's own events, then `TrainingDone`."""
    from workbench.core.tuning import TrainingCosts

    cancel = cancel or threading.Event()
    wanted = [m for m in plan.missing if keys is None or m.key in keys]
    for method in wanted:
        if cancel.is_set():
            return
        if not can_train(method.key):
            raise MethodsError(f"{method.label} cannot be trained yet")
        yield TrainingStarted(method.key, method.label)
        costs = TrainingCosts()  # the graduation records its own in the item it saves
        item: SoftPrompt | LoraAdapter | None = None
        for event in _training(library, plan, spec, method.key, cancel, settings, options):
            costs.see(event)
            saved = getattr(event, "soft_prompt", None) or getattr(event, "adapter", None)
            if isinstance(saved, SoftPrompt | LoraAdapter):
                item = saved
            yield event
        yield TrainingDone(method.key, item, costs.seconds(), _peak_memory(costs.peak))


def _training(
    library: Library,
    plan: MethodsPlan,
    spec: ModelSpec,
    key: str,
    cancel: threading.Event,
    settings: BackendSettings | None,
    options: Mapping[str, Any] | None,
) -> Iterator[Any]:
    if key == "soft":
        from workbench.core.graduation import graduate, train_config

        config = train_config(dict(options or {}))
        return graduate(
            library,
            plan.prompt,
            plan.test_set,
            spec,
            config,
            cancel,
            compare=False,
            settings=settings,
        )
    from workbench.core.lora import graduate_lora, lora_train_config

    config = lora_train_config(dict(options or {}))
    return graduate_lora(
        library,
        plan.prompt,
        plan.test_set,
        spec,
        config,
        None,
        cancel,
        backend_settings=settings,
    )


# ---------------------------------------------------------------------------
# Text and exports


COLUMNS = (
    ("method", "method"),
    ("accuracy", "held-out accuracy"),
    ("interval", "95 % interval"),
    ("macro_f1", "macro-F1"),
    ("trainable_parameters", "trainable parameters"),
    ("train_s", "training time"),
    ("peak_memory_mb", "peak training memory"),
    ("size_bytes", "size on disk"),
    ("context_tokens", "context tokens per call"),
    ("latency_s", "latency per call"),
    ("llama_cpp", "runs on llama.cpp"),
    ("status", "status"),
)


def format_bytes(size: int | None) -> str:
    if size is None:
        return "–"
    if size == 0:
        return "0 B"
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def format_count(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 10_000:
        return f"{n / 1e3:.1f} k"
    return f"{n:,}"


def cell(row: MethodRow, key: str) -> str:
    """One cell of the table as people read it."""
    from workbench.core.flows.report import format_duration, format_latency, format_memory

    if key == "method":
        return row.label
    if key == "accuracy":
        return "–" if row.accuracy is None else f"{row.accuracy * 100:.1f} %"
    if key == "interval":
        if row.interval is None:
            return "–"
        return f"{row.interval[0] * 100:.1f}–{row.interval[1] * 100:.1f} %"
    if key == "macro_f1":
        return "–" if row.macro_f1 is None else f"{row.macro_f1:.3f}"
    if key == "trainable_parameters":
        return format_count(row.trainable_parameters)
    if key == "train_s":
        if row.train_s is None:
            return "–"
        return "none" if row.train_s == 0 else format_duration(row.train_s)
    if key == "peak_memory_mb":
        return "–" if row.peak_memory_mb is None else format_memory(row.peak_memory_mb)
    if key == "size_bytes":
        return format_bytes(row.size_bytes)
    if key == "context_tokens":
        return "–" if row.context_tokens is None else f"{row.context_tokens:.0f}"
    if key == "latency_s":
        return format_latency(row.latency_s)
    if key == "llama_cpp":
        return "–" if row.llama_cpp is None else ("yes" if row.llama_cpp else "no")
    if key == "status":
        if row.error:
            return f"{row.status}: {row.error}"
        return row.status if row.status != EVALUATED else ("best" if row.best else "")
    raise KeyError(key)


def format_table(table: MethodTable) -> str:
    """The table as aligned text, with the verdict under it (the CLI prints it)."""
    header = [title for _, title in COLUMNS]
    lines = [[cell(row, key) for key, _ in COLUMNS] for row in table.rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = [
        f"{table.prompt_name} on {table.test_set_name}: {table.held_out_rows} held-out rows",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
    ]
    out += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    out.append(table.verdict)
    return "\n".join(out)


def to_csv(table: MethodTable) -> str:
    """Plain numbers (fractions, seconds, bytes, MB) for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "method",
            "status",
            "detail",
            "accuracy",
            "interval_low",
            "interval_high",
            "cases",
            "macro_f1",
            "trainable_parameters",
            "train_s",
            "peak_memory_mb",
            "size_bytes",
            "context_tokens",
            "latency_s",
            "llama_cpp",
            "best",
        ]
    )

    def plain(value: object) -> object:
        return "" if value is None else value

    for row in table.rows:
        low, high = row.interval if row.interval is not None else (None, None)
        writer.writerow(
            [
                plain(v)
                for v in (
                    row.label,
                    row.status,
                    row.error or row.detail,
                    row.accuracy,
                    low,
                    high,
                    row.cases,
                    row.macro_f1,
                    row.trainable_parameters,
                    row.train_s,
                    row.peak_memory_mb,
                    row.size_bytes,
                    row.context_tokens,
                    row.latency_s,
                    row.llama_cpp,
                    row.best,
                )
            ]
        )
    return buffer.getvalue()


def to_json(table: MethodTable) -> str:
    return json.dumps(table.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_markdown(table: MethodTable) -> str:
    header = [title for _, title in COLUMNS]

    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        f"# Methods: {escape(table.prompt_name)}",
        "",
        f"Held-out split of {escape(table.test_set_name)}: {table.held_out_rows} rows.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in table.rows:
        cells = [escape(cell(row, key)) for key, _ in COLUMNS]
        if row.best:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", escape(table.verdict), ""]
    return "\n".join(lines)


EXPORTERS: dict[str, Callable[[MethodTable], str]] = {
    ".csv": to_csv,
    ".json": to_json,
    ".md": to_markdown,
}


def export_format(path: Path | str) -> str:
    """The export's suffix, checked: .csv, .json or .md."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORTERS:
        raise MethodsError(f"export to a .csv, .json or .md file, not {Path(path).name!r}")
    return suffix


def export_table(table: MethodTable, path: Path | str) -> Path:
    """Write the table as CSV, JSON or Markdown by the file's suffix, all or nothing."""
    from workbench.core.fsutil import atomic_write_text

    target = Path(path)
    text = EXPORTERS[export_format(target)](table)
    if not target.parent.is_dir():
        raise MethodsError(f"folder {str(target.parent)!r} does not exist")
    atomic_write_text(target, text)
    return target


__all__ = [
    "METHOD_KEYS",
    "MethodRow",
    "MethodTable",
    "MethodsError",
    "MethodsEvent",
    "MethodsFinished",
    "MethodsPlan",
    "TrainingDone",
    "TrainingStarted",
    "build_table",
    "can_train",
    "current_table",
    "export_table",
    "format_table",
    "latest_table",
    "parse_methods",
    "pending_table",
    "plan_methods",
    "run_methods",
    "train_methods",
    "verdict",
]
