"""Metrics on hand-made cases, aggregates, thresholds and export (no model)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from workbench.core.evaluation import (
    EvaluationError,
    apply_variant,
    choose_mode,
    contains,
    exact_match,
    export_csv,
    export_json,
    format_table,
    normalise,
    normalised_match,
    regex_match,
    summarise,
    token_f1,
)
from workbench.core.models import (
    CaseResult,
    CoTMode,
    EvalRun,
    FewShot,
    FewShotExample,
    Prompt,
    TestRow,
    TestSet,
    VariantSpec,
)


def test_exact_match_ignores_only_surrounding_whitespace() -> None:
    assert exact_match(" Paris\n", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0


def test_normalised_match_ignores_case_whitespace_and_punctuation() -> None:
    assert normalise("  Hello,   WORLD!! ") == "hello world"
    assert normalised_match("Positive.", "positive") == 1.0
    assert normalised_match("It's  POSITIVE!", "its positive") == 0.0  # apostrophe -> space
    assert normalised_match("it s positive", "It's positive") == 1.0
    assert normalised_match("negative", "positive") == 0.0


def test_contains() -> None:
    assert contains("The answer is Paris, of course.", "paris") == 1.0
    assert contains("Lyon", "Paris") == 0.0


def test_regex_uses_the_expected_value_as_a_pattern() -> None:
    assert regex_match("Total: 42 apples", r"\b42\b") == 1.0
    assert regex_match("Total: 420", r"\b42\b") == 0.0
    with pytest.raises(EvaluationError, match="not a valid regex"):
        regex_match("x", "(")


def test_token_f1() -> None:
    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("a b", "c d") == 0.0
    # precision 2/3, recall 2/2 -> F1 0.8
    assert token_f1("the cat sat", "the cat") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0
    assert token_f1("word", "") == 0.0


def test_variant_overrides_few_shot_count_and_cot_mode() -> None:
    prompt = Prompt(name="p", few_shot=FewShot(examples=[FewShotExample(input="a", output="b")]))
    zero = apply_variant(
        prompt, VariantSpec(name="zero", few_shot_count=0, cot_mode=CoTMode.ZERO_SHOT)
    )
    assert zero.few_shot.count == 0 and zero.cot.mode is CoTMode.ZERO_SHOT
    assert prompt.few_shot.count is None  # the original is untouched
    assert apply_variant(prompt, VariantSpec(name="same")) is prompt


def test_mode_choice() -> None:
    labelled = TestSet(name="t", labels=["a", "b"])
    free = TestSet(name="u")
    assert choose_mode(labelled, "auto") == "likelihood"
    assert choose_mode(free, "auto") == "generate"
    with pytest.raises(EvaluationError, match="no label set"):
        choose_mode(free, "likelihood")


def _run() -> tuple[EvalRun, TestSet]:
    test_set = TestSet(
        name="t",
        rows=[
            TestRow(vars={"q": "1"}, expected="a", group="g1"),
            TestRow(vars={"q": "2"}, expected="b", group="g1"),
            TestRow(vars={"q": "3, with comma"}, expected="a", group="g2"),
        ],
    )
    results = [
        [
            CaseResult(
                row=0,
                output="a",
                answer="a",
                scores={"exact": 1.0},
                latency_s=0.1,
                context_tokens=10,
                completion_tokens=1,
            ),
            CaseResult(
                row=1,
                output="a",
                answer="a",
                scores={"exact": 0.0},
                latency_s=0.3,
                context_tokens=10,
                completion_tokens=1,
            ),
            CaseResult(
                row=2,
                output="a",
                answer="a",
                scores={"exact": 1.0},
                latency_s=0.2,
                context_tokens=10,
                completion_tokens=1,
            ),
        ],
        [
            CaseResult(row=0, error="boom", scores={"exact": 0.0}),
            CaseResult(row=1, output="b", answer="b", scores={"exact": 1.0}),
            CaseResult(row=2, output="b", answer="b", scores={"exact": 0.0}),
        ],
    ]
    variants = [VariantSpec(name="v1"), VariantSpec(name="v2")]
    run = EvalRun(
        test_set_name="t", mode="generate", metrics=["exact"], variants=variants, results=results
    )
    run.summaries = [
        summarise(v.name, r, test_set, run.metrics) for v, r in zip(variants, results, strict=True)
    ]
    return run, test_set


def test_summaries_per_variant_and_per_group() -> None:
    run, _ = _run()
    first, second = run.summaries
    assert first.metrics["exact"] == pytest.approx(2 / 3)
    assert first.metrics["latency_s"] == pytest.approx(0.2)
    assert first.groups == {
        "g1": pytest.approx(
            {
                "exact": 0.5,
                "latency_s": 0.2,
                "context_tokens": 10.0,
                "completion_tokens": 1.0,
                "errors": 0.0,
            }
        ),
        "g2": pytest.approx(
            {
                "exact": 1.0,
                "latency_s": 0.2,
                "context_tokens": 10.0,
                "completion_tokens": 1.0,
                "errors": 0.0,
            }
        ),
    }
    assert second.metrics["errors"] == 1.0


def test_thresholds() -> None:
    from workbench.core.analysis import analyse, check_limits

    run, test_set = _run()
    result = analyse(run, test_set)
    assert check_limits(result, {"exact": 0.3}) == []
    assert check_limits(result, {"exact": 0.5}) == ["v2: exact match 0.333 is below 0.500"]
    assert check_limits(result, {"f1": 0.1}) == [
        "v1: token F1 was not measured",
        "v2: token F1 was not measured",
    ]
    # "accuracy" is the run's primary metric; stored cost metrics take a maximum
    assert check_limits(result, {"accuracy": 0.5}) == [
        "v2: accuracy (exact match) 0.333 is below 0.500"
    ]
    assert check_limits(result, maximums={"latency_s": 0.15}) == [
        "v1: latency 200 ms is above 150 ms"
    ]


def test_export_csv_and_json() -> None:
    run, test_set = _run()
    rows = list(csv.DictReader(io.StringIO(export_csv(run, test_set))))
    assert len(rows) == 6
    assert rows[2]["q"] == "3, with comma" and rows[2]["exact"] == "1.0"
    assert rows[3]["variant"] == "v2" and rows[3]["error"] == "boom"
    again = EvalRun.model_validate(json.loads(export_json(run)))
    assert again == run


def test_format_table_lists_metrics_variants_and_groups() -> None:
    run, _ = _run()
    table = format_table(run)
    assert "v1" in table.splitlines()[0] and "v2" in table.splitlines()[0]
    assert "0.667" in table and "exact by group:" in table
    assert "3 cases" in table


def test_a_soft_prompt_variant_without_its_tensor_is_refused() -> None:
    from workbench.core.evaluation import evaluate

    test_set = TestSet(name="t", rows=[TestRow(expected="a")])
    variants = [(VariantSpec(name="soft", soft_prompt_id="abc"), Prompt(name="p"))]
    with pytest.raises(EvaluationError, match="needs its soft prompt"):
        list(evaluate(variants, test_set, [0], lambda spec: None))  # type: ignore[arg-type]
