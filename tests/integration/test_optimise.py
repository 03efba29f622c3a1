"""`workbench optimise` on the embedded model: the search on the validation split, the
held-out comparison, --apply making a new version with provenance, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_evaluation import workbench
from workbench.core.library import Library
from workbench.core.models import FewShotExample, Prompt, TestRow, TestSet

pytestmark = pytest.mark.integration

GOOD = ["I love it, works perfectly.", "Great value, very happy.", "Excellent, would buy again."]
BAD = ["Broke on day one, awful.", "Terrible, a waste of money.", "Horrible, it stopped working."]


def _library(root: Path) -> tuple[Library, Prompt]:
    library = Library(root)
    prompt = library.save_prompt(
        Prompt(
            name="sentiment",
            system="Classify the review as positive or negative. Answer with one word.",
            user_template="Review: {{ review }}",
            few_shot={"examples": [FewShotExample(vars={"review": "Fine."}, output="positive")]},
        )
    )
    rows = []
    for i in range(16):
        text = (GOOD if i % 2 == 0 else BAD)[i % 3] + f" (order {i})"
        split = "train" if i < 8 else ("validation" if i < 12 else "test")
        rows.append(
            TestRow(
                vars={"review": text},
                expected="positive" if i % 2 == 0 else "negative",
                split=split,
            )
        )
    library.save_test_set(
        TestSet(name="reviews", prompt_id=prompt.id, labels=["positive", "negative"], rows=rows)
    )
    return library, prompt


def test_optimise_compares_on_held_out_and_applies_the_winner(library_dir: Path) -> None:
    _, prompt = _library(library_dir)
    out = workbench(
        "optimise",
        "sentiment",
        "--budget",
        "4",
        "--max-examples",
        "3",
        "--apply",
        library=library_dir,
    )
    assert out.returncode == 0, out.stderr
    assert "4 candidates in" in out.stdout and "validation: best" in out.stdout
    assert "held-out test split (4 rows):" in out.stdout
    assert "few-shot (optimised)" in out.stdout and "95 % interval" in out.stdout
    assert "saved as version 2 of 'sentiment'" in out.stdout
    again = Library(library_dir)
    saved = again.prompts[prompt.id]
    assert saved.version == 2
    assert "Optimised on the validation split (4 rows; the test split was not used)" in (
        saved.description
    )
    assert [p.version for p in again.history(prompt.id)] == [1, 2]  # the old one stays
    # the examples it chose come from the train split or the prompt, never held out
    held_out = {
        r.vars["review"] for r in again.test_sets_for(prompt.id)[0].rows if r.split != "train"
    }
    assert not {e.vars["review"] for e in saved.few_shot.examples} & held_out
    assert len(again.eval_runs_for(prompt.id)) == 1  # the held-out comparison is kept


def test_optimise_json_lines(library_dir: Path) -> None:
    _library(library_dir)
    out = workbench(
        "optimise", "sentiment", "--budget", "3", "--json", "--no-compare", library=library_dir
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["candidate"] * 3 + ["result"]
    assert lines[-1]["candidates"] == 3 and lines[-1]["saved_version"] is None
    assert 0 <= lines[-1]["best"]["score"] <= 1 and lines[-1]["held_out"] is None


def test_optimise_tries_instructions_the_model_proposes(library_dir: Path) -> None:
    _, prompt = _library(library_dir)
    args = ["optimise", "sentiment", "--budget", "3", "--propose", "2", "--json"]
    out = workbench(*args, "--no-compare", library=library_dir)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["proposed"] + ["candidate"] * 3 + ["result"]
    proposed = lines[0]["instructions"]
    assert len(proposed) <= 2 and len(set(proposed)) == len(proposed)
    assert all(text.strip() and text != prompt.system for text in proposed)
    # a candidate's instruction is the prompt's own (0) or one of the proposals
    assert all(0 <= line["instruction"] <= len(proposed) for line in lines[1:4])
    again = workbench(*args, "--no-compare", library=library_dir)  # seeded: the same again
    assert json.loads(again.stdout.splitlines()[0])["instructions"] == proposed
