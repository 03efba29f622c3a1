"""The hard-prompt search (workbench.core.optimise) on a deterministic scorer: it finds a
planted best subset, never sees the held-out rows, stops within one candidate, is seeded
and deduplicated."""

from __future__ import annotations

import threading

import pytest

from workbench.core.models import FewShotExample, FewShotStyle, Prompt, TestRow, TestSet
from workbench.core.optimise import (
    CandidateScored,
    OptimiseError,
    SearchFinished,
    candidate_prompt,
    candidates,
    current_candidate,
    optimise,
    provenance,
    search_space,
    winner_prompt,
)

LABELS = ["yes", "no"]


def _setup() -> tuple[Prompt, TestSet]:
    prompt = Prompt(
        name="p",
        system="Answer yes or no.",
        user_template="{{ q }}",
        few_shot={"examples": [FewShotExample(vars={"q": "own"}, output="yes")]},
    )
    rows = []
    for i in range(40):
        split = "train" if i < 8 else ("validation" if i < 32 else "test")
        rows.append(TestRow(vars={"q": f"q{i}"}, expected=LABELS[i % 2], split=split))
    return prompt, TestSet(name="t", labels=LABELS, rows=rows)


PLANTED = {"q4", "q7"}  # the train rows whose presence makes a candidate good


def _planted_scorer(seen: list[int]):
    def score(prompt: Prompt, rows):
        seen.extend(rows)
        shown = {e.vars.get("q") for e in prompt.few_shot.examples}
        # the planted pair is worth 0.8; every other example costs a little; inline -0.05
        value = 0.8 * len(PLANTED & shown) / 2 + 0.1 - 0.01 * len(shown - PLANTED)
        if prompt.few_shot.style is FewShotStyle.INLINE:
            value -= 0.05
        return [value] * len(rows)

    return score


def _run(budget: int = 600, seed: int = 0, cancel: threading.Event | None = None):
    prompt, test_set = _setup()
    seen: list[int] = []
    events = list(optimise(prompt, test_set, _planted_scorer(seen), budget, seed, 3, cancel=cancel))
    return prompt, test_set, seen, events


def test_the_search_finds_the_planted_best_subset() -> None:
    prompt, _, _, events = _run()
    result = events[-1].result
    assert isinstance(events[-1], SearchFinished) and result.complete
    best, score = result.best
    shown = {result.space.pool[i].vars["q"] for i in best.examples}
    assert shown == PLANTED and best.style is FewShotStyle.CHAT
    assert score == pytest.approx(0.9)
    assert result.current_score == pytest.approx(0.09)  # the prompt's own example only
    assert result.spread > 0.5
    new = winner_prompt(prompt, result)
    assert {e.vars["q"] for e in new.few_shot.examples} == PLANTED
    assert "validation split (24 rows; the test split was not used)" in provenance(result)


def test_the_held_out_rows_are_never_scored_nor_offered_as_examples() -> None:
    _, test_set, seen, events = _run(budget=60)
    held_out = {i for i, r in enumerate(test_set.rows) if r.split == "test"}
    validation = {i for i, r in enumerate(test_set.rows) if r.split == "validation"}
    assert seen and set(seen) <= validation and not set(seen) & held_out
    pool_questions = {e.vars.get("q") for e in events[-1].result.space.pool}
    assert not pool_questions & {test_set.rows[i].vars["q"] for i in held_out | validation}


def test_every_candidate_is_distinct_and_the_current_prompt_comes_first() -> None:
    prompt, test_set = _setup()
    space = search_space(prompt, test_set, max_examples=3)
    current = current_candidate(prompt, space)
    pool = candidates(space, 200, 0, current)
    assert pool[0] == current and len(set(pool)) == len(pool) == 200
    assert all(len(c.examples) <= 3 for c in pool)
    # balanced across labels: a 2-example subset holds one "yes" and one "no"
    pairs = [c for c in pool if len(c.examples) == 2]
    assert pairs and all({space.pool[i].output for i in c.examples} == set(LABELS) for c in pairs)
    assert candidates(space, 200, 0, current) == pool  # seeded
    assert candidates(space, 200, 1, current) != pool
    rendered = candidate_prompt(prompt, space, pool[5])
    assert rendered.few_shot.count is None and len(rendered.few_shot.examples) == len(
        pool[5].examples
    )


def test_one_event_per_scoring_with_progress_and_eta() -> None:
    _, _, _, events = _run(budget=30)
    scored = [e for e in events if isinstance(e, CandidateScored)]
    assert [e.index for e in scored] == list(range(1, len(scored) + 1))
    assert scored[-1].total == len(scored) and scored[-1].eta_s == 0
    assert {e.rung for e in scored} == {0, 1}
    assert sum(e.rung == 0 for e in scored) == 30
    assert all(e.rows == 24 for e in scored if e.rung == 1)
    assert all(e.rows == 12 for e in scored if e.rung == 0)


def test_cancel_stops_within_one_candidate() -> None:
    prompt, test_set = _setup()
    cancel = threading.Event()
    calls = []

    def score(p: Prompt, rows):
        calls.append(1)
        if len(calls) == 3:
            cancel.set()
        return [0.5] * len(rows)

    events = list(optimise(prompt, test_set, score, 50, cancel=cancel))
    assert len(calls) == 3
    finished = events[-1]
    assert isinstance(finished, SearchFinished) and not finished.result.complete
    assert len(finished.result.sample_scores) == 3


def test_a_set_without_a_validation_split_is_refused() -> None:
    prompt, test_set = _setup()
    unsplit = test_set.model_copy(
        update={"rows": [r.model_copy(update={"split": None}) for r in test_set.rows]}
    )
    with pytest.raises(OptimiseError, match="no validation split"):
        list(optimise(prompt, unsplit, lambda p, rows: [1.0] * len(rows)))


def test_a_proposed_instruction_is_cleaned_or_dropped() -> None:
    from workbench.core.flows.optimise import _clean_proposal

    original = "Classify the review as positive or negative."
    assert _clean_proposal('  "Decide if the review is positive or negative."  ', original) == (
        "Decide if the review is positive or negative."
    )
    assert _clean_proposal("Instruction: Label the review.  ", original) == "Label the review."
    assert _clean_proposal(original, original) is None  # the original again
    assert _clean_proposal("Sure!", original) is None  # not an instruction
    assert _clean_proposal("word " * 200, original) is None  # a ramble
