"""What every command shares: the library and prompt lookups, --var and settings, Ctrl-C
as "stop cleanly", errors as one line on stderr, and the printing helpers."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, get_args

if TYPE_CHECKING:
    from workbench.core.backends.base import BackendSettings
    from workbench.core.library import Library
    from workbench.core.models import Prompt

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
    """What `register(sub)` of each command module adds its subcommands to."""

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]
"""A subcommand: parsed arguments in, exit status out."""

EXIT_USAGE = 2  # a mistake the user can fix: one clean line
EXIT_FAILED = 1  # anything else (the traceback is in the log)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader (`| head`) went away


class CliError(Exception):
    """An error to print as one clean line on stderr (exit status 2)."""


def choices(literal: Any) -> list[str]:
    """The values of a `Literal` type from `core/models.py`, for argparse's `choices=`."""
    return [str(value) for value in get_args(literal)]


# -- printing ----------------------------------------------------------------------


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def note(message: str = "", end: str = "\n") -> None:
    """A line for the person at the terminal (stderr: stdout stays the command's output)."""
    print(message, file=sys.stderr, end=end, flush=True)


def emit_json(obj: object) -> None:
    """One JSON object on its own stdout line, flushed (a reader may be streaming), in
    one write: the processes of `accelerate launch` share stdout, and a line written in
    one piece is never cut by another process's."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- the library, prompts, values, settings ----------------------------------------


def open_library(args: argparse.Namespace) -> Library:
    """The --library folder (else the default one); its load problems as warnings."""
    from workbench.core.library import Library, default_library_dir

    root = Path(args.library) if args.library else default_library_dir()
    library = Library(root)
    for problem in library.problems:
        warn(str(problem))
    return library


def prompt_is_file(ref: str) -> bool:
    path = Path(ref)
    return path.suffix == ".json" and path.is_file()


def resolve_prompt(args: argparse.Namespace) -> Prompt:
    """PROMPT is a prompt's name or id in the library, or a path to a prompt file."""
    from workbench.core.library import read_document
    from workbench.core.models import Prompt

    ref: str = args.prompt
    if prompt_is_file(ref):
        document = read_document(Path(ref))
        if not isinstance(document, Prompt):
            raise CliError(f"{ref} holds a {document.kind}, not a prompt")
        return document
    return open_library(args).find_prompt(ref)


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """--var NAME=VALUE pairs as a dict."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--var expects NAME=VALUE, got {pair!r}")
        values[name] = value
    return values


def missing_values_error(prompt: Prompt, missing: Sequence[str]) -> CliError:
    return CliError(
        f"prompt {prompt.name!r} needs values for: {', '.join(missing)} (pass --var NAME=VALUE)"
    )


def add_runtime_options(parser: argparse.ArgumentParser, n_ctx: bool = True) -> None:
    """--threads, --n-ctx and --device: how a local model runs (see `settings`)."""
    from workbench.core.models import Device

    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    if n_ctx:
        parser.add_argument("--n-ctx", type=int, help="llama.cpp context size (multiple of 256)")
    parser.add_argument("--device", choices=choices(Device))


def settings(args: argparse.Namespace) -> BackendSettings:
    """The saved settings (the app's Threads box), with this command's flags on top."""
    import dataclasses

    from workbench.core.backends.base import load_settings

    overrides: dict[str, Any] = {}
    for flag in ("threads", "n_ctx", "device"):
        value = getattr(args, flag, None)
        if value:
            overrides[flag] = value
    return dataclasses.replace(load_settings(), **overrides)


# -- Ctrl-C ------------------------------------------------------------------------


@contextmanager
def cancel_on_sigint() -> Iterator[threading.Event]:
    """An event the first Ctrl-C sets (the command stops at its next check and ends
    cleanly, keeping what it finished); a second Ctrl-C raises KeyboardInterrupt."""
    cancel = threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        logger.info("interrupted: stopping at the next step")
        cancel.set()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread (an embedding program): no handler to set
        yield cancel
        return
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


# -- errors ------------------------------------------------------------------------


def _clean_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is meant for the user: printed alone, exit status 2."""
    from workbench.core.backends.base import BackendError
    from workbench.core.flows.lookup import NotFoundError
    from workbench.core.library import LibraryError

    # SchemaError, TemplateError, EvaluationError, FileReadError... are ValueErrors
    return (CliError, LibraryError, BackendError, NotFoundError, ValueError)


def report_error(exc: Exception, command: str | None, debug: bool) -> int:
    """Log `exc` with its traceback (the log file; stderr too with --debug) and tell the
    user in one line; returns the exit status."""
    from workbench.core.logs import log_file

    # without a log file the log goes to stderr, where only --debug may put a traceback
    trace = debug or log_file() is not None
    logger.error("workbench %s failed: %s", command or "gui", exc, exc_info=trace)
    if isinstance(exc, _clean_errors()):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    where = log_file()
    if where is None:
        details = "run with --debug for details"
    else:
        details = f"details in {where}, or run with --debug"
    print(f"error: {type(exc).__name__}: {exc} ({details})", file=sys.stderr)
    return EXIT_FAILED


def quiet_broken_pipe() -> int:
    """The reader of stdout went away (`workbench ... | head`): stop quietly. Python's
    documented remedy: point stdout at devnull, so the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (a test's capture): nothing to flush
        pass
    return EXIT_BROKEN_PIPE
