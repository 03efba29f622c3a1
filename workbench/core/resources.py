"""The one locator for runtime assets (icons, stylesheet, the sample library).

Assets live in `resources/` at the top of a source checkout; a wheel maps them to
the package folder `workbench/resources`; a PyInstaller bundle unpacks them under
`sys._MEIPASS/resources`. `resources_dir()` finds whichever of these exists.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../workbench


class ResourceNotFoundError(FileNotFoundError):
    """A runtime asset is missing from this installation."""


def _candidates() -> list[Path]:
    found: list[Path] = []
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        found.append(Path(frozen_root) / "resources")
    found.append(_PACKAGE_DIR / "resources")  # installed wheel
    found.append(_PACKAGE_DIR.parent / "resources")  # source checkout / editable install
    return found


@cache
def resources_dir() -> Path:
    """The folder holding the runtime assets of this installation."""
    for candidate in _candidates():
        if (candidate / "sample_library").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in _candidates())
    raise ResourceNotFoundError(f"runtime resources not found (looked in: {tried})")


def resource_path(*parts: str) -> Path:
    """Path of one asset, e.g. `resource_path("icons", "app.svg")`; it must exist."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise ResourceNotFoundError(f"missing resource: {'/'.join(parts)} (in {resources_dir()})")
    return path
