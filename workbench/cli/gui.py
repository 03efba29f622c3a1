"""`workbench gui` (also what `workbench` alone runs): the desktop app."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    return run_app(
        library_dir=Path(args.library) if args.library else None,
        smoke_test=getattr(args, "smoke_test", False),  # absent when `gui` is implied
    )


def register(sub: Subparsers) -> None:
    gui = sub.add_parser("gui", help="open the desktop app (the default)")
    gui.add_argument(
        "--smoke-test",
        action="store_true",
        help="open the window on a temporary copy of the sample library, check it, exit "
        "(no model is loaded; for packaged builds)",
    )
    gui.set_defaults(func=cmd_gui)
