"""`workbench optimise`: search the few-shot examples (and instructions) of a prompt on
its test set's validation split, compare the winner with the prompt on the held-out
split, and optionally save it as the prompt's next version."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from workbench.cli.common import (
    EXIT_INTERRUPTED,
    add_runtime_options,
    cancel_on_sigint,
    emit_json,
    note,
    open_library,
    settings,
)

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_optimise(args: argparse.Namespace) -> int:
    from workbench.core.analysis import analyse, format_analysis
    from workbench.core.backends.pool import BackendPool
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import EvalFinished, format_table
    from workbench.core.flows.lookup import resolve_test_set
    from workbench.core.flows.optimise import (
        InstructionsProposed,
        apply_winner,
        compare_held_out,
        plan_optimisation,
        run_optimisation,
    )
    from workbench.core.flows.report import count, format_duration, format_progress
    from workbench.core.optimise import CandidateScored, SearchFinished

    library = open_library(args)
    prompt = library.find_prompt(args.prompt)
    test_set = resolve_test_set(library, prompt, args.test_set)
    plan = plan_optimisation(
        library,
        prompt,
        test_set,
        args.budget,
        args.seed,
        args.max_examples,
        args.instruction,
        propose=args.propose,
    )
    if not args.json:
        note(f"optimising {prompt.name!r} on {plan.test_set.name}: {plan.describe()}")
    progress = not args.json and sys.stderr.isatty()
    catalog = ModelCatalog()
    result = None
    comparison = None
    with (
        BackendPool(
            catalog, settings(args), catalog.get(args.model or prompt.model), args.backend
        ) as pool,
        cancel_on_sigint() as cancel,
    ):
        for event in run_optimisation(plan, pool, cancel, args.metric):
            if isinstance(event, InstructionsProposed):
                if args.json:
                    emit_json({"event": "proposed", "instructions": event.texts})
                else:
                    note(f"the model proposed {count(len(event.texts), 'instruction')}:")
                    for text in event.texts:
                        note(f"  - {text}")
            elif isinstance(event, CandidateScored):
                if args.json:
                    emit_json(
                        {
                            "event": "candidate",
                            "index": event.index,
                            "total": event.total,
                            "rung": event.rung,
                            "rows": event.rows,
                            "score": event.score,
                            "examples": list(event.candidate.examples),
                            "style": event.candidate.style.value,
                            "instruction": event.candidate.instruction,
                        }
                    )
                elif progress:
                    line = format_progress(event.index, event.total, event.eta_s)
                    note(f"\r{line} · best {event.best_score * 100:.1f} %   ", end="")
            elif isinstance(event, SearchFinished):
                result = event.result
        if result is not None and result.complete and not args.no_compare:
            for step in compare_held_out(plan, result, pool, cancel, args.metric):
                if isinstance(step, EvalFinished):
                    comparison = step.run
    assert result is not None
    best, score = result.best
    saved = None
    if args.apply and result.complete:
        saved = apply_winner(library, prompt, result)
    if comparison is not None:
        library.save_eval_run(comparison)
    if args.json:
        emit_json(
            {
                "event": "result",
                "complete": result.complete,
                "candidates": len(result.sample_scores),
                "seconds": result.seconds,
                "best": {
                    "score": score,
                    "examples": [result.space.pool[i].model_dump() for i in best.examples],
                    "style": best.style.value,
                    "instruction": result.space.instructions[best.instruction],
                },
                "current_score": result.current_score,
                "spread": result.spread,
                "spread_sd": result.spread_sd,
                "saved_version": saved.version if saved else None,
                "held_out": [s.model_dump() for s in comparison.summaries] if comparison else None,
            }
        )
    else:
        if progress:
            note()
        current = f"{result.current_score * 100:.1f} %" if result.current_score is not None else "–"
        print(
            f"{len(result.sample_scores)} candidates in {format_duration(result.seconds)}; "
            f"validation: best {score * 100:.1f} % ({best.describe(result.space)}), the "
            f"prompt as written {current}; spread {result.spread * 100:.1f} points "
            f"(sd {result.spread_sd * 100:.1f})"
        )
        if comparison is not None:
            print(f"held-out test split ({len(comparison.results[0])} rows):")
            print(format_table(comparison))
            print(format_analysis(analyse(comparison, plan.test_set)))
        if saved is not None:
            print(f"saved as version {saved.version} of {saved.name!r}")
        elif result.complete:
            note("not saved: add --apply to keep the winner as the prompt's next version")
    return 0 if result.complete else EXIT_INTERRUPTED


def register(sub: Subparsers) -> None:
    from workbench.core.evaluation import TEXT_METRICS
    from workbench.core.flows.optimise import DEFAULT_BUDGET, DEFAULT_MAX_EXAMPLES

    op = sub.add_parser(
        "optimise",
        help="search the few-shot examples of a prompt on its validation split",
    )
    op.add_argument("prompt", metavar="PROMPT", help="name or id in the library")
    op.add_argument("--test-set", metavar="NAME|FILE", help="default: the prompt's first test set")
    op.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"candidate prompts to try (default {DEFAULT_BUDGET})",
    )
    op.add_argument(
        "--max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        help=f"most examples in a candidate (default {DEFAULT_MAX_EXAMPLES})",
    )
    op.add_argument(
        "--instruction",
        action="append",
        default=[],
        metavar="TEXT",
        help="an alternative system message to try (repeat for more)",
    )
    op.add_argument(
        "--propose",
        type=int,
        default=0,
        metavar="N",
        help="also ask the model for N rewrites of the instruction and try them (default 0)",
    )
    op.add_argument(
        "--metric",
        choices=list(TEXT_METRICS),
        help="what to optimise for test sets without a label set (default normalised)",
    )
    op.add_argument("--seed", type=int, default=0)
    op.add_argument("--model", metavar="M")
    op.add_argument("--backend", choices=["llama.cpp", "transformers"])
    op.add_argument("--apply", action="store_true", help="save the winner as a new version")
    op.add_argument(
        "--no-compare", action="store_true", help="skip the held-out comparison at the end"
    )
    add_runtime_options(op)
    op.add_argument("--json", action="store_true", help="one JSON object per candidate")
    op.set_defaults(func=cmd_optimise)
