"""`workbench gui` (also what `workbench` alone runs): the desktop app."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    library_dir = Path(args.library) if args.library else None
    if not getattr(args, "smoke_test", False):  # absent when `gui` is implied
        return run_app(library_dir=library_dir)
    from workbench.core.logs import setup_logging

    # a smoke test leaves nothing behind in the user's folders, its log included
    with tempfile.TemporaryDirectory(
        prefix="workbench-smoke-log-", ignore_cleanup_errors=True
    ) as folder:
        setup_logging(debug=args.debug, folder=Path(folder))
        try:
            return run_app(library_dir=library_dir, smoke_test=True)
        finally:
            setup_logging(debug=args.debug)  # closes the temporary log before it goes


def register(sub: Subparsers) -> None:
    gui = sub.add_parser("gui", help="open the desktop app (the default)")
    gui.add_argument(
        "--smoke-test",
        action="store_true",
        help="open the window on a temporary copy of the sample library, check it, exit "
        "(no model is loaded; for packaged builds)",
    )
    gui.set_defaults(func=cmd_gui)
