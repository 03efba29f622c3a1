"""Logging for the whole program: a rotating file in the user's log folder, and stderr
with `--debug`. Modules log through `logging.getLogger(__name__)`; this sets up where
it goes, once per process."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from workbench.core.paths import log_dir

LOG_FILE = "workbench.log"
MAX_BYTES = 2_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

_state: dict[str, Path | None] = {"file": None}


def setup_logging(debug: bool = False, folder: Path | None = None) -> Path | None:
    """Send the `workbench` loggers to a rotating file (and to stderr when `debug`);
    returns the log file's path, None when the folder cannot be written (logging then
    goes to stderr only: a read-only home never stops the program)."""
    logger = logging.getLogger("workbench")
    for handler in list(logger.handlers):
        if getattr(handler, "_workbench", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter(FORMAT)
    path: Path | None = (folder or log_dir()) / LOG_FILE
    assert path is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
    except OSError:
        path = None
    else:
        file_handler.setFormatter(formatter)
        file_handler._workbench = True  # type: ignore[attr-defined]
        logger.addHandler(file_handler)
    if debug or path is None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        stream.setLevel(logging.DEBUG if debug else logging.WARNING)
        stream._workbench = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    _state["file"] = path
    return path


def log_file() -> Path | None:
    """The log file `setup_logging` chose (None before it ran, or when unwritable)."""
    return _state["file"]
