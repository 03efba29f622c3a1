"""How much work an evaluation is before it starts: cases × variants, and about how long
it takes on this machine.

The time comes from what earlier evaluations measured here (every stored `CaseResult`
carries its latency): the median seconds per case of each model in each scoring mode.
A model and mode never measured gets a conservative default. The Evaluate panel shows
the estimate as the settings change and asks before starting anything above
`CONFIRM_ABOVE_S`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.core.flows.report import count
from workbench.core.models import EvalRun, ScoringMode, VariantSpec

__all__ = [
    "CONFIRM_ABOVE_S",
    "DEFAULT_LIMIT",
    "DEFAULT_SECONDS_PER_CASE",
    "WorkEstimate",
    "estimate_evaluation",
    "format_about",
    "measured_seconds_per_case",
]

DEFAULT_LIMIT = 25
"""The Evaluate panel's default limit on the cases of a split: a first look that takes a
minute or two, not hours (0 in the spin box = every case)."""

CONFIRM_ABOVE_S = 120.0
"""Above this estimate the panel asks before it starts."""

DEFAULT_SECONDS_PER_CASE: dict[str, float] = {"likelihood": 1.5, "generate": 5.0}
"""Per case and variant when nothing was measured: on the slow side of a small model on
a laptop CPU (likelihood scores the labels in one pass; generation samples tokens)."""

_RECENT_SAMPLES = 200  # the newest cases measured per model and mode; older ones may
# come from another model file or another thread count

ModelKey = tuple[str | None, str]  # (model id, or None for the default model; mode)


def _model_of(spec: VariantSpec, default_model: str | None) -> str | None:
    return spec.model or default_model


def measured_seconds_per_case(
    runs: Sequence[EvalRun], default_model: str | None = None
) -> dict[ModelKey, float]:
    """The median latency of a case by (model, scoring mode), over the newest cases of
    `runs` that finished without an error. A variant on the default model counts as
    `default_model` (a stored run does not say which model the default was then)."""
    samples: dict[ModelKey, list[float]] = {}
    for run in sorted(runs, key=lambda r: r.created, reverse=True):
        for spec, results in zip(run.variants, run.results, strict=False):
            key = (_model_of(spec, default_model), run.mode)
            bucket = samples.setdefault(key, [])
            for result in results:
                if len(bucket) < _RECENT_SAMPLES and result.error is None and result.latency_s > 0:
                    bucket.append(result.latency_s)
    return {key: statistics.median(values) for key, values in samples.items() if values}


@dataclass(frozen=True)
class WorkEstimate:
    """An evaluation's size and expected duration."""

    cases: int  # rows of the test set that will run
    available: int  # rows in the split (more than `cases` when a limit applies)
    variants: int
    seconds: float
    measured: bool  # every variant's speed was measured here before

    @property
    def runs(self) -> int:
        """Case × variant pairs: what the progress bar counts."""
        return self.cases * self.variants

    @property
    def needs_confirmation(self) -> bool:
        return self.seconds > CONFIRM_ABOVE_S

    def text(self) -> str:
        """ "25 of 60 cases × 3 variants, about 2 min on this machine"."""
        if self.cases < self.available:
            cases = f"{self.cases:,} of {count(self.available, 'case')}"
        else:
            cases = count(self.cases, "case")
        size = f"{cases} × {count(self.variants, 'variant')}"
        if not self.runs:
            return size
        where = "on this machine" if self.measured else "(a first guess: not measured here yet)"
        return f"{size}, {format_about(self.seconds)} {where}"


def estimate_evaluation(
    cases: int,
    variants: Sequence[VariantSpec],
    mode: ScoringMode,
    history: Sequence[EvalRun] = (),
    *,
    default_model: str | None = None,
    available: int | None = None,
) -> WorkEstimate:
    """The estimate for `cases` rows under `variants` in `mode`, timed by what `history`
    (earlier evaluations on this machine) measured, else by `DEFAULT_SECONDS_PER_CASE`.
    `available` is the split's size before the limit (default: `cases`)."""
    measured = measured_seconds_per_case(history, default_model)
    seconds = 0.0
    all_measured = bool(variants)
    for spec in variants:
        per_case = measured.get((_model_of(spec, default_model), mode))
        if per_case is None:
            all_measured = False
            per_case = DEFAULT_SECONDS_PER_CASE[mode]
        seconds += per_case * cases
    return WorkEstimate(
        cases=cases,
        available=cases if available is None else max(available, cases),
        variants=len(variants),
        seconds=seconds,
        measured=all_measured,
    )


def format_about(seconds: float) -> str:
    """A rough duration: "about 20 s", "about 14 min", "about 2 h 10 min"."""
    if seconds < 5:
        return "a few seconds"
    if round(seconds / 5) * 5 < 60:
        return f"about {round(seconds / 5) * 5} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {max(1, minutes)} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
