"""The statistics an evaluation reports: intervals, paired tests, per-label metrics and
group gaps — pure Python and numpy, so the app does not carry scipy and scikit-learn
(the tests check every function against scikit-learn and hand-computed cases).

- Proportions get a **Wilson score interval** (95 %): unlike the normal approximation it
  stays inside [0, 1] and keeps close to its nominal coverage at the small sizes of a
  prompt designer's test set (60 held-out rows).
- Two variants on the same cases are compared with the **exact McNemar test**: a two-sided
  binomial test on the discordant pairs (cases one variant passes and the other fails).
- Per-label precision, recall and F1 follow scikit-learn's definitions (zero where the
  denominator is zero); macro-F1 is their unweighted mean, micro-F1 is pooled.
- A gap between groups gets a **percentile bootstrap** interval, resampling the cases
  within each group (seeded, so a report reads the same every time it is opened).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
ALPHA = 0.05


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n` ((0, 1) when n is 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float] | None:
    """A normal-approximation interval of a mean (ratings on 1–5); None under 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = float(np.mean(values))
    half = z * float(np.std(values, ddof=1)) / math.sqrt(n)
    return (mean - half, mean + half)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: cases only A passed
    (`a_only`) and cases only B passed (`b_only`)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    # exact integer division: float(2**n) overflows past about 1,000 discordant cases
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedTest:
    """Variant A against variant B on the same cases."""

    a: str
    b: str
    a_only: int  # cases A passed and B failed
    b_only: int
    cases: int
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def verdict(self) -> str:
        """ "A > B, p = 0.003" or "no detectable difference (p = 0.41)"."""
        p = format_p(self.p_value)
        p = f"p {p}" if p.startswith("<") else f"p = {p}"
        if not self.significant:
            return f"{self.a} vs {self.b}: no detectable difference ({p})"
        first, second = (self.a, self.b) if self.a_only > self.b_only else (self.b, self.a)
        return f"{first} > {second}, {p}"


def format_p(p: float) -> str:
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def paired_test(a: str, b: str, passed_a: Sequence[bool], passed_b: Sequence[bool]) -> PairedTest:
    """The exact McNemar test of two variants' pass/fail on the same cases, in order."""
    if len(passed_a) != len(passed_b):
        raise ValueError("a paired test needs the same cases under both variants")
    a_only = sum(1 for x, y in zip(passed_a, passed_b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(passed_a, passed_b, strict=True) if y and not x)
    return PairedTest(a, b, a_only, b_only, len(passed_a), mcnemar_exact(a_only, b_only))


@dataclass(frozen=True)
class LabelMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # cases whose expected label is this one


@dataclass(frozen=True)
class Classification:
    """Per-label metrics and the confusion matrix of one variant's label choices."""

    labels: list[str]  # rows/columns of the matrix; an answer outside the set is "(other)"
    matrix: list[list[int]]  # matrix[expected][predicted]
    per_label: list[LabelMetrics]  # the label set's labels (not "(other)")
    macro_f1: float
    micro_f1: float
    accuracy: float

    def row_normalised(self) -> list[list[float]]:
        return [[c / s if (s := sum(row)) else 0.0 for c in row] for row in self.matrix]


OTHER = "(other)"


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def classification(
    expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> Classification:
    """Precision, recall, F1 per label (scikit-learn's `precision_recall_fscore_support`
    with `labels=labels`, `zero_division=0`), macro/micro F1 and the confusion matrix.
    Predictions outside `labels` count as wrong and go to an "(other)" column."""
    axis = list(labels)
    if any(p not in labels for p in predicted) or any(e not in labels for e in expected):
        axis.append(OTHER)
    index = {label: i for i, label in enumerate(axis)}

    def at(value: str) -> int:
        return index.get(value, index.get(OTHER, 0))

    matrix = [[0] * len(axis) for _ in axis]
    for e, p in zip(expected, predicted, strict=True):
        matrix[at(e)][at(p)] += 1
    per_label = []
    tp_all = fp_all = fn_all = 0
    for label in labels:
        i = index[label]
        tp = matrix[i][i]
        fp = sum(matrix[r][i] for r in range(len(axis))) - tp
        fn = sum(matrix[i]) - tp
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_label.append(LabelMetrics(label, precision, recall, f1, sum(matrix[i])))
    micro_p, micro_r = _ratio(tp_all, tp_all + fp_all), _ratio(tp_all, tp_all + fn_all)
    return Classification(
        labels=axis,
        matrix=matrix,
        per_label=per_label,
        macro_f1=float(np.mean([m.f1 for m in per_label])) if per_label else 0.0,
        micro_f1=_ratio(2 * micro_p * micro_r, micro_p + micro_r),
        accuracy=_ratio(
            sum(1 for e, p in zip(expected, predicted, strict=True) if e == p), len(expected)
        ),
    )


@dataclass(frozen=True)
class GroupGap:
    """The largest difference of a metric between two groups, with its bootstrap interval."""

    high: str
    low: str
    gap: float
    interval: tuple[float, float]

    def exceeds(self, threshold: float) -> bool:
        return self.gap > threshold


def group_gap(
    scores_by_group: Mapping[str, Sequence[float]], resamples: int = 2000, seed: int = 0
) -> GroupGap | None:
    """The gap between the best and the worst group's mean score, and a percentile
    bootstrap interval of that gap (the two groups' means recomputed on each resample of
    the cases within each group; an interval that reaches 0 means the gap may be noise).
    None with fewer than two groups."""
    groups = {g: np.asarray(s, dtype=float) for g, s in scores_by_group.items() if len(s)}
    if len(groups) < 2:
        return None
    means = {g: float(s.mean()) for g, s in groups.items()}
    high = max(means, key=lambda g: means[g])
    low = min((g for g in means if g != high), key=lambda g: means[g])  # never the same group
    rng = np.random.default_rng(seed)

    def resample(scores: np.ndarray) -> np.ndarray:  # [resamples] means
        picks = rng.integers(0, len(scores), size=(resamples, len(scores)))
        means: np.ndarray = scores[picks].mean(axis=1)
        return means

    gaps = resample(groups[high]) - resample(groups[low])
    lo, hi = np.percentile(gaps, [2.5, 97.5])
    return GroupGap(high, low, means[high] - means[low], (float(lo), float(hi)))
