"""What a saved evaluation says once its uncertainty is counted: every variant's
accuracy with a 95 % interval, per-label metrics and the confusion matrix, paired tests
between variants, the best variant and those not distinguishable from it, and the gaps
between groups. Everything is computed from the stored `EvalRun` and its test set, so an
old run gains these numbers when it is opened, and the CLI, the Evaluate panel and the
exports show the same figures (`analyse` is the one place they come from). The
statistics themselves are in `core/stats.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

from workbench.core.evaluation import primary_metric
from workbench.core.models import CaseRating, CaseResult, EvalRun, TestSet
from workbench.core.stats import (
    Classification,
    GroupGap,
    PairedTest,
    classification,
    group_gap,
    mean_interval,
    paired_test,
    wilson_interval,
)

BINARY_METRICS = ("label", "exact", "normalised", "contains", "regex")


@dataclass(frozen=True)
class Estimate:
    """A mean over cases with its 95 % interval (None where it cannot be computed)."""

    value: float
    interval: tuple[float, float] | None
    cases: int


@dataclass(frozen=True)
class GroupReport:
    """One variant's primary metric per group and the largest gap between groups."""

    by_group: dict[str, Estimate]
    gap: GroupGap | None


@dataclass(frozen=True)
class VariantReport:
    name: str
    primary: Estimate
    metrics: dict[str, Estimate]
    classification: Classification | None
    groups: GroupReport | None
    summary: dict[str, float] = field(default_factory=dict)  # the run's stored means
    cross_entropy: float | None = None  # nats per token of the expected outputs
    likelihood_cases: int = 0  # cases the cross-entropy was measured on
    thumbs_up: Estimate | None = None  # share of thumbs-up among the cases given thumbs
    stars: Estimate | None = None  # mean 1–5 rating among the cases given stars

    @property
    def perplexity(self) -> float | None:
        return math.exp(self.cross_entropy) if self.cross_entropy is not None else None


@dataclass(frozen=True)
class Analysis:
    primary: str  # the metric reported as accuracy
    variants: list[VariantReport]
    pairs: list[PairedTest]  # every pair of variants, on the cases both completed
    best: list[str] = field(default_factory=list)  # the best variant, then its equals

    def variant(self, name: str) -> VariantReport:
        return next(v for v in self.variants if v.name == name)


def estimate(metric: str, values: list[float]) -> Estimate:
    """A pass rate gets a Wilson interval; a graded score (token F1) a normal one."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, None, 0)
    mean = sum(values) / n
    if metric in BINARY_METRICS:
        return Estimate(mean, wilson_interval(sum(values), n), n)
    return Estimate(mean, mean_interval(values), n)


def _passed(result: CaseResult, metric: str) -> bool:
    return result.scores.get(metric, 0.0) >= 1.0 and result.error is None


def _predicted(result: CaseResult, labels: list[str]) -> str:
    """The label a case chose: likelihood mode stores it as the answer; a generated
    answer counts as the label it equals after trimming and case-folding."""
    answer = (result.answer or result.output).strip()
    for label in labels:
        if answer.casefold() == label.strip().casefold():
            return label
    return answer


def _cross_entropy(results: list[CaseResult]) -> tuple[float | None, int]:
    """Mean nats per token of the expected outputs, pooled over the cases that have one
    (a case's log-likelihood and token count are stored with it)."""
    measured = [r for r in results if r.expected_logprob is not None and r.expected_tokens]
    tokens = sum(r.expected_tokens or 0 for r in measured)
    if not tokens:
        return None, 0
    return -sum(r.expected_logprob or 0.0 for r in measured) / tokens, len(measured)


def _ratings(results: list[CaseResult]) -> tuple[Estimate | None, Estimate | None]:
    """Rated satisfaction: the thumbs-up share (Wilson interval) and the mean of the
    stars (normal interval), each over the cases that were given one."""
    thumbs = [
        1.0 if r.rating.thumbs == "up" else 0.0 for r in results if r.rating and r.rating.thumbs
    ]
    stars = [float(r.rating.stars) for r in results if r.rating and r.rating.stars]
    return (
        estimate("label", thumbs) if thumbs else None,
        estimate("stars", stars) if stars else None,
    )


def set_rating(run: EvalRun, variant: int, row: int, rating: CaseRating | None) -> EvalRun:
    """The run with one case's rating set (an empty rating clears it); the caller saves
    it (`Library.save_eval_run`). Raises KeyError for a case the run does not have."""
    results = [list(rs) for rs in run.results]
    for i, case in enumerate(results[variant]):
        if case.row == row:
            kept = None if rating is None or rating.is_empty() else rating
            results[variant][i] = case.model_copy(update={"rating": kept})
            return run.model_copy(update={"results": results})
    raise KeyError(f"the run has no case for row {row} under variant {variant}")


def _groups(
    results: list[CaseResult], test_set: TestSet, metric: str, seed: int
) -> GroupReport | None:
    scores: dict[str, list[float]] = {}
    for result in results:
        group = test_set.rows[result.row].group
        if group:
            scores.setdefault(group, []).append(result.scores.get(metric, 0.0))
    if not scores:
        return None
    by_group = {g: estimate(metric, s) for g, s in sorted(scores.items())}
    return GroupReport(by_group, group_gap(scores, seed=seed))


def analyse(run: EvalRun, test_set: TestSet, seed: int = 0) -> Analysis:
    primary = primary_metric(run)
    labels = list(test_set.labels or [])
    reports = []
    for summary, results in zip(run.summaries, run.results, strict=False):
        metrics = {
            key: estimate(key, [r.scores.get(key, 0.0) for r in results])
            for key in dict.fromkeys([primary, *run.metrics])
            if any(key in r.scores for r in results)
        }
        cross_entropy, measured = _cross_entropy(results)
        thumbs, stars = _ratings(results)
        confusion = None
        if labels and results:
            expected = [test_set.rows[r.row].expected for r in results]
            confusion = classification(expected, [_predicted(r, labels) for r in results], labels)
        reports.append(
            VariantReport(
                name=summary.name,
                primary=metrics.get(primary, Estimate(0.0, None, 0)),
                metrics=metrics,
                classification=confusion,
                groups=_groups(results, test_set, primary, seed),
                summary=dict(summary.metrics),
                cross_entropy=cross_entropy,
                likelihood_cases=measured,
                thumbs_up=thumbs,
                stars=stars,
            )
        )
    pairs = []
    for (i, a), (j, b) in combinations(enumerate(run.summaries), 2):
        by_row_b = {r.row: r for r in run.results[j]}
        shared = [(r, by_row_b[r.row]) for r in run.results[i] if r.row in by_row_b]
        pairs.append(
            paired_test(
                a.name,
                b.name,
                [_passed(x, primary) for x, _ in shared],
                [_passed(y, primary) for _, y in shared],
            )
        )
    return Analysis(primary, reports, pairs, _best(reports, pairs))


def _best(reports: list[VariantReport], pairs: list[PairedTest]) -> list[str]:
    """The variant with the highest primary metric, then those no paired test tells
    apart from it."""
    if not reports:
        return []
    top = max(reports, key=lambda r: r.primary.value).name
    equals = []
    for report in reports:
        if report.name == top:
            continue
        test = next(p for p in pairs if {p.a, p.b} == {top, report.name})
        if not test.significant:
            equals.append(report.name)
    return [top, *equals]


# ---------------------------------------------------------------------------
# Thresholds and the printed/JSON forms (the CLI and the exports)


def metric_value(analysis: Analysis, variant: VariantReport, key: str) -> float | None:
    """A threshold's metric for one variant: "accuracy" (the primary metric),
    "macro_f1"/"micro_f1" (label sets), "group_gap", "cross_entropy", "perplexity", or
    any metric the run stored (text metrics, latency_s, context_tokens, …)."""
    if key == "accuracy":
        return variant.primary.value
    if key in ("macro_f1", "micro_f1"):
        if variant.classification is None:
            return None
        return float(getattr(variant.classification, key))
    if key == "thumbs_up":
        return variant.thumbs_up.value if variant.thumbs_up else None
    if key == "stars":
        return variant.stars.value if variant.stars else None
    if key == "cross_entropy":
        return variant.cross_entropy
    if key == "perplexity":
        return variant.perplexity
    if key == "group_gap":
        return variant.groups.gap.gap if variant.groups and variant.groups.gap else None
    found = variant.metrics.get(key)
    return found.value if found else variant.summary.get(key)


def check_limits(
    analysis: Analysis,
    minimums: dict[str, float] | None = None,
    maximums: dict[str, float] | None = None,
) -> list[str]:
    """Missed thresholds as readable lines (empty: every variant met every one)."""
    from workbench.core.flows.report import METRIC_LABELS, display_name, format_metric

    def shown(key: str, number: float) -> str:
        return format_metric(key, number) if key in METRIC_LABELS else f"{number:.3f}"

    failures = []
    for variant in analysis.variants:
        for key, limit, below in [
            *((k, v, True) for k, v in (minimums or {}).items()),
            *((k, v, False) for k, v in (maximums or {}).items()),
        ]:
            value = metric_value(analysis, variant, key)
            name = display_name(key)
            if key == "accuracy":
                name = f"accuracy ({display_name(analysis.primary)})"
            if value is None:
                failures.append(f"{variant.name}: {name} was not measured")
            elif below and value < limit:
                failures.append(
                    f"{variant.name}: {name} {shown(key, value)} is below {shown(key, limit)}"
                )
            elif not below and value > limit:
                failures.append(
                    f"{variant.name}: {name} {shown(key, value)} is above {shown(key, limit)}"
                )
    return failures


def format_analysis(analysis: Analysis) -> str:
    """The analysis as `workbench eval` prints it under the summary table."""
    from workbench.core.flows.report import display_name, format_percent

    lines = [f"{display_name(analysis.primary)} with 95 % interval (Wilson):"]
    width = max([len(v.name) for v in analysis.variants] + [8])
    for v in analysis.variants:
        mark = ""
        if analysis.best and v.name == analysis.best[0]:
            mark = "  best"
        elif v.name in analysis.best:
            mark = "  not distinguishable from the best"
        lines.append(
            f"  {v.name.ljust(width)}  {format_percent(v.primary.value, v.primary.interval)}{mark}"
        )
    if analysis.pairs:
        lines.append("paired tests (exact McNemar on the cases each pair disagrees on):")
        lines.extend(f"  {p.verdict} ({p.a_only} vs {p.b_only} cases)" for p in analysis.pairs)
    for v in analysis.variants:
        if v.cross_entropy is not None:
            lines.append(
                f"{v.name}: cross-entropy {v.cross_entropy:.3f} nats per token · perplexity "
                f"{v.perplexity:.2f} (expected outputs of {v.likelihood_cases} cases)"
            )
    for v in analysis.variants:
        rated = []
        if v.thumbs_up is not None:
            rated.append(
                f"thumbs up {format_percent(v.thumbs_up.value, v.thumbs_up.interval)} of "
                f"{v.thumbs_up.cases} rated"
            )
        if v.stars is not None:
            lo_hi = v.stars.interval
            interval = f" ({lo_hi[0]:.2f}–{lo_hi[1]:.2f})" if lo_hi else ""
            rated.append(f"{v.stars.value:.2f} of 5 stars{interval} from {v.stars.cases} rated")
        if rated:
            lines.append(f"{v.name}: rated satisfaction: " + " · ".join(rated))
    for v in analysis.variants:
        c = v.classification
        if c is None:
            continue
        lines.append(f"{v.name}: macro-F1 {c.macro_f1:.3f} · micro-F1 {c.micro_f1:.3f}")
        label_width = max(len(m.label) for m in c.per_label) if c.per_label else 5
        lines.append(f"  {'label'.ljust(label_width)}  precision  recall     F1  support")
        lines.extend(
            f"  {m.label.ljust(label_width)}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}"
            f"  {m.support:7d}"
            for m in c.per_label
        )
        lines.append("  confusion (rows: expected, columns: chosen): " + " · ".join(c.labels))
        lines.extend(
            f"  {label.ljust(label_width)}  " + " ".join(f"{n:4d}" for n in row)
            for label, row in zip(c.labels, c.matrix, strict=True)
        )
    for v in analysis.variants:
        g = v.groups
        if g is None:
            continue
        parts = [f"{name} {format_percent(e.value, e.interval)}" for name, e in g.by_group.items()]
        lines.append(f"{v.name} by group: " + "; ".join(parts))
        if g.gap is not None and g.gap.gap == 0:
            lines.append("  no gap: every group scores the same")
        elif g.gap is not None:
            lo, hi = g.gap.interval
            lines.append(
                f"  largest gap {g.gap.gap * 100:.1f} points ({g.gap.high} over {g.gap.low}; "
                f"bootstrap 95 % interval {lo * 100:.1f} to {hi * 100:.1f})"
            )
    return "\n".join(lines)


def analysis_json(analysis: Analysis) -> dict[str, object]:
    """Everything in the analysis as plain JSON values (`workbench eval --json`)."""
    import dataclasses

    def plain(value: object) -> object:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    out = plain(analysis)
    assert isinstance(out, dict)
    for variant, data in zip(analysis.variants, out["variants"], strict=True):  # type: ignore[call-overload]
        data["perplexity"] = variant.perplexity
    out["pairs"] = [
        {**plain(p), "significant": p.significant, "verdict": p.verdict}  # type: ignore[dict-item]
        for p in analysis.pairs
    ]
    return out
