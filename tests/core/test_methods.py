"""The method table's flow without a real model: the plan (which methods, which are
missing and why), the run on fake backends, the table and its verdict from the paired
tests, the saved run, the exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.core.fake_pool import FakeBackend, make_pool, patch_loader
from workbench.core.flows.methods import (
    EVALUATED,
    FAILED,
    NOT_AVAILABLE,
    NOT_TRAINED,
    MethodsError,
    MethodsFinished,
    MethodTable,
    build_table,
    current_table,
    export_table,
    format_table,
    latest_table,
    merged_run,
    parse_methods,
    pending_table,
    plan_methods,
    run_methods,
)
from workbench.core.library import Library
from workbench.core.models import (
    CaseResult,
    ChainOfThought,
    CoTMode,
    FewShotExample,
    Prompt,
    TestRow,
    TestSet,
)


def _prompt(library: Library, examples: int = 2, cot: bool = False) -> Prompt:
    return library.save_prompt(
        Prompt(
            name="sentiment",
            system="Classify the review.",
            user_template="Review: {{ text }}",
            few_shot={
                "examples": [
                    FewShotExample(vars={"text": f"example {i}"}, output="positive")
                    for i in range(examples)
                ]
            },
            cot=ChainOfThought(mode=CoTMode.ZERO_SHOT) if cot else ChainOfThought(),
        )
    )


def _test_set(library: Library, prompt: Prompt, rows: int = 8, split: bool = True) -> TestSet:
    return library.save_test_set(
        TestSet(
            name="reviews",
            prompt_id=prompt.id,
            labels=["positive", "negative"],
            rows=[
                TestRow(
                    vars={"text": f"review {i}"},
                    expected="positive" if i % 2 == 0 else "negative",
                    split=("test" if i % 2 == 0 or i % 3 == 0 else "train") if split else None,
                )
                for i in range(rows)
            ],
        )
    )


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[FakeBackend]:
    return patch_loader(monkeypatch)


def test_methods_parse_by_key_or_label_and_unknown_ones_are_refused() -> None:
    assert parse_methods(None)[0] == "zero-shot" and len(parse_methods(None)) == 6
    assert parse_methods("soft prompt, zero-shot,cot") == ["zero-shot", "cot", "soft"]
    with pytest.raises(MethodsError, match="unknown method 'prefix'"):
        parse_methods("zero-shot,prefix")
    with pytest.raises(MethodsError, match="at least one method"):
        parse_methods(" , ")


def test_the_plan_says_what_is_missing_and_why(library: Library) -> None:
    prompt = _prompt(library, examples=0)
    plan = plan_methods(library, prompt, _test_set(library, prompt))
    status = {m.key: (m.status, m.detail) for m in plan.methods}
    assert [m.key for m in plan.runnable] == ["zero-shot"]
    assert status["few-shot"] == (NOT_AVAILABLE, "the prompt has no few-shot examples")
    assert status["optimised"][0] == NOT_AVAILABLE and "Optimise" in status["optimised"][1]
    assert status["cot"] == (NOT_AVAILABLE, "the prompt has no chain of thought")
    assert status["soft"][0] == NOT_TRAINED and status["lora"][0] == NOT_TRAINED
    assert [m.key for m in plan.missing] == ["soft", "lora"]  # both have a train function
    assert plan.rows == [0, 2, 3, 4, 6]  # the held-out test split only
    pending = pending_table(library, plan)
    cot, zero = pending.row("cot"), pending.row("zero-shot")
    assert cot.trainable_parameters is None and cot.size_bytes is None  # shown "–"
    assert zero.trainable_parameters == 0 and zero.size_bytes == 0 and zero.llama_cpp


def test_a_test_set_without_held_out_rows_says_what_to_do(library: Library) -> None:
    prompt = _prompt(library)
    with pytest.raises(MethodsError, match="split it in the Test sets tab"):
        plan_methods(library, prompt, _test_set(library, prompt, split=False))
    from workbench.core.flows.methods import held_out_test_set

    other = library.save_prompt(Prompt(name="alone", user_template="{{ x }}"))
    with pytest.raises(MethodsError, match="has no test set"):
        held_out_test_set(library, other)


def test_an_optimised_version_gets_its_row_and_few_shot_is_the_prompt_as_written(
    library: Library,
) -> None:
    prompt = _prompt(library, examples=3)
    test_set = _test_set(library, prompt)
    fewer = prompt.few_shot.model_copy(update={"examples": prompt.few_shot.examples[:1]})
    optimised = library.save_prompt(prompt.model_copy(update={"few_shot": fewer}), "optimised")
    plan = plan_methods(library, optimised, test_set, "few-shot,optimised")
    by_key = {m.key: m for m in plan.methods}
    assert by_key["few-shot"].prompt is not None and by_key["few-shot"].prompt.version == 1
    assert by_key["optimised"].prompt is not None and by_key["optimised"].prompt.version == 2
    assert by_key["optimised"].detail == "version 2, 1 example"
    # edited after optimising: few-shot is the current version, the optimised one stays
    edited = library.save_prompt(optimised.model_copy(update={"system": "Classify it."}))
    plan = plan_methods(library, edited, test_set, "few-shot,optimised")
    assert [m.prompt.version for m in plan.methods if m.prompt] == [3, 2]


def test_a_run_on_fake_backends_makes_a_table_a_saved_run_and_failures_are_rows(
    library: Library, tmp_path: Path, loads: list[FakeBackend]
) -> None:
    from tests.core.exchange_helpers import add_soft_prompt

    prompt = _prompt(library)
    test_set = _test_set(library, prompt)
    add_soft_prompt(library, "tuned", prompt.id, tokens=3, hidden=8)
    plan = plan_methods(library, prompt, test_set, "zero-shot,few-shot,soft,lora")
    with make_pool(tmp_path) as pool:
        events = list(run_methods(library, plan, pool))
    finished = events[-1]
    assert isinstance(finished, MethodsFinished)
    table, run = finished.table, finished.run
    zero, few, soft, lora = (table.row(k) for k in ("zero-shot", "few-shot", "soft", "lora"))
    # the fake always picks "positive": right on the positive rows of those held out
    positive = sum(test_set.rows[i].expected == "positive" for i in plan.rows) / len(plan.rows)
    assert zero.status == EVALUATED and zero.cases == 5
    assert zero.accuracy == pytest.approx(positive)
    assert zero.interval is not None and zero.interval[0] < positive < zero.interval[1]
    assert zero.trainable_parameters == 0 and zero.size_bytes == 0 and zero.llama_cpp
    assert few.context_tokens is not None and zero.context_tokens is not None
    assert few.context_tokens > zero.context_tokens  # the examples cost context
    # the fake cannot score with a soft prompt: the row says so, the table goes on
    assert soft.status == FAILED and soft.error and "soft" in soft.error.lower()
    assert soft.trainable_parameters == 3 * 8 and soft.size_bytes and soft.size_bytes > 0
    assert lora.status == NOT_TRAINED and lora.trainable and lora.llama_cpp is True
    assert zero.best and few.best  # the same answers: not distinguishable
    assert "not distinguishable" in table.verdict and "Cheapest per call" in table.verdict
    assert "zero-shot (" in table.verdict.split("Cheapest per call among them:")[1]
    assert sum(1 for e in events if type(e).__name__ == "CaseDone") == 10
    assert run.method_table is not None and [v.name for v in run.variants] == [
        "zero-shot",
        "few-shot",
    ]
    library.save_eval_run(run)
    again = latest_table(Library(library.root), prompt.id)
    assert again == table


def _results(passes: list[bool], tokens: int) -> list[CaseResult]:
    return [
        CaseResult(
            row=i,
            output="positive" if ok else "negative",
            answer="positive" if ok else "negative",
            scores={"label": float(ok)},
            context_tokens=tokens,
            latency_s=0.01 * tokens,
        )
        for i, ok in enumerate(passes)
    ]


def _all_positive(library: Library, prompt: Prompt, n: int) -> TestSet:
    return library.save_test_set(
        TestSet(
            name="all positive",
            prompt_id=prompt.id,
            labels=["positive", "negative"],
            rows=[
                TestRow(vars={"text": f"r{i}"}, expected="positive", split="test") for i in range(n)
            ],
        )
    )


def test_the_verdict_follows_the_paired_test(library: Library) -> None:
    prompt = _prompt(library)
    test_set = _all_positive(library, prompt, 30)
    plan = plan_methods(library, prompt, test_set, "zero-shot,few-shot")
    runnable = plan.runnable
    specs = [m.spec for m in runnable if m.spec]
    # few-shot right on all 30, zero-shot on 10: McNemar tells them apart
    run = merged_run(
        plan,
        runnable,
        specs,
        {
            "zero-shot": _results([i < 10 for i in range(30)], 10),
            "few-shot": _results([True] * 30, 40),
        },
        True,
    )
    table = build_table(library, plan, run)
    assert table.row("few-shot").best and not table.row("zero-shot").best
    assert table.verdict.startswith("Best on 30 held-out rows: few-shot at 100.0 %")
    assert "every other method is worse" in table.verdict
    # 28 against 30: not distinguishable, and zero-shot is the cheaper call
    run = merged_run(
        plan,
        runnable,
        specs,
        {
            "zero-shot": _results([i >= 2 for i in range(30)], 10),
            "few-shot": _results([True] * 30, 40),
        },
        True,
    )
    table = build_table(library, plan, run)
    assert table.row("few-shot").best and table.row("zero-shot").best
    assert "zero-shot is not distinguishable from it" in table.verdict
    assert "Cheapest per call among them: zero-shot (10 context tokens" in table.verdict
    assert table.row("few-shot").macro_f1 == pytest.approx(0.5)  # one label never expected


def test_exports_are_complete_and_a_bad_name_writes_nothing(
    library: Library, tmp_path: Path
) -> None:
    prompt = _prompt(library)
    test_set = _all_positive(library, prompt, 6)
    plan = plan_methods(library, prompt, test_set, "zero-shot,few-shot,soft")
    runnable = plan.runnable
    run = merged_run(
        plan,
        runnable,
        [m.spec for m in runnable if m.spec],
        {"zero-shot": _results([True] * 6, 5), "few-shot": _results([False] * 6, 9)},
        True,
    )
    table = build_table(library, plan, run)
    rows = list(csv.DictReader(io.StringIO(export_table(table, tmp_path / "t.csv").read_text())))
    assert [r["method"] for r in rows] == ["zero-shot", "few-shot", "soft prompt"]
    assert float(rows[0]["accuracy"]) == 1.0 and rows[2]["accuracy"] == ""
    assert rows[2]["status"] == NOT_TRAINED
    data = json.loads(export_table(table, tmp_path / "t.json").read_text())
    assert MethodTable.from_dict(data) == table
    markdown = export_table(table, tmp_path / "t.md").read_text()
    assert "| **zero-shot** | 100.0 % |" in markdown and table.verdict in markdown
    assert "held-out accuracy" in format_table(table)
    with pytest.raises(MethodsError, match=r"\.csv, \.json or \.md"):
        export_table(table, tmp_path / "t.txt")
    with pytest.raises(MethodsError, match="does not exist"):
        export_table(table, tmp_path / "nowhere" / "t.csv")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["t.csv", "t.json", "t.md"]


def test_a_saved_table_follows_what_was_trained_since(library: Library) -> None:
    from tests.core.exchange_helpers import add_soft_prompt

    prompt = _prompt(library)
    test_set = _all_positive(library, prompt, 4)
    plan = plan_methods(library, prompt, test_set)
    assert current_table(library, plan) is None  # nothing compared yet
    assert pending_table(library, plan).verdict.startswith("Nothing compared yet")
    run = merged_run(
        plan,
        plan.runnable,
        [m.spec for m in plan.runnable if m.spec],
        {"zero-shot": _results([True] * 4, 5), "few-shot": _results([True] * 4, 9)},
        True,
    )
    run.method_table = build_table(library, plan, run).to_dict()
    library.save_eval_run(run)
    add_soft_prompt(library, "tuned", prompt.id, tokens=2, hidden=8)
    table = current_table(library, plan_methods(library, prompt, test_set))
    assert table is not None
    assert table.row("zero-shot").status == EVALUATED
    assert table.row("soft").status == "not compared yet" and not table.row("soft").trainable
    assert table.row("lora").trainable


def test_chain_of_thought_generates_and_its_answer_counts_as_the_label(
    library: Library, tmp_path: Path, loads: list[FakeBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.core.backends.base import Finished
    from workbench.core.models import RunStats

    def stream(self, text, params, cancel):  # a reasoning that ends in its answer
        yield Finished(text="It is fine.\nAnswer: positive", stats=RunStats(prompt_tokens=7))

    monkeypatch.setattr(FakeBackend, "_stream", stream)
    prompt = _prompt(library, cot=True)
    test_set = _test_set(library, prompt)
    plan = plan_methods(library, prompt, test_set, "zero-shot,cot")
    cot = next(m for m in plan.methods if m.key == "cot")
    assert cot.runnable and cot.detail == "zero-shot, generated"
    zero = next(m for m in plan.methods if m.key == "zero-shot")
    assert zero.spec is not None and zero.spec.cot_mode is CoTMode.OFF  # scored by label
    with make_pool(tmp_path) as pool:
        finished = list(run_methods(library, plan, pool))[-1]
    assert isinstance(finished, MethodsFinished)
    table = finished.table
    # "positive" either way (extracted from the reasoning): the same accuracy
    assert table.row("cot").status == EVALUATED
    assert table.row("cot").accuracy == table.row("zero-shot").accuracy
    results = finished.run.results[1]
    assert all(r.scores["label"] == r.scores["normalised"] for r in results)
    assert all(r.answer == "positive" and "Answer:" in r.output for r in results)
