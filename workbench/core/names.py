"""Names made from other names: file-name slugs and the first free name in a series.

One helper for each, so a model id, an export file and a copy's name follow the same
rules ("Name", then "Name 2", "Name 3"…, or the pattern a caller gives).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache


@cache
def _unsafe(keep: str) -> re.Pattern[str]:
    return re.compile(f"[^A-Za-z0-9{re.escape(keep)}]+")


def slug(
    text: str,
    fallback: str = "item",
    *,
    max_length: int | None = 60,
    lower: bool = False,
    keep: str = "._-",
) -> str:
    """A file-name stem: letters, digits and the punctuation in `keep`; runs of other
    characters become "-", and `keep` and "-" are trimmed from both ends; then cut to
    `max_length` (None: no limit); `fallback` when nothing is left.

    The cut is not trimmed again: model ids and export names made before this helper
    existed ended that way, and the same name must keep giving the same id.
    """
    stem = _unsafe(keep).sub("-", text).strip(keep + "-")
    if lower:
        stem = stem.lower()
    if max_length is not None:
        stem = stem[:max_length]
    return stem or fallback


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
