"""The optimise flow, for `workbench optimise` and the Few-shot tab's Optimise…: plan the
search (split the test set if it is not, say what it will cost), run it on one backend
from the pool, and apply the winner as a new version of the prompt."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from workbench.core.backends.base import Backend
from workbench.core.backends.pool import BackendPool
from workbench.core.evaluation import EvalEvent
from workbench.core.library import Library
from workbench.core.models import Prompt, TestSet, VariantSpec
from workbench.core.optimise import (
    OptimiseError,
    OptimiseEvent,
    SearchResult,
    evaluation_scorer,
    optimise,
    provenance,
    sample_rows,
    winner_prompt,
)

PROPOSE_SYSTEM = "You rewrite instructions for a language model. Reply with the instruction only."
PROPOSE_USER = (
    "Rewrite this instruction for the same task in other words. Keep every requirement "
    "(the labels it names and the answer format).\n\nInstruction:\n{instruction}"
)


@dataclass(frozen=True)
class InstructionsProposed:
    """The instruction variants the model proposed, before the search starts (they join
    the user's own alternatives as candidates)."""

    texts: list[str]


def _clean_proposal(text: str, original: str) -> str | None:
    """The proposal as an instruction, or None when it is not one: empty, the original
    again, a fragment, or a ramble many times longer than the original."""
    text = text.strip().strip('"').strip()
    for lead in ("Instruction:", "New instruction:", "Rewritten instruction:"):
        if text.lower().startswith(lead.lower()):
            text = text[len(lead) :].strip()
    if len(text) < 12 or text == original.strip():
        return None
    if len(text) > 4 * max(len(original), 40):
        return None
    return text


def propose_instructions(
    backend: Backend,
    prompt: Prompt,
    count: int,
    seed: int = 0,
    cancel: threading.Event | None = None,
) -> list[str]:
    """Up to `count` rewrites of the prompt's instruction (its system message) by the
    loaded model, sampled with a seed per proposal so a search can be repeated; the
    unusable and repeated ones are dropped. The search then scores each on the
    validation split like any other candidate, so a poor proposal costs only its
    candidates."""
    from workbench.core.models import GenerationParams, Message

    cancel = cancel or threading.Event()
    original = prompt.system or ""
    if count < 1 or not original.strip():
        return []
    messages = [
        Message(role="system", content=PROPOSE_SYSTEM),
        Message(role="user", content=PROPOSE_USER.format(instruction=original.strip())),
    ]
    found: list[str] = []
    for i in range(count):
        if cancel.is_set():
            break
        params = GenerationParams(
            temperature=0.9,
            top_p=0.95,
            max_new_tokens=min(400, 2 * backend.count_tokens(original) + 40),
            stop=["\n\n"],
            seed=seed + i,
        )
        text = _clean_proposal(backend.generate(messages, params).text, original)
        if text is not None and text not in found:
            found.append(text)
    return found


DEFAULT_BUDGET = 32
DEFAULT_MAX_EXAMPLES = 8
NOTE_START = "Optimised on the validation split"  # how `provenance` begins
OPTIMISED = "few-shot (optimised)"  # the winner's name in comparisons and the method table


@dataclass(frozen=True)
class OptimisePlan:
    prompt: Prompt
    test_set: TestSet  # split (train/validation/test)
    budget: int
    seed: int
    max_examples: int
    instructions: list[str]
    mode: str  # "likelihood" or "generate"
    propose: int  # instruction variants to ask the model for before the search
    validation_rows: int
    sample_rows: int
    scorings: int  # candidate × rows scorings planned

    def describe(self) -> str:
        """What the search will cost, before it starts."""
        from workbench.core.flows.report import count

        how = "label likelihood" if self.mode == "likelihood" else "generated answers"
        rows = f"up to {count(self.budget, 'candidate')} on {self.sample_rows} validation rows"
        if self.sample_rows < self.validation_rows:
            rows += f", the best third again on all {self.validation_rows}"
        asked = (
            f"; first the model proposes {count(self.propose, 'instruction')}"
            if self.propose
            else ""
        )
        return (
            f"{rows}: about {count(self.scorings, 'scored case')} ({how}){asked}; the test "
            "split is not used"
        )


def plan_optimisation(
    library: Library | None,
    prompt: Prompt,
    test_set: TestSet,
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    instructions: Sequence[str] = (),
    propose: int = 0,
) -> OptimisePlan:
    """Split the set 50/25/25 if it is not split yet (as Graduate does, saved when it is
    the library's), and count the work."""
    from workbench.core.graduation import ensure_split
    from workbench.core.testsets_io import rows_in_split

    if budget < 1:
        raise OptimiseError("the budget must allow at least one candidate")
    split = ensure_split(library, test_set, seed)
    assert split is not None
    validation = rows_in_split(split, "validation")
    if not validation:
        raise OptimiseError(f"test set {split.name!r} has no rows for a validation split")
    first = sample_rows(validation, seed)
    finalists = 0 if len(first) == len(validation) else 1 + max(1, round((budget - 1) / 3))
    return OptimisePlan(
        prompt=prompt,
        test_set=split,
        budget=budget,
        seed=seed,
        max_examples=max_examples,
        instructions=[t for t in instructions if t.strip()],
        mode="likelihood" if split.labels else "generate",
        propose=max(0, propose),
        validation_rows=len(validation),
        sample_rows=len(first),
        scorings=budget * len(first) + finalists * len(validation),
    )


def run_optimisation(
    plan: OptimisePlan,
    pool: BackendPool,
    cancel: threading.Event | None = None,
    metric: str | None = None,
) -> Iterator[OptimiseEvent | InstructionsProposed]:
    """The search on the prompt's model from the pool (the caller owns the pool)."""
    cancel = cancel or threading.Event()
    backend = pool.get(VariantSpec(name=plan.prompt.name))
    instructions = list(plan.instructions)
    if plan.propose:
        proposed = propose_instructions(backend, plan.prompt, plan.propose, plan.seed, cancel)
        yield InstructionsProposed(proposed)
        instructions += proposed
    scorer = evaluation_scorer(backend, plan.test_set, metric, cancel)
    yield from optimise(
        plan.prompt,
        plan.test_set,
        scorer,
        plan.budget,
        plan.seed,
        plan.max_examples,
        instructions,
        cancel,
    )


def apply_winner(library: Library, prompt: Prompt, result: SearchResult) -> Prompt:
    """Save the winner as the prompt's next version; its description ends with how it
    was found (the version before stays in the history)."""
    winner = winner_prompt(prompt, result)
    kept = [
        p for p in prompt.description.strip().split("\n\n") if p and not p.startswith(NOTE_START)
    ]
    description = "\n\n".join([*kept, provenance(result)])
    return library.save_prompt(
        winner.model_copy(update={"description": description}), note="optimised"
    )


def compare_held_out(
    plan: OptimisePlan,
    result: SearchResult,
    pool: BackendPool,
    cancel: threading.Event | None = None,
    metric: str | None = None,
) -> Iterator[EvalEvent]:
    """The prompt as written against the winner, "few-shot (optimised)", on the held-out
    test split the search never saw (the run is the evaluation's, saved by the caller)."""
    from workbench.core.evaluation import evaluate
    from workbench.core.testsets_io import rows_in_split

    rows = rows_in_split(plan.test_set, "test")
    if not rows:
        raise OptimiseError(f"test set {plan.test_set.name!r} has no test split to compare on")
    variants = [
        (VariantSpec(name="few-shot"), plan.prompt),
        (VariantSpec(name=OPTIMISED), winner_prompt(plan.prompt, result)),
    ]
    metrics = [] if plan.mode == "likelihood" else [metric or "normalised"]
    yield from evaluate(
        variants,
        plan.test_set,
        rows,
        pool.get,
        metrics,
        "likelihood" if plan.mode == "likelihood" else "generate",
        cancel,
        split="test",
        prompt_id=plan.prompt.id,
    )
