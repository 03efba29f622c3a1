"""The command line: the GUI launcher and the headless subcommands (see DESIGN.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench import __version__


class CliError(Exception):
    """An error to print as one clean line on stderr (exit status 2)."""


def _library(args: argparse.Namespace):  # -> Library (lazy import keeps --help fast)
    from workbench.core.library import Library, default_library_dir

    root = Path(args.library) if args.library else default_library_dir()
    library = Library(root)
    for problem in library.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return library


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--var expects NAME=VALUE, got {pair!r}")
        values[name] = value
    return values


def _resolve_prompt(args: argparse.Namespace):  # -> Prompt
    """PROMPT is a prompt's name or id in the library, or a path to a prompt file."""
    from workbench.core.library import read_document
    from workbench.core.models import Prompt

    ref = args.prompt
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        document = read_document(path)
        if not isinstance(document, Prompt):
            raise CliError(f"{path} holds a {document.kind}, not a prompt")
        return document
    return _library(args).find_prompt(ref)


# -- subcommands -------------------------------------------------------------


def cmd_gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    return run_app(
        library_dir=Path(args.library) if args.library else None,
        smoke_test=getattr(args, "smoke_test", False),  # absent when `gui` is implied
    )


def cmd_render(args: argparse.Namespace) -> int:
    from workbench.core.templates import prompt_variables, render_preview, resolve_values

    prompt = _resolve_prompt(args)
    values = _parse_vars(args.var)
    merged = resolve_values(prompt, values)
    missing = [name for name in prompt_variables(prompt) if name not in merged]
    if missing:
        raise CliError(
            f"prompt {prompt.name!r} needs values for: {', '.join(missing)} (pass --var NAME=VALUE)"
        )
    steps = render_preview(prompt, values)
    if args.json:
        for step in steps:
            print(
                json.dumps(
                    {"step": step.name or None, "messages": [m.model_dump() for m in step.messages]}
                )
            )
        return 0
    for step in steps:
        if step.name:
            print(f"=== step: {step.name} ===")
        for message in step.messages:
            print(f"--- {message.role} ---")
            print(message.content)
    return 0


def cmd_library_list(args: argparse.Namespace) -> int:
    library = _library(args)
    prompts = library.search(args.search or "", args.tag or [])
    if args.json:
        for p in prompts:
            print(json.dumps({"id": p.id, "name": p.name, "version": p.version, "tags": p.tags}))
        return 0
    if not prompts:
        print("(no prompts)" if library.is_empty() else "(no prompt matches)")
        return 0
    width = max(len(p.name) for p in prompts)
    for p in prompts:
        tags = f"  [{', '.join(p.tags)}]" if p.tags else ""
        print(f"{p.id}  {p.name:<{width}}  v{p.version}{tags}")
    return 0


def cmd_library_show(args: argparse.Namespace) -> int:
    prompt = _resolve_prompt(args)
    print(prompt.model_dump_json(indent=2))
    return 0


def cmd_library_history(args: argparse.Namespace) -> int:
    library = _library(args)
    prompt = library.find_prompt(args.prompt)
    if args.diff is not None:
        print(library.diff(prompt.id, args.diff) or "(no differences)")
        return 0
    for version in library.history(prompt.id):
        marker = "  (current)" if version.version == prompt.version else ""
        print(f"v{version.version}  {version.updated.isoformat()}  {version.name}{marker}")
    return 0


def cmd_library_seed(args: argparse.Namespace) -> int:
    from workbench.core.library import seed_library
    from workbench.core.resources import resource_path

    library = _library(args)
    added = seed_library(library, resource_path("sample_library"))
    if added:
        print(f"added to {library.root}: " + ", ".join(added))
    else:
        print(f"the sample library is already in {library.root}")
    return 0


def cmd_library_export(args: argparse.Namespace) -> int:
    from workbench.core import exchange

    library = _library(args)
    fmt = args.format or exchange.guess_format(Path(args.out))
    ids = [library.find_prompt(ref).id for ref in args.prompts] if args.prompts else None
    report = exchange.export(library, fmt, Path(args.out), ids)
    for path in report.paths:
        print(f"wrote {path}")
    if report.losses and not exchange.format_module(fmt).LOSSLESS:
        print(f"{exchange.format_module(fmt).LABEL} does not carry:", file=sys.stderr)
        for loss in report.losses:
            print(f"  - {loss}", file=sys.stderr)
    return 0


def cmd_library_import(args: argparse.Namespace) -> int:
    from workbench.core import exchange

    library = _library(args)
    plan = exchange.plan_file(
        library, Path(args.file), args.format, exchange.Resolution(args.on_clash)
    )
    for line in plan.preview():
        print(line)
    for note in plan.notes:
        print(f"not imported: {note}", file=sys.stderr)
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    result = plan.apply()
    print(f"imported into {library.root}: {result.summary()}")
    return 0


def cmd_library_schema(args: argparse.Namespace) -> int:
    from workbench.core.exchange.bundle import bundle_schema
    from workbench.core.fsutil import atomic_write_bytes

    text = json.dumps(bundle_schema(), indent=2, sort_keys=True) + "\n"
    if args.out:
        atomic_write_bytes(Path(args.out), text.encode())
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


# -- models and generation -----------------------------------------------------


def _settings(args: argparse.Namespace):  # -> BackendSettings
    """The saved settings (the app's Threads box), with this command's flags on top."""
    import dataclasses

    from workbench.core.backends.base import load_settings

    kwargs = {}
    if getattr(args, "threads", None):
        kwargs["threads"] = args.threads
    if getattr(args, "n_ctx", None):
        kwargs["n_ctx"] = args.n_ctx
    if getattr(args, "device", None):
        kwargs["device"] = args.device
    return dataclasses.replace(load_settings(), **kwargs)


def cmd_models(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog, backends_for

    catalog = ModelCatalog()
    for problem in catalog.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for spec in catalog.all():
        where = spec.url if spec.source == "openai" else spec.path or "(not installed)"
        if args.json:
            print(
                json.dumps(
                    {
                        "id": spec.id,
                        "name": spec.name,
                        "source": spec.source,
                        "location": where,
                        "backends": backends_for(spec),
                        "embedded": spec.embedded,
                    }
                )
            )
        else:
            default = "  [default]" if spec.embedded else ""
            print(
                f"{spec.id}  {spec.name}  ({spec.source}: {', '.join(backends_for(spec))})"
                f"{default}\n    {where}"
            )
    return 0


def cmd_models_add(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog, spec_for

    spec = spec_for(
        args.location,
        name=args.name,
        backend=args.backend,
        allow_pickle=args.allow_pickle,
        remote_model=args.remote_model,
        api_key_env=args.api_key_env,
    )
    added = ModelCatalog().add(spec)
    print(f"added {added.id}: {added.name}")
    return 0


def cmd_models_remove(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog

    removed = ModelCatalog().remove(args.model)
    print(f"removed {removed.id}")
    return 0


def _params(args: argparse.Namespace, base):  # -> GenerationParams
    update = {}
    for flag, field in (
        ("max_tokens", "max_new_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("seed", "seed"),
        ("repetition_penalty", "repetition_penalty"),
    ):
        value = getattr(args, flag)
        if value is not None:
            update[field] = value
    if args.stop:
        update["stop"] = args.stop
    if args.logprobs is not None:
        update["logprobs"] = True
        update["top_logprobs"] = args.logprobs
    if args.grammar:
        update["grammar"] = Path(args.grammar).read_text("utf-8")
    if args.json_schema:
        try:
            update["json_schema"] = json.loads(Path(args.json_schema).read_text("utf-8"))
        except ValueError as exc:
            raise CliError(f"{args.json_schema}: not valid JSON ({exc})") from None
    from workbench.core.models import GenerationParams, validate_as

    return validate_as(GenerationParams, {**base.model_dump(), **update}, "generation parameters")


def _print_stats(stats, model: str) -> None:
    parts = [model]
    if stats.time_to_first_token_s is not None:
        parts.append(f"first token {stats.time_to_first_token_s * 1000:.0f} ms")
    if stats.tokens_per_s is not None:
        parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
    if stats.prompt_tokens is not None:
        parts.append(f"{stats.prompt_tokens} prompt tokens")
    parts.append(f"{stats.completion_tokens} generated")
    parts.append(f"finish: {stats.finish_reason}")
    print(" · ".join(parts), file=sys.stderr)


def _print_event(event, as_json: bool) -> None:
    from workbench.core.backends.base import TokenEvent
    from workbench.core.running import StepFinished, StepStarted

    if isinstance(event, StepStarted):
        if event.name and not as_json:
            print(f"=== step: {event.name} ===", file=sys.stderr, flush=True)
    elif isinstance(event, TokenEvent):
        if as_json:
            top = [list(t) for t in event.top] if event.top else None
            line = {
                "event": "token",
                "text": event.text,
                "token_id": event.token_id,
                "logprob": event.logprob,
                "top": top,
            }
            print(json.dumps(line), flush=True)
        else:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    elif isinstance(event, StepFinished):
        if as_json:
            print(
                json.dumps(
                    {
                        "event": "done",
                        "step": event.name or None,
                        "text": event.result.text,
                        "stats": event.result.stats.model_dump(),
                    }
                ),
                flush=True,
            )
        else:
            print(flush=True)


def _soft_prompt(args: argparse.Namespace, library, backend):  # -> (SoftPrompt, array) | Nones
    """The --soft NAME soft prompt, checked against the loaded model."""
    if not getattr(args, "soft", None):
        return None, None
    if getattr(args, "soft", None) and library is None:
        raise CliError("--soft needs the library the soft prompt is in")
    from workbench.core.softprompt import check_compatible, load_soft_prompt_tensor

    matches = [s for s in library.soft_prompts.values() if args.soft in (s.id, s.name)]
    if len(matches) != 1:
        known = ", ".join(f"{s.id} ({s.name})" for s in library.soft_prompts.values()) or "none"
        raise CliError(f"no single soft prompt {args.soft!r} in the library (known: {known})")
    meta = matches[0]
    tensor = load_soft_prompt_tensor(library.soft_prompt_tensor_path(meta))
    check_compatible(meta, backend, tensor)
    return meta, tensor


def cmd_generate(args: argparse.Namespace) -> int:
    import signal
    import threading

    from workbench.core.backends.base import Finished
    from workbench.core.backends.registry import ModelCatalog, load_backend
    from workbench.core.models import GenerationParams, Message, Prompt
    from workbench.core.running import RunFinished, StepFinished, missing_variables, run_prompt

    if (args.prompt is None) == (args.text is None):
        raise CliError("give either a PROMPT or --text TEXT")
    prompt: Prompt | None = None
    library = None
    values = _parse_vars(args.var)
    if args.prompt is not None:
        prompt = _resolve_prompt(args)
        if not Path(args.prompt).is_file():
            library = _library(args)
        missing = missing_variables(prompt, values)
        if missing:
            raise CliError(
                f"prompt {prompt.name!r} needs values for: {', '.join(missing)} "
                "(pass --var NAME=VALUE)"
            )
    params = _params(args, prompt.params if prompt else GenerationParams())
    spec = ModelCatalog().get(args.model or (prompt.model if prompt else None))
    backend = load_backend(spec, args.backend, _settings(args))

    cancel = threading.Event()

    def on_interrupt(signum, frame):  # first Ctrl-C stops cleanly, a second one aborts
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    try:
        soft_meta, soft = _soft_prompt(args, library or _library(args), backend)
    except BaseException:
        backend.close()
        raise
    previous = signal.signal(signal.SIGINT, on_interrupt)
    final = None
    record = None
    try:
        if prompt is not None:
            events = run_prompt(
                backend,
                prompt,
                values,
                params,
                cancel,
                model_id=spec.id,
                soft_prompt=soft,
                soft_prompt_id=soft_meta.id if soft_meta else None,
            )
        else:
            target = args.text if args.raw else [Message(role="user", content=args.text)]
            stream = (
                backend.stream(target, params, cancel)
                if soft is None
                else backend.stream(target, params, cancel, soft_prompt=soft)
            )
            events = (StepFinished("", e) if isinstance(e, Finished) else e for e in stream)
        for event in events:
            if isinstance(event, RunFinished):
                record = event.record
                continue
            if isinstance(event, StepFinished):
                final = event.result
            _print_event(event, args.json)
    finally:
        signal.signal(signal.SIGINT, previous)
        backend.close()
    if final is None:
        return 1
    if not args.json:
        _print_stats(record.stats if record else final.stats, backend.description)
    if record is not None and library is not None and not args.no_save:
        library.save_run(record)
    return 130 if final.stats.finish_reason == "cancelled" else 0


# -- evaluation ----------------------------------------------------------------


def _parse_variant(text: str):  # -> (VariantSpec, soft prompt name or id | None)
    """NAME[:key=value,...] with keys prompt, version, model, backend, few_shot, cot, soft
    (a soft prompt's name or id, resolved against the library later)."""
    from workbench.core.models import VariantSpec, validate_as

    name, _, rest = text.partition(":")
    fields: dict[str, object] = {"name": name.strip()}
    keys = {
        "prompt": "prompt_id",
        "version": "prompt_version",
        "model": "model",
        "backend": "backend",
        "few_shot": "few_shot_count",
        "cot": "cot_mode",
        "soft": "soft",
    }
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in keys:
            raise CliError(f"--variant {text!r}: expected key=value with keys {', '.join(keys)}")
        fields[keys[key]] = value.replace("-", "_") if key == "cot" else value
    soft = fields.pop("soft", None)
    return validate_as(VariantSpec, fields, f"--variant {text!r}"), soft


def _load_test_set(args: argparse.Namespace, library, prompt):  # -> TestSet
    from workbench.core.library import read_document
    from workbench.core.models import TestSet
    from workbench.core.testsets_io import parse_test_set_csv, parse_test_set_jsonl

    ref = args.test_set
    if ref is None:
        found = library.test_sets_for(prompt.id) if library else []
        if not found:
            raise CliError(f"prompt {prompt.name!r} has no test set; pass --test-set FILE")
        return found[0]
    path = Path(ref)
    if path.is_file():
        text = path.read_text("utf-8")
        if path.suffix == ".csv":
            return TestSet(name=path.stem, rows=parse_test_set_csv(text, str(path)))
        if path.suffix == ".jsonl":
            return TestSet(name=path.stem, rows=parse_test_set_jsonl(text, str(path)))
        document = read_document(path)
        if not isinstance(document, TestSet):
            raise CliError(f"{path} holds a {document.kind}, not a test set")
        return document
    if library is not None:
        for test_set in library.test_sets.values():
            if ref in (test_set.id, test_set.name):
                return test_set
    raise CliError(f"no test set {ref!r} (give its name, id, or a .csv/.jsonl/.json file)")


def cmd_eval(args: argparse.Namespace) -> int:
    import signal
    import threading

    from workbench.core.backends.registry import ModelCatalog, load_backend
    from workbench.core.evaluation import (
        CaseDone,
        EvalFinished,
        Progress,
        check_thresholds,
        evaluate,
        export_csv,
        export_json,
        format_table,
    )
    from workbench.core.fsutil import atomic_write_text
    from workbench.core.models import VariantSpec
    from workbench.core.testsets_io import rows_in_split

    prompt = _resolve_prompt(args)
    library = None if Path(args.prompt).is_file() else _library(args)
    test_set = _load_test_set(args, library, prompt)
    if args.labels:
        test_set = test_set.model_copy(
            update={"labels": [x.strip() for x in args.labels.split(",")]}
        )
    has_splits = any(r.split for r in test_set.rows)
    split = args.split or ("test" if has_splits else "all")
    rows = rows_in_split(test_set, None if split == "all" else split)
    if args.limit:
        rows = rows[: args.limit]
    parsed = [_parse_variant(v) for v in args.variant] or [(VariantSpec(name=prompt.name), None)]
    minimums = {"accuracy": args.min_accuracy} if args.min_accuracy is not None else {}
    for item in args.min:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--min expects METRIC=VALUE, got {item!r}")
        minimums[key] = float(value)

    variants = []
    specs = []
    for spec, soft_ref in parsed:
        base = prompt
        if spec.prompt_id is not None:
            if library is None:
                raise CliError("variants with prompt= need the library")
            base = library.find_prompt(spec.prompt_id)
        if spec.prompt_version is not None:
            if library is None:
                raise CliError("variants with version= need the library")
            base = library.version(base.id, spec.prompt_version)
        if soft_ref is not None:
            if library is None:
                raise CliError("variants with soft= need the library")
            spec = spec.model_copy(update={"soft_prompt_id": _find_soft(library, soft_ref).id})
        specs.append(spec)
        variants.append((spec, base))

    def soft_prompt_for(soft_id: str):  # -> the soft prompt's tensor
        from workbench.core.softprompt import load_soft_prompt_tensor

        assert library is not None
        return load_soft_prompt_tensor(
            library.soft_prompt_tensor_path(library.soft_prompts[soft_id])
        )

    catalog = ModelCatalog()
    settings = _settings(args)
    loaded: dict[tuple[str, str | None], object] = {}

    def backend_for(spec: VariantSpec):
        ref = spec.model or args.model or prompt.model
        key = (catalog.get(ref).id, spec.backend or args.backend)
        if key not in loaded:
            for other in list(loaded.values()):
                other.close()  # one model in memory at a time
            loaded.clear()
            loaded[key] = load_backend(catalog.get(ref), key[1], settings)
        return loaded[key]

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    run = None
    try:
        metrics = args.metric or ["exact", "normalised", "f1"]
        events = evaluate(
            variants,
            test_set,
            rows,
            backend_for,
            metrics,
            args.mode,
            cancel,
            split=None if split == "all" else split,
            soft_prompt_for=soft_prompt_for,
        )
        for event in events:
            if isinstance(event, EvalFinished):
                run = event.run
            elif isinstance(event, CaseDone) and args.json:
                print(
                    json.dumps(
                        {
                            "event": "case",
                            "variant": specs[event.variant].name,
                            **event.result.model_dump(),
                        }
                    ),
                    flush=True,
                )
            elif isinstance(event, Progress) and not args.json and sys.stderr.isatty():
                eta = f", ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
                print(f"\r{event.done}/{event.total}{eta}   ", end="", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        for backend in loaded.values():
            backend.close()
    assert run is not None
    if library is not None and not args.no_save:
        library.save_eval_run(run)
    if args.out:
        out = Path(args.out)
        atomic_write_text(
            out, export_csv(run, test_set) if out.suffix == ".csv" else export_json(run)
        )
    failures = check_thresholds(run, minimums)
    if args.json:
        print(
            json.dumps(
                {
                    "event": "summary",
                    "complete": run.complete,
                    "mode": run.mode,
                    "summaries": [s.model_dump() for s in run.summaries],
                    "failures": failures,
                }
            )
        )
    else:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"{prompt.name} on {test_set.name} ({split})")
        print(format_table(run))
        for failure in failures:
            print(f"FAILED {failure}", file=sys.stderr)
    if not run.complete:
        return 130
    return 1 if failures else 0


# -- graduation ------------------------------------------------------------------


def cmd_tune(args: argparse.Namespace) -> int:
    import signal
    import threading

    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import EvalFinished, format_table
    from workbench.core.graduation import (
        ComparisonFinished,
        ComparisonStarted,
        SoftPromptSaved,
        graduate,
        prepare,
    )
    from workbench.core.models import TrainConfig, validate_as
    from workbench.core.tuning import StepEvent, TuningFinished, ValidationEvent

    library = _library(args)
    prompt = library.find_prompt(args.prompt)
    test_set = (
        _load_test_set(args, library, prompt)
        if (args.test_set or library.test_sets_for(prompt.id))
        else None
    )
    fields = {
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
    }
    config = validate_as(
        TrainConfig, {k: v for k, v in fields.items() if v is not None}, "training options"
    )
    if args.patience is not None:
        config = config.model_copy(update={"early_stopping_patience": args.patience or None})
    spec = ModelCatalog().get(args.model or prompt.model)
    plan = prepare(library, prompt, test_set, config.seed)
    if not args.json:
        print(
            f"graduating {prompt.name!r} on {spec.name}: {plan.train_examples} training, "
            f"{plan.validation_examples} validation, {plan.held_out_rows} held-out rows; "
            f"{config.num_virtual_tokens} virtual tokens, "
            f"{config.total_steps(plan.train_examples)} steps"
            + (f" ({config.epochs:g} epochs)" if config.epochs else ""),
            file=sys.stderr,
        )
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    saved = None
    comparison = None
    finished = None
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
            settings=_settings(args),
        ):
            if isinstance(event, StepEvent):
                if args.json:
                    print(
                        json.dumps(
                            {
                                "event": "step",
                                "step": event.step,
                                "loss": event.loss,
                                "steps_per_s": event.steps_per_s,
                                "eta_s": event.eta_s,
                                "memory_mb": event.memory_mb,
                            }
                        ),
                        flush=True,
                    )
                else:
                    print(
                        f"step {event.step}/{event.total_steps}  loss {event.loss:.4f}  "
                        f"{event.steps_per_s:.2f} steps/s  ETA {event.eta_s:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            elif isinstance(event, ValidationEvent):
                if args.json:
                    print(
                        json.dumps(
                            {
                                "event": "validation",
                                "step": event.step,
                                "loss": event.loss,
                                "accuracy": event.accuracy,
                                "best": event.best,
                            }
                        ),
                        flush=True,
                    )
                else:
                    acc = f"  accuracy {event.accuracy:.3f}" if event.accuracy is not None else ""
                    print(
                        f"validation at step {event.step}: loss {event.loss:.4f}{acc}"
                        f"{'  (best)' if event.best else ''}",
                        file=sys.stderr,
                        flush=True,
                    )
            elif isinstance(event, TuningFinished):
                finished = event.result
                if not args.json:
                    print(finished.message, file=sys.stderr)
            elif isinstance(event, SoftPromptSaved):
                saved = event.soft_prompt
                if args.json:
                    print(
                        json.dumps({"event": "saved", "soft_prompt": saved.id, "name": saved.name}),
                        flush=True,
                    )
                else:
                    print(f"saved soft prompt {saved.id}: {saved.name}", file=sys.stderr)
            elif isinstance(event, ComparisonStarted) and not args.json:
                print(
                    f"comparing {', '.join(event.variants)} on {event.rows} held-out rows…",
                    file=sys.stderr,
                    flush=True,
                )
            elif isinstance(event, ComparisonFinished | EvalFinished):
                comparison = event.run
    finally:
        signal.signal(signal.SIGINT, previous)
    if comparison is not None:
        if args.json:
            print(
                json.dumps(
                    {
                        "event": "comparison",
                        "mode": comparison.mode,
                        "summaries": [s.model_dump() for s in comparison.summaries],
                    }
                )
            )
        else:
            print(format_table(comparison))
    if finished is not None and finished.reason == "nan":
        print(f"error: {finished.message}", file=sys.stderr)
        return 1
    if finished is not None and finished.reason == "cancelled":
        return 130
    if saved is None and finished is not None and finished.steps and _launcher_rank() > 0:
        return 0  # under `accelerate launch`, the main process saves and compares
    return 0 if saved is not None else 1


def _launcher_rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (0 when run directly)."""
    import os

    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


# -- soft prompts -------------------------------------------------------------------


def _find_soft(library, ref: str):  # -> SoftPrompt
    matches = [s for s in library.soft_prompts.values() if ref in (s.id, s.name)]
    if len(matches) != 1:
        known = ", ".join(f"{s.id} ({s.name})" for s in library.soft_prompts.values()) or "none"
        raise CliError(f"no single soft prompt {ref!r} in the library (known: {known})")
    return matches[0]


def cmd_soft_list(args: argparse.Namespace) -> int:
    library = _library(args)
    for soft in sorted(library.soft_prompts.values(), key=lambda s: s.created):
        accuracy = soft.metrics.get("best_val_accuracy")
        extra = f"  val accuracy {accuracy:.3f}" if accuracy is not None else ""
        print(
            f"{soft.id}  {soft.name}  ({soft.num_virtual_tokens} tokens on {soft.base_model})"
            f"{extra}"
        )
    return 0


def cmd_soft_export(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.graduation import model_folder
    from workbench.core.peft_io import export_peft_adapter
    from workbench.core.softprompt import load_soft_prompt_tensor

    library = _library(args)
    soft = _find_soft(library, args.soft)
    tensor = load_soft_prompt_tensor(library.soft_prompt_tensor_path(soft))
    base = model_folder(ModelCatalog().get(soft.base_model))
    out = export_peft_adapter(tensor, soft, str(base), Path(args.out), overwrite=args.overwrite)
    print(f"wrote a PEFT prompt-tuning adapter to {out}")
    return 0


def cmd_soft_import(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.peft_io import import_adapter_into_library

    library = _library(args)
    prompt = library.find_prompt(args.prompt) if args.prompt else None
    spec = ModelCatalog().get(args.model)
    soft = import_adapter_into_library(
        library, Path(args.folder), spec, prompt.id if prompt else None, args.name
    )
    print(
        f"imported soft prompt {soft.id}: {soft.name} ({soft.num_virtual_tokens} tokens, "
        f"for {spec.name})"
    )
    return 0


def cmd_soft_nearest(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.graduation import model_folder
    from workbench.core.peft_io import nearest_tokens
    from workbench.core.softprompt import load_soft_prompt_tensor
    from workbench.core.tuning import load_base_model

    library = _library(args)
    soft = _find_soft(library, args.soft)
    tensor = load_soft_prompt_tensor(library.soft_prompt_tensor_path(soft))
    folder = model_folder(ModelCatalog().get(soft.base_model))
    base, _ = load_base_model(folder, "cpu", "fp32")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    matrix = base.get_input_embeddings().weight.detach().float().numpy()
    rows = nearest_tokens(tensor, matrix, lambda i: tokenizer.decode([i]), k=args.k)
    for index, row in enumerate(rows):
        words = "  ".join(f"{text!r} {cos:.2f}" for text, cos in row)
        print(f"{index:3d}  {words}")
    return 0


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Prompt Workbench: design, evaluate and graduate prompts on local models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--library",
        metavar="DIR",
        help="library folder (default: $WORKBENCH_LIBRARY or the user data dir)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the desktop app (the default)")
    gui.add_argument(
        "--smoke-test",
        action="store_true",
        help="open the window on a temporary copy of the sample library, check it, exit "
        "(no model is loaded; for packaged builds)",
    )
    gui.set_defaults(func=cmd_gui)

    render = sub.add_parser("render", help="print exactly what the model will see")
    render.add_argument("prompt", metavar="PROMPT", help="name or id in the library, or a file")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    render.add_argument("--json", action="store_true", help="one JSON object per step")
    render.set_defaults(func=cmd_render)

    models = sub.add_parser("models", help="list the models (embedded default first); add/remove")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    madd = msub.add_parser("add", help="add a GGUF file, a Hugging Face folder or a server URL")
    madd.add_argument("location", metavar="PATH_OR_URL")
    madd.add_argument("--name")
    madd.add_argument("--backend", choices=["llama.cpp", "transformers", "openai"])
    madd.add_argument("--remote-model", help="model name on the server (URL only)")
    madd.add_argument("--api-key-env", metavar="VAR", help="env variable with the API key")
    madd.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle .bin weights (they can run code: trusted sources only)",
    )
    madd.set_defaults(func=cmd_models_add)
    mrm = msub.add_parser("remove", help="forget a user-added model")
    mrm.add_argument("model")
    mrm.set_defaults(func=cmd_models_remove)

    gen = sub.add_parser("generate", help="run a prompt (or --text) and stream the answer")
    gen.add_argument(
        "prompt", metavar="PROMPT", nargs="?", help="name or id in the library, or a prompt file"
    )
    gen.add_argument("--text", help="a single user message instead of a library prompt")
    gen.add_argument(
        "--raw",
        action="store_true",
        help="with --text: feed the text as-is, without the chat template",
    )
    gen.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    gen.add_argument("--model", metavar="M", help="model id/name, file, folder or URL")
    gen.add_argument("--backend", choices=["llama.cpp", "transformers", "openai"])
    gen.add_argument("--max-tokens", type=int)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--repetition-penalty", type=float)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--stop", action="append", metavar="TEXT")
    gen.add_argument(
        "--logprobs",
        type=int,
        metavar="K",
        help="report each token's log-probability and its K best alternatives",
    )
    gen.add_argument("--grammar", metavar="FILE", help="GBNF grammar (llama.cpp)")
    gen.add_argument("--json-schema", metavar="FILE", help="constrain output to a JSON schema")
    gen.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    gen.add_argument("--n-ctx", type=int, help="llama.cpp context size (multiple of 256)")
    gen.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    gen.add_argument("--soft", metavar="NAME", help="run with this soft prompt (name or id)")
    gen.add_argument("--json", action="store_true", help="one JSON object per token event")
    gen.add_argument("--no-save", action="store_true", help="do not keep a run record")
    gen.set_defaults(func=cmd_generate)

    ev = sub.add_parser("eval", help="evaluate a prompt (and variants) on a test set")
    ev.add_argument("prompt", metavar="PROMPT", help="name or id in the library, or a file")
    ev.add_argument(
        "--test-set",
        metavar="NAME|FILE",
        help="a test set of the library, or a .csv/.jsonl/.json file "
        "(default: the prompt's first test set)",
    )
    ev.add_argument(
        "--split",
        choices=["train", "validation", "test", "all"],
        help="rows to use (default: test when the set is split, else all)",
    )
    ev.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="SPEC",
        help="NAME[:prompt=P,version=N,model=M,backend=B,few_shot=K,cot=MODE,soft=S]; "
        "repeat to compare",
    )
    ev.add_argument("--model", metavar="M")
    ev.add_argument("--backend", choices=["llama.cpp", "transformers", "openai"])
    ev.add_argument(
        "--metric",
        action="append",
        choices=["exact", "normalised", "contains", "regex", "f1"],
        help="text metrics (default: exact, normalised, f1)",
    )
    ev.add_argument(
        "--mode",
        choices=["auto", "generate", "likelihood"],
        default="auto",
        help="likelihood scores a fixed label set (auto: when the set has labels)",
    )
    ev.add_argument("--labels", help="comma-separated label set (enables likelihood scoring)")
    ev.add_argument("--limit", type=int, help="only the first N rows")
    ev.add_argument(
        "--min-accuracy",
        type=float,
        metavar="X",
        help="exit 1 when a variant's accuracy is below X",
    )
    ev.add_argument(
        "--min",
        action="append",
        default=[],
        metavar="METRIC=X",
        help="exit 1 when a variant's METRIC is below X",
    )
    ev.add_argument("--out", metavar="FILE", help="write the results (.csv or .json)")
    ev.add_argument("--threads", type=int)
    ev.add_argument("--n-ctx", type=int)
    ev.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    ev.add_argument("--json", action="store_true", help="one JSON object per case, then a summary")
    ev.add_argument("--no-save", action="store_true", help="do not keep the run in the library")
    ev.set_defaults(func=cmd_eval)

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
        choices=["text", "vocab", "random"],
        help="initialise from the prompt's text (default), sampled vocabulary, or random",
    )
    tune.add_argument("--eval-every", type=int, help="steps between validations (default 25)")
    tune.add_argument(
        "--patience", type=int, help="validations without improvement before stopping (0 = never)"
    )
    tune.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    tune.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    tune.add_argument("--seed", type=int)
    tune.add_argument("--model", metavar="M", help="base model (default: the embedded one)")
    tune.add_argument("--name", help="name of the soft prompt in the library")
    tune.add_argument(
        "--no-compare", action="store_true", help="skip the zero-shot / few-shot / soft comparison"
    )
    tune.add_argument("--threads", type=int)
    tune.add_argument("--json", action="store_true", help="one JSON object per event")
    tune.set_defaults(func=cmd_tune, n_ctx=None)

    soft = sub.add_parser(
        "soft", help="soft prompts: list, export/import PEFT adapters, nearest tokens"
    )
    ssub = soft.add_subparsers(dest="soft_command", metavar="ACTION", required=True)
    slist = ssub.add_parser("list", help="the library's soft prompts")
    slist.set_defaults(func=cmd_soft_list)
    sexp = ssub.add_parser("export", help="write a PEFT prompt-tuning adapter folder")
    sexp.add_argument("soft", metavar="NAME")
    sexp.add_argument("--out", required=True, metavar="DIR")
    sexp.add_argument("--overwrite", action="store_true")
    sexp.set_defaults(func=cmd_soft_export)
    simp = ssub.add_parser("import", help="add a PEFT prompt-tuning adapter to the library")
    simp.add_argument("folder", metavar="DIR")
    simp.add_argument("--prompt", help="link it to this prompt")
    simp.add_argument("--model", help="the base model it was trained on (default: embedded)")
    simp.add_argument("--name")
    simp.set_defaults(func=cmd_soft_import)
    snear = ssub.add_parser("nearest", help="nearest vocabulary tokens of each virtual token")
    snear.add_argument("soft", metavar="NAME")
    snear.add_argument("-k", type=int, default=5)
    snear.set_defaults(func=cmd_soft_nearest)

    library = sub.add_parser(
        "library", help="list, show, seed, import and export the prompt library"
    )
    lsub = library.add_subparsers(dest="library_command", metavar="ACTION", required=True)
    lst = lsub.add_parser("list", help="list prompts")
    lst.add_argument("--search", help="words to look for in names, templates, tags")
    lst.add_argument("--tag", action="append", help="only prompts with this tag")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_library_list)
    show = lsub.add_parser("show", help="print one prompt as JSON")
    show.add_argument("prompt", metavar="NAME")
    show.set_defaults(func=cmd_library_show)
    hist = lsub.add_parser("history", help="list a prompt's versions, or diff one")
    hist.add_argument("prompt", metavar="NAME")
    hist.add_argument(
        "--diff", type=int, metavar="VERSION", help="diff this version against the current one"
    )
    hist.set_defaults(func=cmd_library_history)
    seed = lsub.add_parser("seed", help="add the sample library")
    seed.set_defaults(func=cmd_library_seed)
    formats = ["bundle", "promptfoo", "prompty", "openai-jsonl", "langchain", "markdown"]
    exp = lsub.add_parser(
        "export",
        help="export prompts (all, or those named) as a bundle, promptfoo, Prompty, "
        "OpenAI JSONL, LangChain or Markdown",
    )
    exp.add_argument("prompts", metavar="NAME", nargs="*", help="prompts to export (default: all)")
    exp.add_argument("--format", choices=formats, help="default: from the --out extension")
    exp.add_argument(
        "--out", required=True, metavar="PATH", help="file, or folder for one file per prompt"
    )
    exp.set_defaults(func=cmd_library_export)
    imp = lsub.add_parser("import", help="import a file or folder; shows what it will do")
    imp.add_argument("file", metavar="PATH")
    imp.add_argument("--format", choices=formats[:-1], help="default: from the file extension")
    imp.add_argument(
        "--on-clash",
        choices=["copy", "replace", "skip"],
        default="copy",
        help="a prompt whose id or name is taken: add a copy (default), make it a new "
        "version of the existing prompt, or skip it",
    )
    imp.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    imp.set_defaults(func=cmd_library_import)
    schema = lsub.add_parser("schema", help="print the JSON Schema of the bundle format")
    schema.add_argument("--out", metavar="FILE")
    schema.set_defaults(func=cmd_library_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.func = cmd_gui
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        from workbench.core.backends.base import BackendError
        from workbench.core.library import LibraryError
        from workbench.core.models import SchemaError
        from workbench.core.templates import TemplateError

        if isinstance(
            exc, CliError | LibraryError | SchemaError | TemplateError | BackendError | ValueError
        ):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
