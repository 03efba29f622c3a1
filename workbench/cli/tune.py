"""`workbench tune`: graduate a prompt to a soft prompt (prompt tuning), with progress
on stderr (or JSON lines) and the comparison table at the end."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    cancel_on_sigint,
    choices,
    emit_json,
    note,
    open_library,
    settings,
)

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers
    from workbench.core.graduation import GraduationEvent
    from workbench.core.models import TrainConfig

logger = logging.getLogger(__name__)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training options given on the command line, defaults for the rest (the
    Graduate panel's form goes through the same `graduation.train_config`)."""
    from workbench.core.graduation import train_config as config_from

    return config_from(
        {
            "num_virtual_tokens": args.tokens,
            "steps": args.steps,
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "batch_size": args.batch_size,
            "init": args.init,
            "device": args.device,
            "precision": args.precision,
            "seed": args.seed,
            "eval_every": args.eval_every,
            "early_stopping_patience": args.patience,  # 0 = never stop early
            "placement": args.placement,
        }
    )


def print_tune_event(event: GraduationEvent, as_json: bool) -> None:
    """Training progress as it happens: stderr lines, or JSON lines on stdout."""
    from workbench.core.flows.report import format_step, format_validation
    from workbench.core.graduation import ComparisonStarted, SoftPromptSaved
    from workbench.core.tuning import StepEvent, TuningFinished, ValidationEvent

    line: dict[str, Any] | None = None
    text: str | None = None
    if isinstance(event, StepEvent):
        line = {
            "event": "step",
            "step": event.step,
            "loss": event.loss,
            "steps_per_s": event.steps_per_s,
            "eta_s": event.eta_s,
            "memory_mb": event.memory_mb,
        }
        text = format_step(event)
    elif isinstance(event, ValidationEvent):
        line = {
            "event": "validation",
            "step": event.step,
            "loss": event.loss,
            "accuracy": event.accuracy,
            "best": event.best,
        }
        text = format_validation(event)
    elif isinstance(event, TuningFinished):
        text = event.result.message
    elif isinstance(event, SoftPromptSaved):
        saved = event.soft_prompt
        line = {"event": "saved", "soft_prompt": saved.id, "name": saved.name}
        text = f"saved soft prompt {saved.id}: {saved.name}"
    elif isinstance(event, ComparisonStarted):
        text = f"comparing {', '.join(event.variants)} on {event.rows} held-out rows…"
    if as_json and line is not None:
        emit_json(line)
    elif not as_json and text is not None:
        note(text)


def launcher_rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (0 when run directly)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import EvalFinished, format_table
    from workbench.core.graduation import (
        ComparisonFinished,
        SoftPromptSaved,
        describe_plan,
        describe_training_error,
        graduate,
        prepare,
        training_test_set,
    )
    from workbench.core.tuning import TuningFinished

    library = open_library(args)
    prompt = library.find_prompt(args.prompt)
    test_set = training_test_set(library, prompt, args.test_set)
    config = train_config(args)
    spec = ModelCatalog().get(args.model or prompt.model)
    plan = prepare(library, prompt, test_set, config.seed)
    if not args.json:
        note(describe_plan(prompt, spec, plan, config))
    saved = None
    comparison = None
    finished = None
    with cancel_on_sigint() as cancel:
        try:
            for event in graduate(
                library,
                prompt,
                plan.test_set,
                spec,
                config,
                cancel,
                name=args.name,
                compare=not args.no_compare,
                settings=settings(args),
            ):
                print_tune_event(event, args.json)
                if isinstance(event, TuningFinished):
                    finished = event.result
                elif isinstance(event, SoftPromptSaved):
                    saved = event.soft_prompt
                elif isinstance(event, ComparisonFinished | EvalFinished):
                    comparison = event.run
        except BrokenPipeError:
            raise  # the reader of stdout left (`| head`): main ends quietly
        except Exception as exc:  # the panel's wording: what failed and what to change
            logger.error("training %r on %s failed", prompt.name, spec.name, exc_info=True)
            note(f"error: {describe_training_error(exc)}")
            return EXIT_FAILED
    if comparison is not None:
        if args.json:
            emit_json(
                {
                    "event": "comparison",
                    "mode": comparison.mode,
                    "summaries": [s.model_dump() for s in comparison.summaries],
                }
            )
        else:
            print(format_table(comparison))
    if finished is not None and finished.reason == "nan":
        note(f"error: {finished.message}")
        return 1
    if finished is not None and finished.reason == "cancelled":
        return EXIT_INTERRUPTED
    if saved is None and finished is not None and finished.steps and launcher_rank() > 0:
        return 0  # under `accelerate launch`, the main process saves and compares
    return 0 if saved is not None else 1


def register(sub: Subparsers) -> None:
    from workbench.core.models import Device, InitMode, Precision, SoftPromptPlacement

    tune = sub.add_parser("tune", help="graduate a prompt to a soft prompt (prompt tuning)")
    tune.add_argument("prompt", metavar="PROMPT", help="name or id in the library")
    tune.add_argument(
        "--test-set",
        metavar="NAME|FILE",
        help="training/validation/held-out data (default: the prompt's first)",
    )
    tune.add_argument("--tokens", type=int, help="virtual tokens (default 20)")
    length = tune.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps (default 225)")
    length.add_argument(
        "--epochs", type=float, help="passes over the training data (instead of --steps)"
    )
    tune.add_argument("--lr", type=float, help="learning rate (default 0.03)")
    tune.add_argument("--batch-size", type=int, help="examples per step (default 8)")
    tune.add_argument(
        "--init",
        choices=choices(InitMode),
        help="initialise from the prompt's text (default), sampled vocabulary, or random",
    )
    tune.add_argument(
        "--placement",
        choices=choices(SoftPromptPlacement),
        help="where the virtual tokens go: instead of the system message (replace, the "
        "default), after it (add), or before the whole prompt (start)",
    )
    tune.add_argument("--eval-every", type=int, help="steps between validations (default 25)")
    tune.add_argument(
        "--patience", type=int, help="validations without improvement before stopping (0 = never)"
    )
    tune.add_argument("--device", choices=choices(Device))
    tune.add_argument("--precision", choices=choices(Precision))
    tune.add_argument("--seed", type=int)
    tune.add_argument("--model", metavar="M", help="base model (default: the embedded one)")
    tune.add_argument("--name", help="name of the soft prompt in the library")
    tune.add_argument(
        "--no-compare", action="store_true", help="skip the zero-shot / few-shot / soft comparison"
    )
    tune.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    tune.add_argument("--json", action="store_true", help="one JSON object per event")
    tune.set_defaults(func=cmd_tune)
