"""The architecture's wall: the core never imports Qt nor, at import time, a heavy library."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ["torch", "transformers", "llama_cpp", "peft", "accelerate", "PySide6", "pyqtgraph"]


def test_importing_every_core_module_imports_no_heavy_library() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        import workbench.core as core
        names = [m.name for m in pkgutil.walk_packages(core.__path__, "workbench.core.")]
        for name in names:
            importlib.import_module(name)
        loaded = sorted(h for h in {HEAVY!r} if h in sys.modules)
        print(len(names), ",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    count, loaded = (
        result.stdout.strip().split(" ", 1)
        if " " in result.stdout.strip()
        else (result.stdout.strip(), "")
    )
    assert int(count) >= 6
    assert loaded == ""


def test_cli_help_imports_no_heavy_library() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        f"print(','.join(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
