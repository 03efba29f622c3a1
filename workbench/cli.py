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

    return run_app(library_dir=Path(args.library) if args.library else None)


def cmd_render(args: argparse.Namespace) -> int:
    from workbench.core.templates import prompt_variables, render_preview, resolve_values

    prompt = _resolve_prompt(args)
    values = _parse_vars(args.var)
    merged = resolve_values(prompt, values)
    missing = [name for name in prompt_variables(prompt) if name not in merged]
    if missing:
        raise CliError(
            f"prompt {prompt.name!r} needs values for: {', '.join(missing)} "
            f"(pass --var NAME=VALUE)"
        )
    steps = render_preview(prompt, values)
    if args.json:
        for step in steps:
            print(json.dumps({"step": step.name or None,
                              "messages": [m.model_dump() for m in step.messages]}))
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


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Prompt Workbench: design, evaluate and graduate prompts on local models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--library", metavar="DIR",
                        help="library folder (default: $WORKBENCH_LIBRARY or the user data dir)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the desktop app (the default)")
    gui.set_defaults(func=cmd_gui)

    render = sub.add_parser("render", help="print exactly what the model will see")
    render.add_argument("prompt", metavar="PROMPT", help="name or id in the library, or a file")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    render.add_argument("--json", action="store_true", help="one JSON object per step")
    render.set_defaults(func=cmd_render)

    library = sub.add_parser("library", help="list, show, seed the prompt library")
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
    hist.add_argument("--diff", type=int, metavar="VERSION",
                      help="diff this version against the current one")
    hist.set_defaults(func=cmd_library_history)
    seed = lsub.add_parser("seed", help="add the sample library")
    seed.set_defaults(func=cmd_library_seed)
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
        from workbench.core.library import LibraryError
        from workbench.core.models import SchemaError
        from workbench.core.templates import TemplateError

        if isinstance(exc, CliError | LibraryError | SchemaError | TemplateError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
