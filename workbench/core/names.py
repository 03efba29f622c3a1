"""Names made from other names: file-name slugs and the first free name in a series.

One helper for each, so a model id, an export file and a copy's name follow the same
rules ("Name", then "Name 2", "Name 3"…, or the pattern a caller gives).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, fallback: str = "item", *, max_length: int = 60, lower: bool = False) -> str:
    """A file-name stem: runs of other characters become "-", no leading or trailing
    punctuation; `fallback` when nothing is left."""
    stem = _UNSAFE.sub("-", text).strip("-._")
    if lower:
        stem = stem.lower()
    return stem[:max_length].strip("-._") or fallback


def unique_name(
    stem: str,
    taken: Iterable[str],
    pattern: str = "{stem} {n}",
    *,
    start: int = 2,
    bare: bool = True,
    casefold: bool = False,
) -> str:
    """The first name not in `taken`: `stem` itself when `bare` and free, else `pattern`
    filled with n = start, start + 1, …; `casefold` compares ignoring case."""

    def key(name: str) -> str:
        return name.casefold() if casefold else name

    used = {key(name) for name in taken}
    if bare and key(stem) not in used:
        return stem
    n = start
    while key(candidate := pattern.format(stem=stem, n=n)) in used:
        n += 1
    return candidate
