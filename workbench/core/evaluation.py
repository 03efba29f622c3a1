"""Evaluation: metrics, variants, and runs of prompts over test sets.

`evaluate()` is a generator (the threading model of docs/architecture.md): it yields one `CaseDone`
per case and variant, `Progress` with an ETA, and a final `EvalFinished` carrying the
`EvalRun` (also when cancelled: then `complete` is False). Each variant runs over all
its cases before the next, so a loaded model is reused.

Two modes:
- generate: sample an answer with the prompt's parameters and compare it to the
  expected output with text metrics (the chain-of-thought answer is extracted first);
- likelihood: for a test set with a fixed label set, score each label's log-likelihood
  right after the prompt and pick the best (no sampling noise; the fair way to
  evaluate small models on classification).
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.core.backends.base import Backend, BackendError
from workbench.core.flows.report import format_metric, plural
from workbench.core.models import (
    CaseResult,
    CoTMode,
    EvalMode,
    EvalRun,
    Prompt,
    ScoringMode,
    Split,
    TestRow,
    TestSet,
    VariantSpec,
    VariantSummary,
)
from workbench.core.running import RunFinished, run_prompt
from workbench.core.templates import extract_answer, render_messages

Mode = EvalMode  # kept as a name: callers import evaluation.Mode


class EvaluationError(ValueError):
    """An evaluation cannot run as configured; the message says why."""


# ---------------------------------------------------------------------------
# Metrics


def normalise(text: str) -> str:
    """Case-folded, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def exact_match(output: str, expected: str) -> float:
    return float(output.strip() == expected.strip())


def normalised_match(output: str, expected: str) -> float:
    return float(normalise(output) == normalise(expected))


def contains(output: str, expected: str) -> float:
    return float(normalise(expected) in normalise(output))


def regex_match(output: str, pattern: str) -> float:
    """`expected` is a regular expression that must match somewhere in the output."""
    try:
        return float(re.search(pattern, output) is not None)
    except re.error as exc:
        raise EvaluationError(f"expected value {pattern!r} is not a valid regex: {exc}") from None


def token_f1(output: str, expected: str) -> float:
    """SQuAD-style F1 over normalised word tokens."""
    got, want = normalise(output).split(), normalise(expected).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


TEXT_METRICS: dict[str, Callable[[str, str], float]] = {
    "exact": exact_match,
    "normalised": normalised_match,
    "contains": contains,
    "regex": regex_match,
    "f1": token_f1,
}
DEFAULT_METRICS = ["exact", "normalised", "f1"]
COST_METRICS = ("latency_s", "context_tokens", "completion_tokens")


def primary_metric(run: EvalRun) -> str:
    """The metric reported as 'accuracy': label choice, else normalised match if measured."""
    if run.mode == "likelihood":
        return "label"
    if "normalised" in run.metrics or not run.metrics:
        return "normalised"
    return run.metrics[0]


# ---------------------------------------------------------------------------
# Variants


def apply_variant(prompt: Prompt, spec: VariantSpec) -> Prompt:
    """The prompt as this variant runs it (few-shot count and CoT mode overridden)."""
    update: dict[str, object] = {}
    if spec.few_shot_count is not None:
        update["few_shot"] = prompt.few_shot.model_copy(update={"count": spec.few_shot_count})
    if spec.cot_mode is not None:
        update["cot"] = prompt.cot.model_copy(update={"mode": spec.cot_mode})
    return prompt.model_copy(update=update) if update else prompt


def choose_mode(test_set: TestSet, mode: Mode) -> ScoringMode:
    if mode == "likelihood" and not test_set.labels:
        raise EvaluationError(
            f"test set {test_set.name!r} has no label set; likelihood scoring needs one"
        )
    if mode == "auto":
        return "likelihood" if test_set.labels else "generate"
    return mode


# ---------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class CaseDone:
    variant: int
    result: CaseResult


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    eta_s: float | None


@dataclass(frozen=True)
class EvalFinished:
    run: EvalRun


EvalEvent = CaseDone | Progress | EvalFinished
BackendFor = Callable[[VariantSpec], Backend]
SoftPromptFor = Callable[[str], Any]  # soft prompt id -> numpy [N, d]


class AppliedAdapter(Protocol):
    """A LoRA adapter put into a loaded model (`lora_io.AppliedAdapter`)."""

    def remove(self) -> None: ...


# (adapter id, the variant's backend) -> the adapter applied to that backend's model
AdapterFor = Callable[[str, Backend], AppliedAdapter]


def new_eval_run(
    prompt_id: str | None,
    test_set: TestSet,
    variants: Sequence[VariantSpec],
    metrics: Sequence[str],
    chosen_mode: ScoringMode,
    split: Split | None,
) -> EvalRun:
    """An evaluation run before its first case: what `evaluate` fills in, and what a live
    view shows meanwhile (likelihood runs always measure `label`)."""
    metric_list = list(metrics)
    if chosen_mode == "likelihood" and "label" not in metric_list:
        metric_list.insert(0, "label")
    return EvalRun(
        prompt_id=prompt_id,
        test_set_id=test_set.id,
        test_set_name=test_set.name,
        split=split,
        mode=chosen_mode,
        metrics=metric_list,
        variants=list(variants),
        results=[[] for _ in variants],
        complete=False,
    )


def evaluate(
    variants: Sequence[tuple[VariantSpec, Prompt]],
    test_set: TestSet,
    rows: Sequence[int],
    backend_for: BackendFor,
    metrics: Sequence[str] = DEFAULT_METRICS,
    mode: Mode = "auto",
    cancel: threading.Event | None = None,
    split: Split | None = None,
    soft_prompt_for: SoftPromptFor | None = None,
    prompt_id: str | None = None,
    adapter_for: AdapterFor | None = None,
) -> Generator[EvalEvent, None, None]:
    """Run every variant over the chosen rows of a test set. The run is filed under
    `prompt_id` (the evaluated prompt; default: the first variant's). A variant with an
    `adapter_id` runs with that LoRA adapter put into its backend's model
    (`adapter_for`) and taken out again after its last case, so the other variants on
    the same loaded model run without it."""
    cancel = cancel or threading.Event()
    chosen_mode = choose_mode(test_set, mode)
    unknown = [m for m in metrics if m not in TEXT_METRICS and m != "label"]
    if unknown:
        known = ", ".join([*TEXT_METRICS, "label"])
        raise EvaluationError(
            f"unknown {plural('metric', len(unknown))} {', '.join(unknown)} (known: {known})"
        )
    if not rows:
        raise EvaluationError(f"test set {test_set.name!r} has no rows to evaluate")
    if not variants:
        raise EvaluationError("nothing to evaluate: no variants")
    run = new_eval_run(
        prompt_id if prompt_id is not None else variants[0][1].id,
        test_set,
        [spec for spec, _ in variants],
        metrics,
        chosen_mode,
        split,
    )
    metric_list = run.metrics
    total = len(variants) * len(rows)
    done = 0
    started = time.perf_counter()
    for index, (spec, base_prompt) in enumerate(variants):
        prompt = apply_variant(base_prompt, spec)
        backend = backend_for(spec)
        soft = None
        if spec.soft_prompt_id is not None:
            if soft_prompt_for is None:
                raise EvaluationError(f"variant {spec.name!r} needs its soft prompt loaded")
            soft = soft_prompt_for(spec.soft_prompt_id)
        applied = None
        if spec.adapter_id is not None:
            if adapter_for is None:
                raise EvaluationError(f"variant {spec.name!r} needs its LoRA adapter loaded")
            applied = adapter_for(spec.adapter_id, backend)
        try:
            if chosen_mode == "likelihood":
                cases = _likelihood_cases(
                    backend, prompt, test_set, rows, metric_list, cancel, soft
                )
            else:
                cases = _generated_cases(backend, prompt, test_set, rows, metric_list, cancel, soft)
            for result in cases:
                run.results[index].append(result)
                done += 1
                yield CaseDone(index, result)
                elapsed = time.perf_counter() - started
                yield Progress(done, total, elapsed / done * (total - done))
        finally:  # also when the run is stopped or fails: the model is left as it was
            if applied is not None:
                applied.remove()
        if cancel.is_set():
            break
    run.complete = done == total
    run.summaries = [
        summarise(spec.name, results, test_set, metric_list)
        for spec, results in zip(run.variants, run.results, strict=True)
    ]
    yield EvalFinished(run)


def _context_tokens(
    backend: Backend, prompt: Prompt, vars: dict[str, str], soft: Any = None
) -> int | None:
    """Tokens of context one call takes (virtual tokens count like real ones)."""
    try:
        return backend.context_tokens(render_messages(prompt, vars), soft)
    except Exception:  # a server that cannot count tokens: the figure is optional
        return None


def _scores(answer: str, expected: str, metrics: Sequence[str]) -> dict[str, float]:
    return {m: TEXT_METRICS[m](answer, expected) for m in metrics if m in TEXT_METRICS}


def _generated_cases(
    backend: Backend,
    prompt: Prompt,
    test_set: TestSet,
    rows: Sequence[int],
    metrics: Sequence[str],
    cancel: threading.Event,
    soft: Any = None,
) -> Iterator[CaseResult]:
    for row_index in rows:
        if cancel.is_set():
            return
        row = test_set.rows[row_index]
        start = time.perf_counter()
        try:
            record = None
            events = run_prompt(backend, prompt, row.vars, prompt.params, cancel, soft_prompt=soft)
            for event in events:
                if isinstance(event, RunFinished):
                    record = event.record
            assert record is not None
            if record.stats.finish_reason == "cancelled":
                return
            answer = extract_answer(prompt, record.output)
            context = _context_tokens(backend, prompt, row.vars, soft)
            latency = time.perf_counter() - start
            logprob, tokens = _expected_likelihood(backend, prompt, row, soft)
            yield CaseResult(
                row=row_index,
                output=record.output,
                answer=answer,
                scores=_scores(answer, row.expected, metrics),
                latency_s=latency,
                context_tokens=context,
                completion_tokens=record.stats.completion_tokens,
                expected_logprob=logprob,
                expected_tokens=tokens,
            )
        except EvaluationError:
            raise
        except Exception as exc:  # one bad case (template, server) does not end the run
            yield CaseResult(
                row=row_index,
                error=f"{type(exc).__name__}: {exc}",
                scores=dict.fromkeys(metrics, 0.0),
                latency_s=time.perf_counter() - start,
            )


def _expected_likelihood(
    backend: Backend, prompt: Prompt, row: TestRow, soft: Any = None
) -> tuple[float | None, int | None]:
    """Log-likelihood of the expected output right after the prompt and its token count,
    through the same scoring path as label likelihood (cross-entropy and perplexity in
    `core/analysis.py`). None for a chain (its answer follows other calls), an empty
    expected output, and backends that cannot score (a server)."""
    if not row.expected or prompt.cot.mode is CoTMode.CHAIN:
        return None, None
    try:
        tokens = len(backend.tokenize_tail(row.expected))
        if tokens == 0:
            return None, None
        messages = render_messages(prompt, row.vars)
        logprob = backend.score_continuations(messages, [row.expected], soft)[0]
    except BackendError:
        return None, None
    return float(logprob), tokens


def _likelihood_cases(
    backend: Backend,
    prompt: Prompt,
    test_set: TestSet,
    rows: Sequence[int],
    metrics: Sequence[str],
    cancel: threading.Event,
    soft: Any = None,
) -> Iterator[CaseResult]:
    """Each row's best label by likelihood. `Backend.score_cases` scores the cases one at
    a time while reusing what they share: on transformers the key/value cache of the
    common prefix (system message, few-shot turns, virtual tokens) runs once; llama.cpp
    keeps the prefix of plain prompts in its own cache between calls (with a soft prompt
    it decodes each case afresh)."""
    labels = list(test_set.labels or [])
    if prompt.cot.mode is CoTMode.CHAIN:
        raise EvaluationError("likelihood scoring needs a single call; this prompt is a chain")
    messages = [render_messages(prompt, test_set.rows[i].vars) for i in rows]
    scored = backend.score_cases(messages, labels, soft)
    start = time.perf_counter()
    for row_index, message_list in zip(rows, messages, strict=True):
        if cancel.is_set():
            return
        scores = next(scored)
        latency = time.perf_counter() - start
        row = test_set.rows[row_index]
        best = labels[max(range(len(labels)), key=lambda k: scores[k])]
        result_scores = {"label": float(best.strip() == row.expected.strip())}
        result_scores.update(_scores(best, row.expected, metrics))
        try:
            context: int | None = backend.context_tokens(message_list, soft)
        except Exception:
            context = None
        by_label = dict(zip(labels, scores, strict=True))
        expected_logprob = by_label.get(row.expected)
        yield CaseResult(
            row=row_index,
            output=best,
            answer=best,
            scores=result_scores,
            label_scores=by_label,
            expected_logprob=expected_logprob,
            expected_tokens=_tail_tokens(backend, row.expected)
            if expected_logprob is not None
            else None,
            latency_s=latency,
            context_tokens=context,
            completion_tokens=0,
        )
        start = time.perf_counter()


def _tail_tokens(backend: Backend, text: str) -> int | None:
    try:
        return len(backend.tokenize_tail(text)) or None
    except BackendError:
        return None


# ---------------------------------------------------------------------------
# Aggregates, thresholds, export


def _means(results: Sequence[CaseResult], metrics: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in metrics:
        values = [r.scores.get(metric, 0.0) for r in results]
        if values:
            out[metric] = statistics.fmean(values)
    for cost in COST_METRICS:
        values = [float(getattr(r, cost)) for r in results if getattr(r, cost) is not None]
        if values:
            out[cost] = statistics.fmean(values)
    out["errors"] = float(sum(1 for r in results if r.error))
    return out


def summarise(
    name: str, results: Sequence[CaseResult], test_set: TestSet, metrics: Sequence[str]
) -> VariantSummary:
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        group = test_set.rows[result.row].group
        if group:
            groups.setdefault(group, []).append(result)
    return VariantSummary(
        name=name,
        cases=len(results),
        metrics=_means(results, metrics),
        groups={g: _means(rs, metrics) for g, rs in sorted(groups.items())},
    )


def export_csv(run: EvalRun, test_set: TestSet) -> str:
    """One line per case and variant."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    var_names = sorted({k for row in test_set.rows for k in row.vars})
    writer.writerow(
        [
            "variant",
            "row",
            *var_names,
            "expected",
            "group",
            "output",
            "answer",
            *run.metrics,
            *COST_METRICS,
            "expected_logprob",
            "expected_tokens",
            "thumbs",
            "stars",
            "note",
            "error",
        ]
    )
    for spec, results in zip(run.variants, run.results, strict=True):
        for r in results:
            row = test_set.rows[r.row] if r.row < len(test_set.rows) else None
            values = [row.vars.get(k, "") if row else "" for k in var_names]
            writer.writerow(
                [
                    spec.name,
                    r.row,
                    *values,
                    row.expected if row else "",
                    (row.group or "") if row else "",
                    r.output,
                    r.answer,
                    *[r.scores.get(m, "") for m in run.metrics],
                    *[getattr(r, c) if getattr(r, c) is not None else "" for c in COST_METRICS],
                    "" if r.expected_logprob is None else r.expected_logprob,
                    "" if r.expected_tokens is None else r.expected_tokens,
                    (r.rating.thumbs or "") if r.rating else "",
                    (r.rating.stars or "") if r.rating else "",
                    r.rating.note if r.rating else "",
                    r.error or "",
                ]
            )
    return buffer.getvalue()


def export_json(run: EvalRun) -> str:
    return json.dumps(json.loads(run.model_dump_json()), indent=2) + "\n"


def format_table(run: EvalRun) -> str:
    """The summary table printed by `workbench eval`: metrics × variants, then groups."""
    names = [s.name for s in run.summaries]
    keys = [*run.metrics, *[c for c in COST_METRICS if any(c in s.metrics for s in run.summaries)]]
    width = max([len(k) for k in keys] + [12])
    columns = [max(len(n), 9) for n in names]
    lines = [
        " " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, columns, strict=True))
    ]

    def cell(value: float | None, key: str, w: int) -> str:
        return format_metric(key, value).rjust(w)

    for key in keys:
        values = [s.metrics.get(key) for s in run.summaries]
        lines.append(
            key.ljust(width)
            + "  "
            + "  ".join(cell(v, key, w) for v, w in zip(values, columns, strict=True))
        )
    groups = sorted({g for s in run.summaries for g in s.groups})
    if groups:
        primary = primary_metric(run)
        lines.append(f"{primary} by group:")
        for group in groups:
            values = [s.groups.get(group, {}).get(primary) for s in run.summaries]
            lines.append(
                ("  " + group).ljust(width)
                + "  "
                + "  ".join(cell(v, primary, w) for v, w in zip(values, columns, strict=True))
            )
    cases = run.summaries[0].cases if run.summaries else 0
    state = "" if run.complete else " (stopped early)"
    lines.append(f"{cases} cases · mode {run.mode}{state}")
    return "\n".join(lines)
