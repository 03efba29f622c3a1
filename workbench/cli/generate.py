"""`workbench render` (what the model will see) and `workbench generate` (run it and
stream the answer)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.cli.common import (
    EXIT_INTERRUPTED,
    CliError,
    add_runtime_options,
    cancel_on_sigint,
    choices,
    emit_json,
    missing_values_error,
    note,
    open_library,
    parse_vars,
    prompt_is_file,
    resolve_prompt,
    settings,
)

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers
    from workbench.core.backends.base import Backend
    from workbench.core.library import Library
    from workbench.core.models import GenerationParams, SoftPrompt
    from workbench.core.placement import VirtualTokens
    from workbench.core.running import RunEvent


def cmd_render(args: argparse.Namespace) -> int:
    from workbench.core.running import missing_variables
    from workbench.core.templates import render_preview

    prompt = resolve_prompt(args)
    values = parse_vars(args.var)
    missing = missing_variables(prompt, values)
    if missing:
        raise missing_values_error(prompt, missing)
    steps = render_preview(prompt, values)
    if args.json:
        for step in steps:
            messages = [m.model_dump() for m in step.messages]
            print(json.dumps({"step": step.name or None, "messages": messages}))
        return 0
    for step in steps:
        if step.name:
            print(f"=== step: {step.name} ===")
        for message in step.messages:
            print(f"--- {message.role} ---")
            print(message.content)
    return 0


_PARAM_FLAGS = (
    ("max_tokens", "max_new_tokens"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("seed", "seed"),
    ("repetition_penalty", "repetition_penalty"),
)


def generation_params(args: argparse.Namespace, base: GenerationParams) -> GenerationParams:
    """`base` (the prompt's parameters) with this command's flags on top."""
    from workbench.core.flows.lookup import read_text_file
    from workbench.core.models import GenerationParams, validate_as

    update: dict[str, Any] = {}
    for flag, field in _PARAM_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            update[field] = value
    if args.stop:
        update["stop"] = args.stop
    if args.logprobs is not None:
        update["logprobs"] = True
        update["top_logprobs"] = args.logprobs
    if args.grammar:
        # universal newlines, as a grammar was always read (GBNF has no use for "\r")
        update["grammar"] = read_text_file(Path(args.grammar)).replace("\r\n", "\n")
    if args.json_schema:
        try:
            update["json_schema"] = json.loads(read_text_file(Path(args.json_schema)))
        except ValueError as exc:
            raise CliError(f"{args.json_schema}: not valid JSON ({exc})") from None
    return validate_as(GenerationParams, {**base.model_dump(), **update}, "generation parameters")


def print_event(event: RunEvent, as_json: bool) -> None:
    """A token on stdout as it comes (or a JSON line per token and per finished step)."""
    from workbench.core.backends.base import TokenEvent
    from workbench.core.running import StepFinished, StepStarted

    if isinstance(event, StepStarted):
        if event.name and not as_json:
            note(f"=== step: {event.name} ===")
    elif isinstance(event, TokenEvent):
        if as_json:
            top = [list(t) for t in event.top] if event.top else None
            emit_json(
                {
                    "event": "token",
                    "text": event.text,
                    "token_id": event.token_id,
                    "logprob": event.logprob,
                    "top": top,
                }
            )
        else:
            sys.stdout.write(event.text)
            sys.stdout.flush()
    elif isinstance(event, StepFinished):
        if as_json:
            emit_json(
                {
                    "event": "done",
                    "step": event.name or None,
                    "text": event.result.text,
                    "stats": event.result.stats.model_dump(),
                }
            )
        else:
            print(flush=True)


def soft_prompt_for(
    ref: str, library: Library, backend: Backend
) -> tuple[SoftPrompt, VirtualTokens]:
    """The --soft soft prompt and its virtual tokens (the tensor in the placement it was
    trained in), checked against the loaded model."""
    from workbench.core.flows.lookup import find_soft_prompt, load_virtual_tokens
    from workbench.core.softprompt import check_compatible

    meta = find_soft_prompt(library, ref)
    tokens = load_virtual_tokens(library, meta)
    check_compatible(meta, backend, tokens.embeddings)
    return meta, tokens


def apply_lora_adapter(ref: str, library: Library, backend: Backend) -> str:
    """Apply the --adapter LoRA adapter to the loaded model (PEFT's LoRA layers on
    transformers, a GGUF adapter on llama.cpp), after checking it was made for this
    model; returns its id. The backend is closed after the run, so the adapter is never
    taken out again."""
    from workbench.core.flows.lookup import find_lora_adapter
    from workbench.core.lora_io import apply_adapter

    adapter = find_lora_adapter(library, ref)
    apply_adapter(library, adapter, backend)
    return adapter.id


def cmd_generate(args: argparse.Namespace) -> int:
    from workbench.core.backends.base import Finished
    from workbench.core.backends.registry import ModelCatalog, load_backend
    from workbench.core.flows.report import format_stats
    from workbench.core.models import GenerationParams, Message, Prompt
    from workbench.core.running import RunFinished, StepFinished, missing_variables, run_prompt

    if (args.prompt is None) == (args.text is None):
        raise CliError("give either a PROMPT or --text TEXT")
    prompt: Prompt | None = None
    library: Library | None = None  # set when the run's record has a library to go to
    values = parse_vars(args.var)
    if args.prompt is not None:
        prompt = resolve_prompt(args)
        if not prompt_is_file(args.prompt):
            library = open_library(args)
        missing = missing_variables(prompt, values)
        if missing:
            raise missing_values_error(prompt, missing)
    params = generation_params(args, prompt.params if prompt else GenerationParams())
    spec = ModelCatalog().get(args.model or (prompt.model if prompt else None))
    backend = load_backend(spec, args.backend, settings(args))
    final = None
    record = None
    adapter_id: str | None = None
    try:
        soft_meta: SoftPrompt | None = None
        soft: VirtualTokens | None = None
        if args.soft:
            soft_meta, soft = soft_prompt_for(args.soft, library or open_library(args), backend)
        if args.adapter:
            adapter_id = apply_lora_adapter(args.adapter, library or open_library(args), backend)
        with cancel_on_sigint() as cancel:
            events: Iterator[RunEvent]
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
                print_event(event, args.json)
    finally:
        backend.close()
    if final is None:
        return 1
    if not args.json:
        note(format_stats(record.stats if record else final.stats, backend.description))
    if record is not None and library is not None and not args.no_save:
        if adapter_id is not None:
            record = record.model_copy(update={"adapter_id": adapter_id})
        library.save_run(record)
    return EXIT_INTERRUPTED if final.stats.finish_reason == "cancelled" else 0


def register_render(sub: Subparsers) -> None:
    render = sub.add_parser("render", help="print exactly what the model will see")
    render.add_argument("prompt", metavar="PROMPT", help="name or id in the library, or a file")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    render.add_argument("--json", action="store_true", help="one JSON object per step")
    render.set_defaults(func=cmd_render)


def register(sub: Subparsers) -> None:
    from workbench.core.models import BackendName

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
    gen.add_argument("--backend", choices=choices(BackendName))
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
    add_runtime_options(gen)
    gen.add_argument("--soft", metavar="NAME", help="run with this soft prompt (name or id)")
    gen.add_argument(
        "--adapter",
        metavar="NAME",
        help="run with this LoRA adapter (name or id; on llama.cpp it is converted to a "
        "GGUF LoRA adapter once)",
    )
    gen.add_argument("--json", action="store_true", help="one JSON object per token event")
    gen.add_argument("--no-save", action="store_true", help="do not keep a run record")
    gen.set_defaults(func=cmd_generate)
