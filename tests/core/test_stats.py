"""Evaluation statistics (workbench.core.stats) against hand-computed cases, scikit-learn
and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from workbench.core import stats


def test_wilson_interval_by_hand() -> None:
    # 49 of 60: p = 0.8167; Wilson centre (p + z²/2n)/(1 + z²/n), half-width as in Wilson 1927
    lo, hi = stats.wilson_interval(49, 60)
    assert lo == pytest.approx(0.7008, abs=1e-4)
    assert hi == pytest.approx(0.8944, abs=1e-4)
    assert stats.wilson_interval(0, 10)[0] == 0.0
    assert stats.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [30, 60, 120, 240])
def test_wilson_interval_covers_the_true_rate_95_percent_of_the_time(n: int) -> None:
    # 2,000 simulated test sets of n cases, each with its own true rate in [0.1, 0.9] (at a
    # single fixed rate any interval for a binomial over- or under-covers by a point or two,
    # from the discreteness of the counts)
    rng = np.random.default_rng(n)
    runs = 2000
    rates = rng.uniform(0.1, 0.9, size=runs)
    hits = 0
    for p, successes in zip(rates, rng.binomial(n, rates), strict=True):
        lo, hi = stats.wilson_interval(int(successes), n)
        hits += lo <= p <= hi
    assert 0.93 <= hits / runs <= 0.97


def test_mcnemar_exact_on_known_tables() -> None:
    # b=1, c=9: p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11/1024
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0
    # b=0, c=6: 2 / 64
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    # statsmodels' mcnemar(exact=True) on [[10, 2], [12, 30]] gives 0.012939...
    assert stats.mcnemar_exact(2, 12) == pytest.approx(0.0129394, abs=1e-6)


def test_mcnemar_exact_on_a_large_run() -> None:
    # thousands of discordant cases (a big test set): no overflow, and near the
    # continuity-corrected chi-square value, (|700 - 800| - 1)^2 / 1500 -> p = 0.0106
    assert stats.mcnemar_exact(700, 800) == pytest.approx(0.0106, rel=0.1)
    assert stats.mcnemar_exact(750, 750) == 1.0
    assert stats.mcnemar_exact(0, 3000) == pytest.approx(0.0, abs=1e-300)


def test_paired_test_reads_as_a_verdict() -> None:
    a = [True] * 12 + [False] * 2 + [True] * 10
    b = [False] * 12 + [True] * 2 + [True] * 10
    test = stats.paired_test("soft prompt", "few-shot", a, b)
    assert (test.a_only, test.b_only, test.cases) == (12, 2, 24)
    assert test.significant
    assert test.verdict == "soft prompt > few-shot, p = 0.013"
    same = stats.paired_test("zero-shot", "few-shot", [True, False], [False, True])
    assert not same.significant
    assert same.verdict == "zero-shot vs few-shot: no detectable difference (p = 1.00)"
    with pytest.raises(ValueError):
        stats.paired_test("a", "b", [True], [True, False])
    strong = stats.paired_test("a", "b", [True] * 15, [False] * 15)
    assert strong.verdict == "a > b, p < 0.001"


def test_classification_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    labels = ["positive", "negative", "neutral"]
    expected = [labels[i] for i in rng.integers(0, 3, size=200)]
    predicted = [e if rng.random() < 0.7 else labels[rng.integers(0, 3)] for e in expected]
    result = stats.classification(expected, predicted, labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=labels, zero_division=0
    )
    for i, metrics in enumerate(result.per_label):
        assert metrics.label == labels[i]
        assert metrics.precision == pytest.approx(precision[i])
        assert metrics.recall == pytest.approx(recall[i])
        assert metrics.f1 == pytest.approx(f1[i])
        assert metrics.support == support[i]
    assert result.macro_f1 == pytest.approx(
        f1_score(expected, predicted, labels=labels, average="macro", zero_division=0)
    )
    assert result.micro_f1 == pytest.approx(
        f1_score(expected, predicted, labels=labels, average="micro", zero_division=0)
    )
    assert result.matrix == confusion_matrix(expected, predicted, labels=labels).tolist()


def test_classification_by_hand_with_an_answer_outside_the_label_set() -> None:
    expected = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "maybe"]
    result = stats.classification(expected, predicted, ["a", "b"])
    assert result.labels == ["a", "b", stats.OTHER]
    assert result.matrix == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]
    a, b = result.per_label
    assert (a.precision, a.recall, a.f1) == (1.0, 0.5, pytest.approx(2 / 3))
    assert (b.precision, b.recall, b.f1) == (0.5, 0.5, 0.5)
    assert result.accuracy == 0.5
    assert result.row_normalised()[0] == [0.5, 0.5, 0.0]
    assert result.row_normalised()[2] == [0.0, 0.0, 0.0]  # no case: no division by zero
    # scikit-learn with the same labels agrees (the stray answer is a miss for "b")
    assert result.macro_f1 == pytest.approx(
        f1_score(expected, predicted, labels=["a", "b"], average="macro", zero_division=0)
    )


def test_group_gap_and_its_bootstrap_interval() -> None:
    scores = {"books": [1.0] * 18 + [0.0] * 2, "kitchen": [1.0] * 10 + [0.0] * 10}
    gap = stats.group_gap(scores, seed=0)
    assert gap is not None
    assert (gap.high, gap.low) == ("books", "kitchen")
    assert gap.gap == pytest.approx(0.4)
    lo, hi = gap.interval
    assert 0.1 < lo < 0.4 < hi < 0.7
    assert gap.exceeds(0.1) and not gap.exceeds(0.5)
    # seeded: the same report every time it is opened
    assert stats.group_gap(scores, seed=0) == gap
    assert stats.group_gap({"only": [1.0, 0.0]}) is None


def test_group_gap_interval_reaches_zero_for_equal_groups() -> None:
    scores = {"a": [1.0, 0.0] * 15, "b": [0.0, 1.0] * 15}
    gap = stats.group_gap(scores)
    assert gap is not None and gap.gap == 0.0
    assert gap.high != gap.low  # two groups, not one group against itself
    assert gap.interval[0] < 0 < gap.interval[1]


def test_mean_interval() -> None:
    assert stats.mean_interval([4.0]) is None
    lo, hi = stats.mean_interval([4.0, 5.0, 3.0, 4.0])  # type: ignore[misc]
    half = stats.Z95 * float(np.std([4, 5, 3, 4], ddof=1)) / math.sqrt(4)
    assert (lo, hi) == (pytest.approx(4 - half), pytest.approx(4 + half))
