"""Running the command line as a user does, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, env_library: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m workbench ARGS` as a user runs it."""
    env = dict(os.environ)
    if env_library is not None:
        env["WORKBENCH_LIBRARY"] = str(env_library)
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
