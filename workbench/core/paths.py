"""Where things live on this machine: the user's config and cache folders (overridable)."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "prompt-workbench"
ENV_CONFIG = "WORKBENCH_CONFIG_DIR"
ENV_CACHE = "WORKBENCH_CACHE_DIR"


def config_dir() -> Path:
    """User settings and the list of user-added models (`WORKBENCH_CONFIG_DIR` overrides)."""
    override = os.environ.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_DIR_NAME, appauthor=False))


def cache_dir() -> Path:
    """Derived data that can be rebuilt: converted models, file hashes, library indexes."""
    override = os.environ.get(ENV_CACHE)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_DIR_NAME, appauthor=False))


ENV_LOG = "WORKBENCH_LOG_DIR"


def log_dir() -> Path:
    """The rotating log files (`WORKBENCH_LOG_DIR` overrides)."""
    override = os.environ.get(ENV_LOG)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_DIR_NAME, appauthor=False))
