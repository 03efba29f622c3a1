"""What the results read as for people, beyond the grid's cells: a caption of the shown
run's settings, the headline (each variant's score on the metric the verdicts are of)
and the whole of one case with every variant's answer (the case detail pane)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from workbench.core.evaluation import primary_metric
from workbench.core.flows.report import (
    METRIC_LABELS,
    count,
    display_name,
    format_latency,
    format_metric,
    format_score,
)
from workbench.core.models import CaseResult, EvalRun, TestRow
from workbench.ui.evaluate.results import passed

DETAIL_HINT = "Click a case in the grid to read it in full here."


def run_caption(run: EvalRun, running: bool = False) -> str:
    """The settings a run was made with, on one line: when, test set, split, size, mode
    (and whether it is still running or was stopped)."""
    when = run.created.astimezone().strftime("%d %b %H:%M")
    split = f"{run.split} split" if run.split else "all rows"
    cases = len({r.row for results in run.results for r in results})
    parts = [
        when,
        run.test_set_name or "test set",
        split,
        f"{count(cases, 'case')} × {count(len(run.variants), 'variant')}",
        display_name(run.mode),
    ]
    if running:
        parts.append("running")
    elif not run.complete:
        parts.append("stopped early")
    return " · ".join(parts)


def headline(run: EvalRun) -> str:
    """Each variant's score on the run's primary metric: "label accuracy: zero-shot
    75.0 % · few-shot 50.0 %" (the metric named is the one actually used)."""
    primary = primary_metric(run)
    label = METRIC_LABELS.get(primary, primary)
    scores = []
    for summary in run.summaries:
        value = summary.metrics.get(primary)
        scores.append(f"{summary.name} {format_score(primary, value)}")
    return f"{label}: " + " · ".join(scores) if scores else label


def _text_block(text: str) -> str:
    escaped = html.escape(text) if text else "<i>(empty)</i>"
    return f'<p style="white-space: pre-wrap; margin: 2px 0 6px 12px">{escaped}</p>'


def case_detail_html(
    run: EvalRun,
    grid_row_number: int,
    case: TestRow | None,
    results: Sequence[CaseResult | None],
    picked: int | None = None,
) -> str:
    """One case in full: its variables and expected value, then each variant's verdict,
    answer, whole output, scores and cost (the picked variant's heading in bold)."""
    primary = primary_metric(run)
    title = [f"Case {grid_row_number}"]
    if case is not None:
        title += [t for t in (case.group and f"group {case.group}", case.split) if t]
    parts = [f"<p><b>{html.escape(' · '.join(title))}</b></p>"]
    if case is None:
        parts.append(f"<p>The test set {html.escape(run.test_set_name)!r} is gone.</p>")
    else:
        for name, value in sorted(case.vars.items()):
            parts.append(f"<b>{html.escape(name)}</b>{_text_block(value)}")
        parts.append(f"<b>expected</b>{_text_block(case.expected)}")
    for variant, (spec, result) in enumerate(zip(run.variants, results, strict=False)):
        name = html.escape(spec.name)
        if result is None:
            parts.append(f"<hr><b>{name}</b>: not run yet")
            continue
        if result.error:
            verdict = "⚠ error"
        else:
            verdict = "✓ passes" if passed(result, primary) else "✗ fails"
        heading = f"{name} — {verdict}"
        parts.append(f"<hr><p>{'<b>' + heading + '</b>' if variant == picked else heading}</p>")
        if result.error:
            parts.append(_text_block(result.error))
        if result.answer != result.output:
            parts.append(f"answer{_text_block(result.answer)}")
        parts.append(f"output{_text_block(result.output)}")
        scores = [
            f"{METRIC_LABELS.get(m, m)} {format_metric(m, result.scores[m])}"
            for m in run.metrics
            if m in result.scores
        ]
        cost = [f"latency {format_latency(result.latency_s)}"]
        if result.context_tokens is not None:
            cost.append(f"{count(result.context_tokens, 'context token')}")
        if result.completion_tokens:
            cost.append(f"{count(result.completion_tokens, 'token')} generated")
        parts.append(f"<p style='margin-left: 12px'>{html.escape(' · '.join(scores + cost))}</p>")
        if result.label_scores:
            best = sorted(result.label_scores.items(), key=lambda kv: kv[1], reverse=True)
            rows = " · ".join(f"{html.escape(label)} {score:.3f}" for label, score in best)
            parts.append(f"<p style='margin-left: 12px'>label log-likelihoods: {rows}</p>")
    return "".join(parts)
