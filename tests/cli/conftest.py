"""The command line's tests: a log folder of each test's own, to read what it logged
(the root conftest restores the `workbench` logger after each test)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def log_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("logs")
    monkeypatch.setenv("WORKBENCH_LOG_DIR", str(folder))
    return folder
