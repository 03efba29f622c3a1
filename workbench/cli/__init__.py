"""The command line: the parser (each command group registers its own subcommands) and
`main`, which sets up logging, runs the command and turns failures into one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from workbench import __version__
from workbench.cli import (
    compare,
    evaluate,
    generate,
    gui,
    library,
    lora,
    models,
    optimise,
    soft,
    tune,
)
from workbench.cli.common import (
    EXIT_INTERRUPTED,
    CliError,
    Command,
    quiet_broken_pipe,
    report_error,
)

__all__ = ["CliError", "build_parser", "main"]

logger = logging.getLogger(__name__)


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
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors and log to stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui.register(sub)
    generate.register_render(sub)
    models.register(sub)
    generate.register(sub)
    evaluate.register(sub)
    tune.register(sub)
    optimise.register(sub)
    compare.register(sub)
    soft.register(sub)
    lora.register(sub)
    library.register(sub)
    return parser


class _NoExit(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def parse_app_start(argv: Sequence[str] | None = None) -> argparse.Namespace | None:
    """`workbench [--library DIR] [--debug] [gui [--smoke-test]]` parsed as `build_parser`
    would, without building the other commands (their options list choices and defaults
    read from the schema, which would load pydantic and jinja2 before the window shows);
    None for any other command line, help and errors included, which the full parser
    then reads."""
    parser = _NoExit(add_help=False, allow_abbrev=False)
    parser.add_argument("--library")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("rest", nargs=argparse.REMAINDER)  # the command and its options
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentError:
        return None
    rest = args.__dict__.pop("rest")
    if rest == []:
        args.command = None
    elif rest in (["gui"], ["gui", "--smoke-test"]):
        args.command = "gui"
        args.smoke_test = len(rest) == 2
        args.func = gui.cmd_gui
    else:
        return None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from workbench.core.logs import setup_logging

    args = parse_app_start(argv) or build_parser().parse_args(argv)
    setup_logging(debug=args.debug)
    command: Command = getattr(args, "func", gui.cmd_gui)  # no command: the app
    logger.debug("workbench %s", " ".join(sys.argv[1:] if argv is None else argv))
    try:
        status = int(command(args))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return status
    except BrokenPipeError:
        logger.debug("stdout closed early")
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        logger.info("workbench %s interrupted", args.command or "gui")
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return report_error(exc, args.command, args.debug)
