"""The command line's tests: a private log folder, and the `workbench` logger as it was
(`main` sets up logging; other tests' caplog must still see the records)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def log_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("logs")
    monkeypatch.setenv("WORKBENCH_LOG_DIR", str(folder))
    logger = logging.getLogger("workbench")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield folder
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate
