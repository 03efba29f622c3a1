"""The evaluation's estimate: cases × variants, timed by what earlier runs measured on
this machine, else by a conservative default per mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbench.core.flows.estimate import (
    CONFIRM_ABOVE_S,
    DEFAULT_SECONDS_PER_CASE,
    estimate_evaluation,
    format_about,
    measured_seconds_per_case,
)
from workbench.core.models import CaseResult, EvalRun, ScoringMode, VariantSpec


def past_run(
    latencies: list[float],
    mode: ScoringMode = "likelihood",
    model: str | None = None,
    age_days: int = 0,
    error_at: int | None = None,
) -> EvalRun:
    results = [
        CaseResult(row=i, latency_s=s, error="boom" if i == error_at else None)
        for i, s in enumerate(latencies)
    ]
    return EvalRun(
        mode=mode,
        variants=[VariantSpec(name="v", model=model)],
        results=[results],
        created=datetime.now(UTC) - timedelta(days=age_days),
    )


def test_the_issue_example_reads_as_cases_times_variants_and_minutes() -> None:
    history = [past_run([1.1, 1.2, 1.15, 9.0, 0.0])]  # median of the measured ones
    specs = [VariantSpec(name=n) for n in ("zero-shot", "few-shot", "cot")]
    estimate = estimate_evaluation(240, specs, "likelihood", history)
    assert estimate.runs == 720 and estimate.measured
    assert estimate.seconds == pytest.approx(720 * 1.175)
    assert estimate.text() == "240 cases × 3 variants, about 14 min on this machine"
    assert estimate.needs_confirmation


def test_nothing_measured_uses_the_default_of_the_mode_and_says_so() -> None:
    specs = [VariantSpec(name="only")]
    estimate = estimate_evaluation(4, specs, "generate", [past_run([0.5])])  # likelihood
    assert not estimate.measured
    assert estimate.seconds == 4 * DEFAULT_SECONDS_PER_CASE["generate"]
    assert estimate.text() == (
        "4 cases × 1 variant, about 20 s (a first guess: not measured here yet)"
    )
    assert not estimate.needs_confirmation


def test_measured_speed_is_per_model_and_mode_and_skips_errors() -> None:
    history = [
        past_run([2.0, 2.0, 50.0], model="big", error_at=2),
        past_run([0.2, 0.4], model=None),  # the default model then
        past_run([3.0], mode="generate", model="big"),
    ]
    measured = measured_seconds_per_case(history, default_model="small")
    assert measured == {
        ("big", "likelihood"): 2.0,
        ("small", "likelihood"): pytest.approx(0.3),
        ("big", "generate"): 3.0,
    }
    # a variant naming the default model by id shares its measurements
    specs = [VariantSpec(name="a", model="small"), VariantSpec(name="b", model="big")]
    estimate = estimate_evaluation(10, specs, "likelihood", history, default_model="small")
    assert estimate.seconds == pytest.approx(10 * 0.3 + 10 * 2.0) and estimate.measured


def test_a_limit_reads_as_some_of_the_split_and_long_work_asks_first() -> None:
    specs = [VariantSpec(name="v")]
    estimate = estimate_evaluation(25, specs, "likelihood", available=60)
    assert estimate.text().startswith("25 of 60 cases × 1 variant, about 40 s")
    big = estimate_evaluation(1000, specs, "likelihood")
    assert big.seconds > CONFIRM_ABOVE_S and big.needs_confirmation
    assert estimate_evaluation(0, specs, "likelihood").text() == "0 cases × 1 variant"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (2, "a few seconds"),
        (21, "about 20 s"),
        (58, "about 1 min"),
        (14 * 60 + 5, "about 14 min"),
        (3 * 3600 + 10 * 60, "about 3 h 10 min"),
        (2 * 3600, "about 2 h"),
    ],
)
def test_durations_read_roughly(seconds: float, text: str) -> None:
    assert format_about(seconds) == text
