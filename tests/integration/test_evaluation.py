"""Evaluation on the embedded model: label scoring, a two-variant run, the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.evaluation import EvalFinished, Progress, evaluate
from workbench.core.library import Library
from workbench.core.models import (
    ChainOfThought,
    CoTMode,
    GenerationParams,
    Prompt,
    TestRow,
    TestSet,
    VariantSpec,
)

pytestmark = pytest.mark.integration

SENTIMENT = Prompt(
    name="sentiment",
    system="Classify the sentiment of the review as positive or negative. Answer with one word.",
    user_template="Review: {{ review }}",
)
EASY = TestSet(
    name="easy",
    labels=["positive", "negative"],
    rows=[
        TestRow(
            vars={"review": "I love it! Wonderful, perfect, the best purchase ever."},
            expected="positive",
            group="a",
        ),
        TestRow(
            vars={"review": "Terrible. It broke on day one, awful, I hate it."},
            expected="negative",
            group="b",
        ),
    ],
)


@pytest.mark.parametrize("which", ["llama_backend", "hf_backend"])
def test_label_scoring_ranks_an_easy_case_right(which, request) -> None:
    backend = request.getfixturevalue(which)
    from workbench.core.templates import render_messages

    happy = render_messages(SENTIMENT, EASY.rows[0].vars)
    scores = backend.score_continuations(happy, ["positive", "negative"])
    assert scores[0] > scores[1]
    assert all(s < 0 for s in scores)
    angry = render_messages(SENTIMENT, EASY.rows[1].vars)
    scores = backend.score_continuations(angry, ["positive", "negative"])
    assert scores[1] > scores[0]


def test_batched_scoring_equals_one_case_at_a_time(hf_backend) -> None:
    from workbench.core.templates import render_messages

    labels = ["positive", "negative", "so-so"]  # a multi-token label too
    items = [(render_messages(SENTIMENT, r.vars), labels) for r in EASY.rows]
    batched = hf_backend.score_batch(items)
    single = [hf_backend.score_continuations(m, labels) for m, _ in items]
    assert batched == [pytest.approx(s, abs=1e-3) for s in single]


def test_two_variants_over_a_test_set(llama_backend) -> None:
    variants = [
        (VariantSpec(name="plain"), SENTIMENT),
        (VariantSpec(name="cot", cot_mode=CoTMode.ZERO_SHOT), SENTIMENT),
    ]
    events = list(
        evaluate(
            variants, EASY, [0, 1], lambda spec: llama_backend, metrics=["exact"], mode="likelihood"
        )
    )
    run = events[-1].run if isinstance(events[-1], EvalFinished) else None
    assert run is not None and run.complete and run.mode == "likelihood"
    assert [s.name for s in run.summaries] == ["plain", "cot"]
    assert run.summaries[0].metrics["label"] == 1.0
    assert set(run.summaries[0].groups) == {"a", "b"}
    assert run.results[0][0].label_scores is not None
    assert run.summaries[0].metrics["context_tokens"] > 20
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == [1, 2, 3, 4] and progress[-1].eta_s == 0
    # the expected label's log-likelihood is kept for cross-entropy, from the same scores
    case = run.results[0][0]
    assert case.expected_logprob == case.label_scores[EASY.rows[0].expected]
    assert case.expected_tokens == len(llama_backend.tokenize_tail(EASY.rows[0].expected))


def test_generate_mode_extracts_the_chain_of_thought_answer(llama_backend) -> None:
    prompt = Prompt(
        name="math",
        user_template="{{ q }}",
        cot=ChainOfThought(mode=CoTMode.SCAFFOLD),
        params=GenerationParams(max_new_tokens=48, temperature=0.0),
    )
    test_set = TestSet(name="m", rows=[TestRow(vars={"q": "What is 2 + 3?"}, expected="5")])
    events = list(
        evaluate(
            [(VariantSpec(name="m"), prompt)],
            test_set,
            [0],
            lambda spec: llama_backend,
            metrics=["exact", "contains"],
        )
    )
    case = events[-1].run.results[0][0]
    assert case.output and case.error is None
    assert case.completion_tokens and case.completion_tokens <= 48
    if "answer:" in case.output.lower():
        assert len(case.answer) < len(case.output)  # the answer line was extracted


@pytest.mark.parametrize("which", ["llama_backend", "hf_backend"])
def test_generate_mode_scores_the_expected_output_too(which, request) -> None:
    """Cross-entropy needs the expected output's likelihood in generate mode as well: the
    same scoring call as label likelihood, so both backends agree on it."""
    from workbench.core.analysis import analyse
    from workbench.core.templates import render_messages

    backend = request.getfixturevalue(which)
    prompt = SENTIMENT.model_copy(
        update={"params": GenerationParams(max_new_tokens=3, temperature=0.0)}
    )
    plain = EASY.model_copy(update={"labels": None})
    events = list(
        evaluate([(VariantSpec(name="g"), prompt)], plain, [0, 1], lambda s: backend, ["exact"])
    )
    run = events[-1].run
    assert run.mode == "generate"
    for case, row in zip(run.results[0], plain.rows, strict=True):
        direct = backend.score_continuations(render_messages(prompt, row.vars), [row.expected])
        # llama.cpp's sums move in the third decimal with what its cache held before
        assert case.expected_logprob == pytest.approx(
            direct[0], abs=1e-4 if "hf" in which else 5e-3
        )
        assert case.expected_tokens == len(backend.tokenize_tail(row.expected))
    report = analyse(run, plain).variant("g")
    tokens = sum(c.expected_tokens for c in run.results[0])
    assert report.cross_entropy == pytest.approx(
        -sum(c.expected_logprob for c in run.results[0]) / tokens
    )
    assert report.perplexity is not None and report.perplexity > 1


def test_cancel_stops_an_evaluation(llama_backend) -> None:
    import threading

    cancel = threading.Event()
    variants = [(VariantSpec(name="plain"), SENTIMENT)]
    finished = None
    for event in evaluate(
        variants, EASY, [0, 1], lambda spec: llama_backend, mode="likelihood", cancel=cancel
    ):
        if isinstance(event, Progress):
            cancel.set()
        if isinstance(event, EvalFinished):
            finished = event.run
    assert finished is not None and not finished.complete
    assert len(finished.results[0]) == 1


def workbench(*args: str, library: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_LIBRARY": str(library)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_cli_eval_table_thresholds_and_export(library_dir: Path, tmp_path: Path) -> None:
    library = Library(library_dir)
    prompt = library.save_prompt(SENTIMENT)
    library.save_test_set(EASY.model_copy(update={"prompt_id": prompt.id}))
    ok = workbench(
        "eval",
        "sentiment",
        "--min-accuracy",
        "0.5",
        "--out",
        str(tmp_path / "r.csv"),
        library=library_dir,
    )
    assert ok.returncode == 0, ok.stderr
    assert "label" in ok.stdout and "2 cases · mode likelihood" in ok.stdout
    assert (tmp_path / "r.csv").read_text().count("\n") == 3
    assert len(Library(library_dir).eval_runs_for(prompt.id)) == 1

    # the analysis under the table: intervals, and the per-label table of a label set
    assert "label accuracy with 95 % interval (Wilson):" in ok.stdout
    assert "macro-F1" in ok.stdout and "sentiment by group:" in ok.stdout

    failing = workbench("eval", "sentiment", "--min", "label=1.01", library=library_dir)
    assert failing.returncode == 1 and "FAILED sentiment: label" in failing.stderr
    # a maximum on a likelihood metric: any real model's perplexity is above 1
    too_unsure = workbench("eval", "sentiment", "--max", "perplexity=1", library=library_dir)
    assert too_unsure.returncode == 1
    assert "FAILED sentiment: perplexity" in too_unsure.stderr
    gap = workbench("eval", "sentiment", "--max-group-gap", "0.5", library=library_dir)
    assert gap.returncode == 0, gap.stderr  # both groups are right: no gap

    as_json = workbench(
        "eval",
        "sentiment",
        "--json",
        "--variant",
        "a",
        "--variant",
        "b:few_shot=0",
        "--no-save",
        library=library_dir,
    )
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["case"] * 4 + ["summary"]
    assert [s["name"] for s in lines[-1]["summaries"]] == ["a", "b"]
    analysis = lines[-1]["analysis"]
    assert [v["name"] for v in analysis["variants"]] == ["a", "b"]
    assert analysis["pairs"][0]["a"] == "a" and "verdict" in analysis["pairs"][0]
    assert analysis["variants"][0]["perplexity"] > 1

    bad = workbench("eval", "sentiment", "--variant", "x:colour=red", library=library_dir)
    assert bad.returncode == 2 and "expected key=value" in bad.stderr


def test_cli_eval_compares_a_soft_prompt_variant(library_dir: Path) -> None:
    """`soft=NAME` runs a variant with a soft prompt from the library; it pays its
    virtual tokens in context. (`cot=zero-shot` is accepted as well as `zero_shot`.)"""
    from tests.core.exchange_helpers import add_soft_prompt

    library = Library(library_dir)
    prompt = library.save_prompt(SENTIMENT)
    library.save_test_set(EASY.model_copy(update={"prompt_id": prompt.id}))
    # random embeddings of the embedded model's width: the scores do not matter here
    add_soft_prompt(library, "tiny soft", prompt.id, tokens=4, hidden=576)
    result = workbench(
        "eval",
        "sentiment",
        "--json",
        "--no-save",
        "--variant",
        "plain",
        "--variant",
        "cot:cot=zero-shot",
        "--variant",
        "soft:soft=tiny soft",
        library=library_dir,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["name"] for s in lines[-1]["summaries"]] == ["plain", "cot", "soft"]
    cases = {c["variant"]: c for c in lines if c["event"] == "case" and c["row"] == 0}
    assert cases["soft"]["context_tokens"] == cases["plain"]["context_tokens"] + 4
    assert cases["cot"]["context_tokens"] > cases["plain"]["context_tokens"]
    missing = workbench("eval", "sentiment", "--variant", "x:soft=nope", library=library_dir)
    assert missing.returncode == 2 and "no single soft prompt 'nope'" in missing.stderr
