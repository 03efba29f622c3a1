"""Shared fixtures; no test writes the real user config or log folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def library(library_dir: Path):
    from workbench.core.library import Library

    return Library(library_dir)


# Converted-model cache shared across test runs (the first GGUF→safetensors conversion
# takes ~20 s on 2 cores; later runs reuse it). Kept inside the checkout, git-ignored.
os.environ.setdefault(
    "WORKBENCH_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "tests")
)


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """User-added models and settings never touch the real user config."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(scope="session", autouse=True)
def _isolated_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Log files go to a folder of the test run, never the user's log folder: set for
    the whole session (before any session- or module-scoped fixture starts a process),
    in os.environ, so every `workbench` subprocess a test starts inherits it."""
    folder = tmp_path_factory.mktemp("logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_LOG_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _workbench_logger_kept() -> Iterator[None]:
    """The `workbench` logger as it was after each test: `main` (and the app) set up
    logging, which stops propagation, and later tests' caplog must still see records."""
    logger = logging.getLogger("workbench")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate
