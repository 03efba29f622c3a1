"""`workbench compare`: the method table of a prompt — zero-shot, few-shot, the optimised
few-shot version, chain of thought, soft prompt and LoRA on the held-out test split —
planned, run and exported by the core's `flows/methods.py`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliError,
    add_runtime_options,
    cancel_on_sigint,
    choices,
    emit_json,
    note,
    open_library,
    settings,
)

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers

logger = logging.getLogger(__name__)


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.core.backends.pool import BackendPool
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import CaseDone, Progress
    from workbench.core.flows.methods import (
        MethodsFinished,
        export_format,
        export_table,
        format_table,
        held_out_test_set,
        plan_methods,
        run_methods,
    )
    from workbench.core.flows.report import format_progress

    if args.export:
        export_format(args.export)  # a bad name fails now, before anything runs
    library = open_library(args)
    prompt = library.find_prompt(args.prompt)
    test_set = held_out_test_set(library, prompt, args.test_set)
    plan = plan_methods(library, prompt, test_set, args.methods, args.limit)
    catalog = ModelCatalog()
    spec = catalog.get(args.model or prompt.model)
    with cancel_on_sigint() as cancel:
        if args.train_missing and plan.missing:
            status = _train_missing(args, library, plan, spec, cancel)
            if status:
                return status
            plan = plan_methods(library, prompt, test_set, args.methods, args.limit)
        if not plan.runnable:
            raise CliError("nothing to compare: every method asked for is missing")
        if not args.json:
            note(plan.describe())
        progress = not args.json and sys.stderr.isatty()
        finished = None
        with BackendPool(catalog, settings(args), spec, args.backend) as pool:
            for event in run_methods(library, plan, pool, cancel):
                if isinstance(event, MethodsFinished):
                    finished = event
                elif isinstance(event, CaseDone) and args.json:
                    method = plan.runnable[event.variant].label
                    emit_json({"event": "case", "method": method, **event.result.model_dump()})
                elif isinstance(event, Progress) and progress:
                    note(f"\r{format_progress(event.done, event.total, event.eta_s)}   ", end="")
        if progress:
            note()
    assert finished is not None
    table, run = finished.table, finished.run
    if run.variants:
        library.save_eval_run(run)
    if args.export:
        note(f"wrote {export_table(table, args.export)}")
    if args.json:
        emit_json({"event": "table", "run": run.id if run.variants else None, **table.to_dict()})
    else:
        print(format_table(table))
    return 0 if table.complete else EXIT_INTERRUPTED


def _train_missing(
    args: argparse.Namespace, library: Any, plan: Any, spec: Any, cancel: Any
) -> int:
    """Train what is missing (graduation's defaults); 0 when it went well."""
    from workbench.cli.tune import print_tune_event
    from workbench.core.flows.methods import TrainingDone, TrainingStarted, train_methods
    from workbench.core.flows.report import format_duration
    from workbench.core.graduation import describe_training_error

    training = "soft"  # the method being trained: a failure is told in its terms
    try:
        options = {"steps": args.steps} if args.steps else None
        events = train_methods(
            library, plan, spec, cancel=cancel, settings=settings(args), options=options
        )
        for event in events:
            if isinstance(event, TrainingStarted):
                training = event.key
                if args.json:
                    emit_json({"event": "training", "method": event.label})
                else:
                    note(f"training the missing {event.label} with the default settings…")
            elif isinstance(event, TrainingDone):
                if args.json:
                    emit_json(
                        {
                            "event": "trained",
                            "method": event.key,
                            "id": event.item.id if event.item else None,
                            "seconds": event.seconds,
                        }
                    )
                elif event.item is not None:
                    note(f"trained {event.item.name} in {format_duration(event.seconds)}")
            else:
                print_tune_event(event, args.json)
    except BrokenPipeError:
        raise
    except Exception as exc:
        logger.error("training for the method table failed", exc_info=True)
        note(f"error: {describe_training_error(exc, training)}")
        return EXIT_FAILED
    return EXIT_INTERRUPTED if cancel.is_set() else 0


def register(sub: Subparsers) -> None:
    from workbench.core.flows.methods import METHOD_KEYS
    from workbench.core.models import BackendName

    cmp = sub.add_parser(
        "compare",
        help="the method table: every method on the prompt's held-out split, with its costs",
    )
    cmp.add_argument("prompt", metavar="PROMPT", help="name or id in the library")
    cmp.add_argument(
        "--methods",
        metavar="LIST",
        help=f"comma-separated, of {', '.join(METHOD_KEYS)} (default: all)",
    )
    cmp.add_argument(
        "--test-set",
        metavar="NAME|FILE",
        help="default: the prompt's first test set (its test split is held out)",
    )
    cmp.add_argument(
        "--train-missing",
        action="store_true",
        help="first train a missing soft prompt and LoRA adapter with the default settings",
    )
    cmp.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training steps for --train-missing (default: the Graduate tab's)",
    )
    cmp.add_argument("--limit", type=int, help="only the first N held-out rows")
    cmp.add_argument("--model", metavar="M")
    cmp.add_argument("--backend", choices=choices(BackendName))
    cmp.add_argument("--export", metavar="FILE", help="also write the table (.csv, .json or .md)")
    add_runtime_options(cmp)
    cmp.add_argument("--json", action="store_true", help="JSON lines: each case, then the table")
    cmp.set_defaults(func=cmd_compare)
