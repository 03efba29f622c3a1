"""Atomic file writes (the one way the library puts bytes on disk) and file hashing.

A write goes to a temp file in the target's folder, is fsynced, then `os.replace`d
over the target and the folder is fsynced, so a crash at any instant leaves either
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

TEMP_SUFFIX = ".tmp"
HASH_CHUNK_BYTES = 1 << 20


class Cancelled(Exception):
    """A long file operation (hashing a multi-GB model, converting it) was stopped."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: Path, older_than_s: float = 3600.0) -> int:
    """Delete temp files an interrupted write left behind (only ours: `.NAME.*.tmp`)."""
    removed = 0
    cutoff = time.time() - older_than_s
    for tmp in folder.rglob(f".*{TEMP_SUFFIX}"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def file_sha256(
    path: Path,
    cancel: threading.Event | None = None,
    chunk_bytes: int = HASH_CHUNK_BYTES,
) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) so big files are hashed once.
    A set `cancel` stops the hashing at the next chunk (`Cancelled`; nothing is
    remembered): a multi-GB model takes a while."""
    import hashlib
    import json

    from workbench.core.paths import cache_dir

    index_path = cache_dir() / "file-hashes.json"
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        index = json.loads(index_path.read_text("utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    if key in index:
        return str(index[key])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"hashing {path.name} was stopped")
            digest.update(block)
    index[key] = digest.hexdigest()
    atomic_write_text(index_path, json.dumps(index, indent=1))
    return digest.hexdigest()
