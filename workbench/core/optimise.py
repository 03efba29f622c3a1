"""Optimise the hard prompt before graduating: which few-shot examples to show, how many,
in which order and style, and (optionally) which instruction — searched on the
validation split, never on the held-out test split.

The search is seeded random search with successive halving, the way DSPy's
BootstrapFewShotWithRandomSearch and MIPROv2's minibatches spend a budget:

1. `candidates` draws up to `budget` distinct candidates (the current prompt first) from
   the search space: a subset of the example pool (the prompt's own examples and the test
   set's train split) of 0..`max_examples` examples, balanced across labels when the set
   has a label set, in a random order, in chat or inline style, with one of the
   instruction variants.
2. Every candidate is scored on the same seeded sample of validation rows (the first
   rung); the best third go on to the whole validation split (the second rung). All
   first-rung scores are on the same rows, so their spread measures how fragile the
   prompt is.

Scoring goes through `core.evaluation.evaluate`: label likelihood with the shared-prefix
key/value cache where the set has labels (each candidate's system message and example
turns are computed once for all its rows), else generation with a text metric. The
search is a generator with a cancel event and one event per scored candidate; nothing
is saved until the caller applies the winner (`apply_winner`), which makes a new version
of the prompt whose description records how it was found.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from workbench.core.models import FewShotExample, FewShotOrder, FewShotStyle, Prompt, TestSet

# scores one candidate prompt on test-set rows: one score in [0, 1] per row
Scorer = Callable[[Prompt, Sequence[int]], Sequence[float]]


class OptimiseError(ValueError):
    """The search cannot run as asked; the message says why."""


@dataclass(frozen=True)
class SearchSpace:
    pool: list[FewShotExample]  # the prompt's examples first, then the train split's rows
    from_prompt: int  # how many of the pool are the prompt's own examples
    instructions: list[str]  # [the prompt's own system message, alternatives…]
    max_examples: int
    styles: tuple[FewShotStyle, ...]
    labels: list[str] | None  # balance subsets across these when given


@dataclass(frozen=True)
class Candidate:
    examples: tuple[int, ...]  # pool indices, in the order shown
    style: FewShotStyle
    instruction: int = 0

    def describe(self, space: SearchSpace) -> str:
        own = sum(1 for i in self.examples if i < space.from_prompt)
        parts = [f"{len(self.examples)} examples ({own} of the prompt's)"]
        if self.examples:
            parts.append(f"{self.style.value} style")
        if len(space.instructions) > 1:
            parts.append(f"instruction {self.instruction + 1}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CandidateScored:
    index: int  # how many scorings so far, counting from 1
    total: int  # scorings planned (first rung + second rung)
    candidate: Candidate
    score: float
    rows: int  # validation rows it was scored on
    rung: int  # 0: the sample of validation rows, 1: the whole validation split
    best_score: float  # best whole-split score so far (first-rung best before any)
    eta_s: float


@dataclass(frozen=True)
class SearchResult:
    space: SearchSpace
    current: Candidate
    ranking: list[tuple[Candidate, float]]  # whole-split score, best first (finalists)
    sample_scores: list[tuple[Candidate, float]]  # every candidate on the first rung
    sample_rows: list[int]
    validation_rows: list[int]
    budget: int
    seed: int
    seconds: float
    complete: bool
    current_score: float | None = None  # the current prompt on the whole split

    @property
    def best(self) -> tuple[Candidate, float]:
        return self.ranking[0]

    @property
    def spread(self) -> float:
        """Best minus worst first-rung score: how much the choice of examples matters."""
        scores = [s for _, s in self.sample_scores]
        return max(scores) - min(scores) if scores else 0.0

    @property
    def spread_sd(self) -> float:
        scores = [s for _, s in self.sample_scores]
        return statistics.pstdev(scores) if len(scores) > 1 else 0.0


@dataclass(frozen=True)
class SearchFinished:
    result: SearchResult


OptimiseEvent = CandidateScored | SearchFinished


def search_space(
    prompt: Prompt,
    test_set: TestSet | None,
    max_examples: int = 8,
    styles: Sequence[FewShotStyle] = (FewShotStyle.CHAT, FewShotStyle.INLINE),
    instructions: Sequence[str] = (),
) -> SearchSpace:
    """The examples to choose from: the prompt's own, then the train split's rows (never
    the validation or test rows)."""
    pool = list(prompt.few_shot.examples)
    from_prompt = len(pool)
    if test_set is not None:
        pool.extend(
            FewShotExample(vars=dict(row.vars), output=row.expected)
            for row in test_set.rows
            if row.split == "train" and row.expected
        )
    variants = [prompt.system, *(t for t in instructions if t.strip() and t != prompt.system)]
    labels = list(test_set.labels) if test_set is not None and test_set.labels else None
    return SearchSpace(
        pool=pool,
        from_prompt=from_prompt,
        instructions=list(dict.fromkeys(variants)),
        max_examples=max(0, min(max_examples, len(pool))),
        styles=tuple(dict.fromkeys(styles)) or (prompt.few_shot.style,),
        labels=labels,
    )


def current_candidate(prompt: Prompt, space: SearchSpace) -> Candidate:
    """The prompt as it is: its examples as it selects them, in its style."""
    from workbench.core.templates import select_examples

    chosen = tuple(select_examples(prompt.few_shot))
    return Candidate(chosen, prompt.few_shot.style, 0)


def _subset(space: SearchSpace, k: int, rng: random.Random) -> tuple[int, ...]:
    indices = list(range(len(space.pool)))
    if not space.labels or k == 0:
        return tuple(rng.sample(indices, k))
    by_label: dict[str, list[int]] = {}
    for i in indices:
        by_label.setdefault(space.pool[i].output.strip(), []).append(i)
    for members in by_label.values():
        rng.shuffle(members)
    chosen: list[int] = []
    queues = [by_label[label] for label in space.labels if by_label.get(label)]
    queues += [q for key, q in by_label.items() if key not in space.labels]
    rng.shuffle(queues)
    while len(chosen) < k and any(queues):  # round-robin over labels
        for queue in queues:
            if queue and len(chosen) < k:
                chosen.append(queue.pop())
    rng.shuffle(chosen)  # the order is part of the candidate
    return tuple(chosen)


def candidates(space: SearchSpace, budget: int, seed: int, current: Candidate) -> list[Candidate]:
    """Up to `budget` distinct candidates, the current prompt first; seeded."""
    if budget < 1:
        raise OptimiseError("the budget must allow at least one candidate")
    rng = random.Random(seed)
    out = [current]
    seen = {current}
    attempts = 0
    while len(out) < budget and attempts < budget * 50:
        attempts += 1
        k = rng.randint(0, space.max_examples)
        style = rng.choice(space.styles) if k else space.styles[0]
        candidate = Candidate(_subset(space, k, rng), style, rng.randrange(len(space.instructions)))
        if candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out


def candidate_prompt(prompt: Prompt, space: SearchSpace, candidate: Candidate) -> Prompt:
    """The prompt with this candidate's examples, style and instruction."""
    few_shot = prompt.few_shot.model_copy(
        update={
            "examples": [space.pool[i] for i in candidate.examples],
            "count": None,
            "order": FewShotOrder.AS_WRITTEN,
            "style": candidate.style,
        }
    )
    return prompt.model_copy(
        update={"few_shot": few_shot, "system": space.instructions[candidate.instruction]}
    )


def sample_rows(validation: Sequence[int], seed: int, size: int | None = None) -> list[int]:
    """The first rung's rows: a seeded sample of the validation rows (a quarter, at least
    12), in their order."""
    size = size if size is not None else max(12, len(validation) // 4)
    if size >= len(validation):
        return list(validation)
    return sorted(random.Random(seed + 1).sample(list(validation), size))


def optimise(
    prompt: Prompt,
    test_set: TestSet,
    scorer: Scorer,
    budget: int = 32,
    seed: int = 0,
    max_examples: int = 8,
    instructions: Sequence[str] = (),
    cancel: threading.Event | None = None,
    keep: float = 1 / 3,
) -> Iterator[OptimiseEvent]:
    """Search the space on the validation split; ends with `SearchFinished` (also when
    cancelled, with what was scored)."""
    from workbench.core.testsets_io import rows_in_split

    cancel = cancel or threading.Event()
    validation = rows_in_split(test_set, "validation")
    if not validation:
        raise OptimiseError(
            f"test set {test_set.name!r} has no validation split: split it first (the "
            "search scores candidates on the validation rows and never sees the test rows)"
        )
    space = search_space(prompt, test_set, max_examples, instructions=instructions)
    current = current_candidate(prompt, space)
    pool = candidates(space, budget, seed, current)
    first = sample_rows(validation, seed)
    # the best third of the others go on to the whole split, with the current prompt
    others_n = max(1, round((len(pool) - 1) * keep)) if len(pool) > 1 else 0
    finalists_n = 1 + others_n if first != validation else 0
    total = len(pool) + finalists_n
    started = time.perf_counter()
    done = 0
    sample_scores: list[tuple[Candidate, float]] = []
    ranking: list[tuple[Candidate, float]] = []
    full: dict[Candidate, float] = {}

    def scored(candidate: Candidate, rows: list[int], rung: int) -> CandidateScored:
        nonlocal done
        values = scorer(candidate_prompt(prompt, space, candidate), rows)
        score = sum(values) / len(values) if len(values) else 0.0
        done += 1
        if rung == 1 or first == validation:
            full[candidate] = score
        best = max(full.values()) if full else max([score, *(s for _, s in sample_scores)])
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done)
        return CandidateScored(done, total, candidate, score, len(rows), rung, best, eta)

    for candidate in pool:
        if cancel.is_set():
            break
        event = scored(candidate, first, 0)
        sample_scores.append((candidate, event.score))
        yield event
    if finalists_n and not cancel.is_set():
        order = sorted((cs for cs in sample_scores if cs[0] != current), key=lambda cs: -cs[1])
        finalists = [current, *(c for c, _ in order[:others_n])]
        for candidate in finalists:
            if cancel.is_set():
                break
            yield scored(candidate, validation, 1)
    ranking = sorted(full.items(), key=lambda cs: -cs[1])
    if not ranking:  # stopped before any whole-split score: rank by the sample
        ranking = sorted(sample_scores, key=lambda cs: -cs[1])
    yield SearchFinished(
        SearchResult(
            space=space,
            current=current,
            ranking=ranking,
            sample_scores=sample_scores,
            sample_rows=first,
            validation_rows=validation,
            budget=budget,
            seed=seed,
            seconds=time.perf_counter() - started,
            complete=not cancel.is_set(),
            current_score=full.get(current),
        )
    )


def evaluation_scorer(
    backend: object,
    test_set: TestSet,
    metric: str | None = None,
    cancel: threading.Event | None = None,
) -> Scorer:
    """Scores candidates through `core.evaluation.evaluate` on one backend: label
    likelihood when the set has labels (the shared-prefix cache makes a candidate's rows
    cheap), else generation scored by `metric` (default normalised match)."""
    from workbench.core.evaluation import EvalFinished, evaluate
    from workbench.core.models import EvalMode, VariantSpec

    mode: EvalMode = "likelihood" if test_set.labels else "generate"
    key = "label" if test_set.labels else (metric or "normalised")

    def score(prompt: Prompt, rows: Sequence[int]) -> list[float]:
        run = None
        for event in evaluate(
            [(VariantSpec(name="candidate"), prompt)],
            test_set,
            list(rows),
            lambda _spec: backend,  # type: ignore[arg-type,return-value]
            metrics=[] if key == "label" else [key],
            mode=mode,
            cancel=cancel,
        ):
            if isinstance(event, EvalFinished):
                run = event.run
        if run is None or not run.results:
            return []
        return [r.scores.get(key, 0.0) for r in run.results[0]]

    return score


def provenance(result: SearchResult) -> str:
    """How the winner was found, in one paragraph (kept with the new version)."""
    from workbench.core.flows.report import count

    best, score = result.best
    space = result.space
    base = f"{result.current_score * 100:.1f} %" if result.current_score is not None else "–"
    return (
        f"Optimised on the validation split ({len(result.validation_rows)} rows; the test "
        f"split was not used): {len(result.sample_scores)} candidates of a budget of "
        f"{result.budget}, seed {result.seed}, from {len(space.pool)} examples "
        f"({space.from_prompt} of the prompt's, the rest from the train split), up to "
        f"{space.max_examples} shown, styles {', '.join(s.value for s in space.styles)}, "
        f"{count(len(space.instructions), 'instruction')}. Winner: {best.describe(space)}, "
        f"validation score {score * 100:.1f} % (the prompt before: {base}); spread of "
        f"the candidates {result.spread * 100:.1f} points."
    )


def winner_prompt(prompt: Prompt, result: SearchResult) -> Prompt:
    """The winning candidate as the prompt's next content (not saved)."""
    best, _ = result.best
    return candidate_prompt(prompt, result.space, best)
