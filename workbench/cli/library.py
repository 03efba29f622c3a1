"""`workbench library`: list, show, history, seed, export, import and schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli.common import open_library, resolve_prompt

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers

EXPORT_FORMATS = ["bundle", "promptfoo", "prompty", "openai-jsonl", "langchain", "markdown"]
IMPORT_FORMATS = EXPORT_FORMATS[:-1]  # Markdown is for reading, not for coming back


def cmd_library_list(args: argparse.Namespace) -> int:
    library = open_library(args)
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
    print(resolve_prompt(args).model_dump_json(indent=2))
    return 0


def cmd_library_history(args: argparse.Namespace) -> int:
    library = open_library(args)
    prompt = library.find_prompt(args.prompt)
    if args.diff is not None:
        print(library.diff(prompt.id, args.diff) or "(no differences)")
        return 0
    for version in library.history(prompt.id):
        marker = "  (current)" if version.version == prompt.version else ""
        note = library.version_note(version)  # edited, restored v1, imported, optimised …
        when = version.updated.isoformat(timespec="seconds")
        print(f"v{version.version}  {when}  {note}  {version.name}{marker}")
    return 0


def cmd_library_seed(args: argparse.Namespace) -> int:
    from workbench.core.library import seed_library
    from workbench.core.resources import resource_path

    library = open_library(args)
    added = seed_library(library, resource_path("sample_library"))
    if added:
        print(f"added to {library.root}: " + ", ".join(added))
    else:
        print(f"the sample library is already in {library.root}")
    return 0


def cmd_library_export(args: argparse.Namespace) -> int:
    from workbench.core import exchange

    library = open_library(args)
    fmt = args.format or exchange.guess_format(Path(args.out))
    ids = [library.find_prompt(ref).id for ref in args.prompts] if args.prompts else None
    report = exchange.export(library, fmt, Path(args.out), ids)
    for path in report.paths:
        print(f"wrote {path}")
    module = exchange.format_module(fmt)
    if report.losses and not module.LOSSLESS:
        print(f"{module.LABEL} does not carry:", file=sys.stderr)
        for loss in report.losses:
            print(f"  - {loss}", file=sys.stderr)
    return 0


def cmd_library_import(args: argparse.Namespace) -> int:
    from workbench.core import exchange

    library = open_library(args)
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


def register(sub: Subparsers) -> None:
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
    exp = lsub.add_parser(
        "export",
        help="export prompts (all, or those named) as a bundle, promptfoo, Prompty, "
        "OpenAI JSONL, LangChain or Markdown",
    )
    exp.add_argument("prompts", metavar="NAME", nargs="*", help="prompts to export (default: all)")
    exp.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the --out extension")
    exp.add_argument(
        "--out", required=True, metavar="PATH", help="file, or folder for one file per prompt"
    )
    exp.set_defaults(func=cmd_library_export)
    imp = lsub.add_parser("import", help="import a file or folder; shows what it will do")
    imp.add_argument("file", metavar="PATH")
    imp.add_argument("--format", choices=IMPORT_FORMATS, help="default: from the file extension")
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
