"""`workbench tune`: graduate a prompt to a soft prompt (prompt tuning; the comparison
table at the end) or, with `--method lora`, to a LoRA adapter, with progress on stderr
(or JSON lines)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliError,
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
    from workbench.core.lora import LoraGraduationEvent
    from workbench.core.models import EvalRun, LoraSettings, TrainConfig

logger = logging.getLogger(__name__)


_SOFT_ONLY = (("tokens", "--tokens"), ("init", "--init"), ("placement", "--placement"))
_LORA_ONLY = (
    ("rank", "--rank"),
    ("alpha", "--alpha"),
    ("dropout", "--dropout"),
    ("target_modules", "--target-modules"),
)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training options given on the command line, defaults for the rest (the
    Graduate panel's form goes through the same `graduation.train_config`; a LoRA run's
    learning rate defaults to LoRA's)."""
    from workbench.core.graduation import train_config as config_from
    from workbench.core.lora import lora_train_config

    method = getattr(args, "method", "soft")
    wrong = _LORA_ONLY if method == "soft" else _SOFT_ONLY
    given = [flag for field, flag in wrong if getattr(args, field, None) is not None]
    if given:
        other = "lora" if method == "soft" else "soft"
        raise CliError(f"{', '.join(given)} only apply to --method {other}")
    options = {
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
    return lora_train_config(options) if method == "lora" else config_from(options)


def lora_settings(args: argparse.Namespace) -> LoraSettings:
    """The LoRA options given on the command line, defaults for the rest."""
    from workbench.core.lora import lora_settings as settings_from

    targets = None
    if args.target_modules is not None:
        targets = [name.strip() for name in args.target_modules.split(",") if name.strip()]
    return settings_from(
        {"rank": args.rank, "alpha": args.alpha, "dropout": args.dropout, "target_modules": targets}
    )


def print_tune_event(event: GraduationEvent | LoraGraduationEvent, as_json: bool) -> None:
    """Training progress as it happens: stderr lines, or JSON lines on stdout."""
    from workbench.core.flows.report import format_step, format_validation
    from workbench.core.graduation import ComparisonStarted, SoftPromptSaved
    from workbench.core.lora import LoraAdapterSaved, LoraFinished
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
    elif isinstance(event, TuningFinished | LoraFinished):
        text = event.result.message
    if line is not None and line["event"] in ("step", "validation") and launcher_world() > 1:
        line["process"] = launcher_rank()  # under `accelerate launch`: whose slice it was
    elif isinstance(event, LoraAdapterSaved):
        adapter = event.adapter
        line = {"event": "saved", "adapter": adapter.id, "name": adapter.name}
        text = f"saved LoRA adapter {adapter.id}: {adapter.name}"
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


def print_comparison(comparison: EvalRun | None, as_json: bool) -> None:
    """The held-out comparison a graduation ended with (hard prompt vs what was trained),
    the same for a soft prompt and a LoRA adapter: a table on stdout, or one JSON line."""
    from workbench.core.evaluation import format_table

    if comparison is None:
        return
    if as_json:
        emit_json(
            {
                "event": "comparison",
                "mode": comparison.mode,
                "summaries": [s.model_dump() for s in comparison.summaries],
            }
        )
    else:
        print(format_table(comparison))


def launcher_world() -> int:
    """How many processes `accelerate launch` / torchrun started (1 when run directly)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def launcher_rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (0 when run directly)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import EvalFinished
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
    if args.method == "lora":
        return tune_lora(args, library, prompt, test_set, config)
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
    print_comparison(comparison, args.json)
    if finished is not None and finished.reason == "nan":
        note(f"error: {finished.message}")
        return 1
    if finished is not None and finished.reason == "cancelled":
        return EXIT_INTERRUPTED
    if saved is None and finished is not None and finished.steps and launcher_rank() > 0:
        return 0  # under `accelerate launch`, the main process saves and compares
    return 0 if saved is not None else 1


def tune_lora(
    args: argparse.Namespace, library: Any, prompt: Any, test_set: Any, config: TrainConfig
) -> int:
    """`workbench tune --method lora`: train a LoRA adapter, save it in the library and
    compare it with the hard prompt on the held-out rows (as `--method soft` does)."""
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import EvalFinished
    from workbench.core.graduation import ComparisonFinished, describe_training_error, prepare
    from workbench.core.lora import (
        LoraAdapterSaved,
        LoraFinished,
        LoraResult,
        describe_lora_plan,
        graduate_lora,
    )
    from workbench.core.models import LoraAdapter

    lora = lora_settings(args)
    spec = ModelCatalog().get(args.model or prompt.model)
    plan = prepare(library, prompt, test_set, config.seed)
    if not args.json:
        note(describe_lora_plan(prompt, spec, plan, config, lora))
    saved: LoraAdapter | None = None
    finished: LoraResult | None = None
    comparison: EvalRun | None = None
    with cancel_on_sigint() as cancel:
        try:
            for event in graduate_lora(
                library,
                prompt,
                plan.test_set,
                spec,
                config,
                lora,
                cancel,
                name=args.name,
                backend_settings=settings(args),
                compare=not args.no_compare,
            ):
                print_tune_event(event, args.json)
                if isinstance(event, LoraFinished):
                    finished = event.result
                elif isinstance(event, LoraAdapterSaved):
                    saved = event.adapter
                elif isinstance(event, ComparisonFinished | EvalFinished):
                    comparison = event.run
        except BrokenPipeError:
            raise
        except Exception as exc:
            logger.error("LoRA training %r on %s failed", prompt.name, spec.name, exc_info=True)
            note(f"error: {describe_training_error(exc, 'lora')}")
            return EXIT_FAILED
    print_comparison(comparison, args.json)
    if finished is not None and finished.reason == "nan":
        note(f"error: {finished.message}")
        return 1
    if finished is not None and finished.reason == "cancelled":
        return EXIT_INTERRUPTED
    if saved is None and finished is not None and finished.steps and launcher_rank() > 0:
        return 0  # under `accelerate launch`, the main process saves and compares
    return 0 if saved is not None else 1


def register(sub: Subparsers) -> None:
    from workbench.core.lora import LORA_LEARNING_RATE
    from workbench.core.models import (
        Device,
        InitMode,
        LoraSettings,
        Precision,
        SoftPromptPlacement,
        TrainConfig,
        TuneMethod,
    )

    tune = sub.add_parser(
        "tune", help="graduate a prompt to a soft prompt (prompt tuning) or a LoRA adapter"
    )
    tune.add_argument("prompt", metavar="PROMPT", help="name or id in the library")
    tune.add_argument(
        "--method",
        choices=choices(TuneMethod),
        default="soft",
        help="soft: a soft prompt, the model frozen (the default); lora: a LoRA adapter",
    )
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
    soft_lr = TrainConfig.model_fields["learning_rate"].default
    tune.add_argument(
        "--lr",
        type=float,
        help=f"learning rate (default {soft_lr:g} for a soft prompt, {LORA_LEARNING_RATE:g} "
        "for LoRA)",
    )
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
    lora = LoraSettings()
    tune.add_argument("--rank", type=int, help=f"LoRA: rank of each update (default {lora.rank})")
    tune.add_argument("--alpha", type=float, help=f"LoRA: scaling alpha (default {lora.alpha:g})")
    tune.add_argument(
        "--dropout", type=float, help=f"LoRA: dropout on the adapter (default {lora.dropout:g})"
    )
    tune.add_argument(
        "--target-modules",
        metavar="NAMES",
        help="LoRA: comma-separated linear layer names (default: found from the model, "
        "the attention's query and value projections)",
    )
    tune.add_argument("--eval-every", type=int, help="steps between validations (default 25)")
    tune.add_argument(
        "--patience", type=int, help="validations without improvement before stopping (0 = never)"
    )
    tune.add_argument("--device", choices=choices(Device))
    tune.add_argument("--precision", choices=choices(Precision))
    tune.add_argument("--seed", type=int)
    tune.add_argument("--model", metavar="M", help="base model (default: the embedded one)")
    tune.add_argument("--name", help="name of the soft prompt (or adapter) in the library")
    tune.add_argument(
        "--no-compare",
        action="store_true",
        help="skip the held-out comparison (zero-shot / few-shot / soft prompt or LoRA)",
    )
    tune.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    tune.add_argument("--json", action="store_true", help="one JSON object per event")
    tune.set_defaults(func=cmd_tune)
