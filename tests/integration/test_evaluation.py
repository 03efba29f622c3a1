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

    failing = workbench("eval", "sentiment", "--min", "label=1.01", library=library_dir)
    assert failing.returncode == 1 and "FAILED sentiment: label" in failing.stderr

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
