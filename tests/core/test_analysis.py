"""A saved evaluation analysed (workbench.core.analysis): intervals, per-label metrics,
paired tests, the best variant and its equals, group gaps, thresholds and the printed and
JSON forms — from an `EvalRun` written to disk and read back, as an old run is opened."""

from __future__ import annotations

import json
import math

import pytest
from sklearn.metrics import f1_score

from workbench.core import analysis as an
from workbench.core.evaluation import summarise
from workbench.core.models import CaseResult, EvalRun, TestRow, TestSet, VariantSpec

LABELS = ["positive", "negative", "neutral"]


def _test_set() -> TestSet:
    rows = []
    for i in range(30):
        rows.append(
            TestRow(
                vars={"review": f"r{i}"},
                expected=LABELS[i % 3],
                group="books" if i < 15 else "kitchen",
            )
        )
    return TestSet(name="reviews", labels=LABELS, rows=rows)


def _results(test_set: TestSet, wrong: set[int], wrong_as: str = "neutral") -> list[CaseResult]:
    out = []
    for i, row in enumerate(test_set.rows):
        chosen = (
            row.expected
            if i not in wrong
            else (wrong_as if row.expected != wrong_as else "positive")
        )
        out.append(
            CaseResult(
                row=i,
                output=chosen,
                answer=chosen,
                scores={"label": float(chosen == row.expected)},
                label_scores={label: (0.0 if label == chosen else -3.0) for label in LABELS},
            )
        )
    return out


def _run(test_set: TestSet, variants: dict[str, set[int]]) -> EvalRun:
    results = [_results(test_set, wrong) for wrong in variants.values()]
    return EvalRun(
        test_set_id=test_set.id,
        mode="likelihood",
        metrics=[],
        variants=[VariantSpec(name=n) for n in variants],
        results=results,
        summaries=[summarise(n, r, test_set, []) for n, r in zip(variants, results, strict=True)],
    )


@pytest.fixture
def saved(tmp_path) -> tuple[EvalRun, TestSet]:
    test_set = _test_set()
    run = _run(
        test_set,
        {
            # soft prompt: 1 miss; few-shot: 12 misses (books' rows 0-11); zero-shot: 2 misses
            "soft prompt": {20},
            "few-shot": set(range(12)),
            "zero-shot": {3, 20},
        },
    )
    path = tmp_path / "run.json"
    path.write_text(run.model_dump_json())
    return EvalRun.model_validate_json(path.read_text()), test_set


def test_every_variant_gets_its_accuracy_with_a_wilson_interval(saved) -> None:
    run, test_set = saved
    result = an.analyse(run, test_set)
    assert result.primary == "label"
    soft = result.variant("soft prompt")
    assert soft.primary.value == pytest.approx(29 / 30)
    lo, hi = soft.primary.interval
    assert lo == pytest.approx(0.8333, abs=1e-3) and hi == pytest.approx(0.9941, abs=1e-3)
    assert result.variant("few-shot").primary.value == pytest.approx(18 / 30)


def test_paired_tests_and_the_best_with_its_equals(saved) -> None:
    run, test_set = saved
    result = an.analyse(run, test_set)
    by_pair = {(p.a, p.b): p for p in result.pairs}
    soft_few = by_pair[("soft prompt", "few-shot")]
    # soft passes the 12 rows few-shot fails (0-11); only few-shot passes row 20
    assert (soft_few.a_only, soft_few.b_only) == (12, 1)
    assert soft_few.significant
    assert soft_few.verdict.startswith("soft prompt > few-shot, p = ")
    soft_zero = by_pair[("soft prompt", "zero-shot")]
    assert (soft_zero.a_only, soft_zero.b_only) == (1, 0)
    assert not soft_zero.significant
    assert result.best == ["soft prompt", "zero-shot"]


def test_per_label_metrics_match_scikit_learn(saved) -> None:
    run, test_set = saved
    few = an.analyse(run, test_set).variant("few-shot")
    expected = [row.expected for row in test_set.rows]
    chosen = [r.answer for r in run.results[1]]
    assert few.classification is not None
    assert few.classification.macro_f1 == pytest.approx(
        f1_score(expected, chosen, labels=LABELS, average="macro", zero_division=0)
    )
    # rows 0-11 wrong: positives and negatives went to neutral, neutrals to positive
    matrix = few.classification.matrix
    assert matrix[LABELS.index("positive")][LABELS.index("neutral")] == 4
    assert sum(map(sum, matrix)) == 30


def test_group_gap_per_variant(saved) -> None:
    run, test_set = saved
    few = an.analyse(run, test_set).variant("few-shot")
    assert few.groups is not None
    assert few.groups.by_group["books"].value == pytest.approx(3 / 15)
    assert few.groups.by_group["kitchen"].value == pytest.approx(1.0)
    gap = few.groups.gap
    assert gap is not None and (gap.high, gap.low) == ("kitchen", "books")
    assert gap.gap == pytest.approx(0.8)
    assert gap.interval[0] > 0.5


def test_limits_report_each_miss(saved) -> None:
    run, test_set = saved
    result = an.analyse(run, test_set)
    macro = result.variant("few-shot").classification.macro_f1  # type: ignore[union-attr]
    assert macro < 0.7
    assert an.check_limits(result, {"macro_f1": 0.7}) == [
        f"few-shot: macro-F1 {macro:.3f} is below 0.700"
    ]
    misses = an.check_limits(result, maximums={"group_gap": 0.1})
    assert len(misses) == 1 and misses[0].startswith("few-shot: largest group gap 0.800")
    assert an.check_limits(result, {"accuracy": 0.5}) == []
    assert an.check_limits(result, {"bleu": 0.5})[0] == "soft prompt: bleu was not measured"


def test_printed_and_json_forms_carry_the_same_numbers(saved) -> None:
    run, test_set = saved
    result = an.analyse(run, test_set)
    text = an.format_analysis(result)
    assert "soft prompt" in text and "96.7 % (83.3–99.4)  best" in text
    assert "zero-shot" in text and "not distinguishable from the best" in text
    assert "soft prompt > few-shot, p = 0.003" in text
    assert "largest gap 80.0 points (kitchen over books" in text
    data = json.loads(json.dumps(an.analysis_json(result)))
    assert data["best"] == ["soft prompt", "zero-shot"]
    assert data["pairs"][0]["verdict"] == "soft prompt > few-shot, p = 0.003"
    assert data["variants"][0]["primary"]["value"] == pytest.approx(29 / 30)


def test_cross_entropy_and_perplexity_by_hand(saved) -> None:
    run, test_set = saved
    assert an.analyse(run, test_set).variant("soft prompt").cross_entropy is None  # not stored
    cases = run.results[0]
    cases[0] = cases[0].model_copy(update={"expected_logprob": -1.0, "expected_tokens": 1})
    cases[1] = cases[1].model_copy(update={"expected_logprob": -3.0, "expected_tokens": 3})
    soft = an.analyse(run, test_set).variant("soft prompt")
    assert soft.cross_entropy == pytest.approx(1.0)  # 4 nats over 4 tokens
    assert soft.likelihood_cases == 2
    assert soft.perplexity == pytest.approx(math.e)
    assert "cross-entropy 1.000 nats per token · perplexity 2.72" in an.format_analysis(
        an.analyse(run, test_set)
    )
    assert an.check_limits(an.analyse(run, test_set), maximums={"perplexity": 2.0})[0] == (
        "soft prompt: perplexity 2.718 is above 2.000"
    )


def test_ratings_are_saved_reloaded_exported_and_aggregated(tmp_path, saved) -> None:
    import csv
    import io

    from workbench.core.evaluation import export_csv, export_json
    from workbench.core.library import Library
    from workbench.core.models import CaseRating

    run, test_set = saved
    library = Library(tmp_path / "lib")
    run = run.model_copy(update={"prompt_id": "p1"})
    for row, thumbs, stars in [(0, "up", 5), (1, "up", 4), (2, "down", 2), (3, "up", None)]:
        run = an.set_rating(run, 0, row, CaseRating(thumbs=thumbs, stars=stars, note=f"n{row}"))
    library.save_eval_run(run)
    reopened = Library(tmp_path / "lib").eval_runs_for("p1")[0]
    assert reopened.results[0][2].rating == CaseRating(thumbs="down", stars=2, note="n2")

    soft = an.analyse(reopened, test_set).variant("soft prompt")
    assert soft.thumbs_up is not None and soft.thumbs_up.value == pytest.approx(3 / 4)
    assert soft.thumbs_up.cases == 4 and soft.thumbs_up.interval is not None
    assert soft.stars is not None and soft.stars.value == pytest.approx(11 / 3)
    assert an.analyse(reopened, test_set).variant("few-shot").thumbs_up is None
    assert "soft prompt: rated satisfaction: thumbs up 75.0 % (" in an.format_analysis(
        an.analyse(reopened, test_set)
    )

    rows = list(csv.DictReader(io.StringIO(export_csv(reopened, test_set))))
    assert (rows[2]["thumbs"], rows[2]["stars"], rows[2]["note"]) == ("down", "2", "n2")
    assert rows[3]["stars"] == "" and rows[40]["thumbs"] == ""
    assert '"thumbs": "down"' in export_json(reopened)

    # an empty rating clears it; a case the run does not have is an error
    cleared = an.set_rating(reopened, 0, 2, CaseRating())
    assert cleared.results[0][2].rating is None
    assert reopened.results[0][2].rating is not None  # the original is untouched
    with pytest.raises(KeyError):
        an.set_rating(reopened, 0, 99, CaseRating(thumbs="up"))
    with pytest.raises(ValueError):
        CaseRating(stars=6)
