"""Shared fixtures."""

from __future__ import annotations

import os
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
