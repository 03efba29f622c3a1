"""The on-disk prompt library: load, save with version history, search, test sets, runs.

Layout of a library folder (all JSON, pretty-printed so it diffs well in git):

    workbench-library.json       manifest (schema version)
    prompts/<id>.json            the current version of each prompt
    history/<id>/v000003.json    every earlier version of that prompt
    history/<id>/notes.json      optional: what made each version, {"3": "restored v1"}
                                 (a version without a note reads as created or edited)
    test_sets/<id>.json
    soft_prompts/<id>.json       metadata; the tensor sits beside it as <id>.safetensors
    lora_adapters/<id>.json      a LoRA adapter's metadata; beside it the PEFT adapter
                                 folder <id>/ (adapter_config.json, adapter_model.safetensors)
    runs/<prompt id>/<run id>.json
    evals/<prompt id>/<eval id>.json   evaluation runs (variants × test cases)
    drafts/<id>.json             unsaved edits from the app (autosaved; Ctrl+S makes a version)
    trash/<id>/...               deleted prompts (with their history), restorable

Every write is atomic (`fsutil.atomic_write_bytes`). Files that do not parse or
validate are reported in `problems`, skipped, and never overwritten.

Opening a big library stays fast through a summary index in the user cache folder
(name, tags, search text of each prompt, keyed by the file's inode, size and mtime):
unchanged files are not parsed at open; a full prompt is read when first asked for.
The index is only a cache: any file whose fingerprint changed is parsed again.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic_core

from workbench.core.fsutil import atomic_write_bytes, remove_stale_temp_files
from workbench.core.models import (
    SCHEMA_VERSION,
    Document,
    EvalRun,
    LoraAdapter,
    Prompt,
    RunRecord,
    SchemaError,
    SoftPrompt,
    TestSet,
    load_document,
    new_id,
    utc_now,
)
from workbench.core.paths import cache_dir
from workbench.core.prompt_diff import FieldChange, prompt_changes

MANIFEST = "workbench-library.json"
ENV_LIBRARY = "WORKBENCH_LIBRARY"

_D = TypeVar("_D", Prompt, TestSet, SoftPrompt, LoraAdapter, RunRecord, EvalRun)


class LibraryError(Exception):
    """A library operation was refused; the message says why."""


@dataclass(frozen=True)
class LoadProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class PromptSummary:
    """What lists and search need of a prompt, without loading all of it."""

    id: str
    name: str
    tags: tuple[str, ...]
    description: str
    version: int
    text: str  # case-folded search text: name, description, templates, tags, labels

    @classmethod
    def of(cls, prompt: Prompt) -> PromptSummary:
        parts = [
            prompt.name,
            prompt.description,
            prompt.system,
            prompt.user_template,
            *prompt.tags,
            *prompt.labels,
        ]
        return cls(
            prompt.id,
            prompt.name,
            tuple(prompt.tags),
            prompt.description,
            prompt.version,
            "\n".join(parts).casefold(),
        )


_Fingerprint = tuple[int, int, int]
INDEX_VERSION = 1


def _fingerprint(path: Path) -> _Fingerprint:
    stat = path.stat()
    # atomic writes replace the file, so the inode changes on every save
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class PromptMap(Mapping[str, Prompt]):
    """The library's prompts by id; each is read from disk when first asked for."""

    def __init__(self, library: Library) -> None:
        self._library = library

    def __getitem__(self, prompt_id: str) -> Prompt:
        return self._library._full_prompt(prompt_id)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._library._summaries))

    def __len__(self) -> int:
        return len(self._library._summaries)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self._library._summaries


def default_library_dir() -> Path:
    """`WORKBENCH_LIBRARY` if set, else the platform's user data folder."""
    override = os.environ.get(ENV_LIBRARY)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("prompt-workbench", appauthor=False)) / "library"


def document_bytes(document: Document) -> bytes:
    return (document.model_dump_json(indent=2) + "\n").encode("utf-8")


def read_document(path: Path) -> Document:
    """Parse and validate one library file (migrating older schema versions)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SchemaError(str(path), [("", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SchemaError(str(path), [(where, f"not valid JSON: {exc.msg}")]) from None
    except UnicodeDecodeError as exc:
        raise SchemaError(str(path), [("", f"not UTF-8 text: {exc}")]) from None
    return load_document(data, str(path))


class Library:
    """One library folder, loaded into memory; writes go straight to disk, atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.prompts = PromptMap(self)
        self._summaries: dict[str, PromptSummary] = {}
        self._loaded: dict[str, Prompt] = {}
        self._index: dict[str, tuple[_Fingerprint, PromptSummary]] = {}
        self._index_dirty = False
        self.test_sets: dict[str, TestSet] = {}
        self.soft_prompts: dict[str, SoftPrompt] = {}
        self.lora_adapters: dict[str, LoraAdapter] = {}
        self.problems: list[LoadProblem] = []
        self._bad_paths: set[Path] = set()
        self._lock = threading.RLock()
        # path -> its bytes before the running transaction (None: it did not exist)
        self._journal: dict[Path, bytes | None] | None = None
        self._open()

    # -- folders ---------------------------------------------------------

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    @property
    def history_dir(self) -> Path:
        return self.root / "history"

    @property
    def test_sets_dir(self) -> Path:
        return self.root / "test_sets"

    @property
    def soft_prompts_dir(self) -> Path:
        return self.root / "soft_prompts"

    @property
    def lora_adapters_dir(self) -> Path:
        return self.root / "lora_adapters"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def drafts_dir(self) -> Path:
        return self.root / "drafts"

    @property
    def trash_dir(self) -> Path:
        return self.root / "trash"

    def _open(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"{self.root} is not a folder")
        try:
            for folder in (self.prompts_dir, self.test_sets_dir, self.soft_prompts_dir):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"cannot create the library folder {self.root}: {exc}") from None
        manifest = self.root / MANIFEST
        if manifest.exists():
            self._check_manifest(manifest)
        else:
            body = {"kind": "library", "schema_version": SCHEMA_VERSION}
            atomic_write_bytes(manifest, (json.dumps(body, indent=2) + "\n").encode())
        remove_stale_temp_files(self.root)
        self.reload()

    def _check_manifest(self, manifest: Path) -> None:
        try:
            data = json.loads(manifest.read_text("utf-8"))
            version = int(data.get("schema_version", 1))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            self.problems.append(LoadProblem(manifest, f"unreadable manifest ({exc}); ignored"))
            return
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.root} was written by a newer release of Prompt Workbench "
                f"(library schema {version}; this release reads up to {SCHEMA_VERSION})"
            )

    def _report(self, problems: Iterable[LoadProblem]) -> None:
        """Record one problem per file, the latest message replacing an earlier one:
        history, drafts and runs are read on every call, so a damaged file would
        otherwise be listed again each time."""
        with self._lock:
            for problem in problems:
                self.problems = [p for p in self.problems if p.path != problem.path]
                self.problems.append(problem)

    def reload(self) -> None:
        """(Re)read every file; bad ones land in `problems` and are left untouched."""
        with self._lock:
            self.problems = [p for p in self.problems if p.path.name == MANIFEST]
            self._bad_paths = set()
            self._load_prompts()
            self.test_sets = self._load_folder(self.test_sets_dir, TestSet)
            self.soft_prompts = self._load_folder(self.soft_prompts_dir, SoftPrompt)
            self.lora_adapters = (
                self._load_folder(self.lora_adapters_dir, LoraAdapter)
                if self.lora_adapters_dir.is_dir()
                else {}
            )

    @property
    def index_path(self) -> Path:
        key = hashlib.sha256(str(self.root).encode()).hexdigest()[:20]
        return cache_dir() / "library-index" / f"{key}.json"

    def _read_index(self) -> dict[str, tuple[_Fingerprint, PromptSummary]]:
        try:
            # pydantic-core's JSON parser: ~8x the stdlib's on a 10,000-prompt index
            raw = pydantic_core.from_json(self.index_path.read_bytes())
            if raw.get("version") != INDEX_VERSION or raw.get("root") != str(self.root):
                return {}
            return {
                name: (
                    (fp[0], fp[1], fp[2]),
                    PromptSummary(s[0], s[1], tuple(s[2]), s[3], s[4], s[5]),
                )
                for name, (fp, s) in raw["entries"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return {}  # a missing or damaged cache is rebuilt from the files

    def flush_index(self) -> None:
        """Write the summary index if it changed (it is a cache: failures are ignored)."""
        with self._lock:
            if not self._index_dirty:
                return
            entries = {
                name: [list(fp), [s.id, s.name, list(s.tags), s.description, s.version, s.text]]
                for name, (fp, s) in self._index.items()
            }
            body = {"version": INDEX_VERSION, "root": str(self.root), "entries": entries}
            try:
                atomic_write_bytes(self.index_path, json.dumps(body).encode("utf-8"))
                self._index_dirty = False
            except OSError:
                pass

    def close(self) -> None:
        self.flush_index()

    def _load_prompts(self) -> None:
        cached = self._read_index()
        self._summaries, self._loaded, self._index = {}, {}, {}
        self._index_dirty = False
        try:
            entries = sorted(os.scandir(self.prompts_dir), key=lambda e: e.name)
        except OSError as exc:
            self.problems.append(LoadProblem(self.prompts_dir, f"cannot list: {exc}"))
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # temp files of writes in progress
            if not name.endswith(".json") or not entry.is_file():
                self.problems.append(LoadProblem(Path(entry.path), "unknown file; ignored"))
                continue
            try:
                stat = os.stat(entry.path)
            except OSError as exc:
                self.problems.append(LoadProblem(Path(entry.path), f"cannot read: {exc}"))
                continue
            fingerprint = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            hit = cached.get(name)
            if hit is not None and hit[0] == fingerprint and hit[1].id == name[:-5]:
                self._summaries[hit[1].id] = hit[1]
                self._index[name] = hit
                continue
            path = Path(entry.path)
            prompt = self._parse_prompt(path)
            if prompt is not None:
                self._remember(prompt, fingerprint)
        if set(cached) != set(self._index):
            self._index_dirty = True
        self.flush_index()

    def _parse_prompt(self, path: Path) -> Prompt | None:
        loaded, problems, bad = load_one(path, Prompt)
        self._report(problems)
        self._bad_paths |= bad
        return loaded

    def _remember(self, prompt: Prompt, fingerprint: _Fingerprint | None = None) -> None:
        summary = PromptSummary.of(prompt)
        self._summaries[prompt.id] = summary
        self._loaded[prompt.id] = prompt
        path = self.prompt_path(prompt.id)
        try:
            fingerprint = fingerprint or _fingerprint(path)
        except OSError:
            return
        self._index[path.name] = (fingerprint, summary)
        self._index_dirty = True

    def _forget(self, prompt_id: str) -> None:
        self._summaries.pop(prompt_id, None)
        self._loaded.pop(prompt_id, None)
        if self._index.pop(f"{prompt_id}.json", None) is not None:
            self._index_dirty = True

    def _full_prompt(self, prompt_id: str) -> Prompt:
        with self._lock:
            prompt = self._loaded.get(prompt_id)
            if prompt is not None:
                return prompt
            if prompt_id not in self._summaries:
                raise KeyError(prompt_id)
            path = self.prompt_path(prompt_id)
            prompt = self._parse_prompt(path)
            if prompt is None:  # changed on disk into something unreadable since the index
                self._forget(prompt_id)
                raise KeyError(prompt_id)
            self._loaded[prompt_id] = prompt
            return prompt

    def _load_folder(self, folder: Path, kind: type[_D]) -> dict[str, _D]:
        loaded, problems, bad = load_folder(folder, kind)
        self.problems.extend(problems)
        self._bad_paths |= bad
        return loaded

    def _write(self, path: Path, document: Document) -> None:
        if path in self._bad_paths:
            raise LibraryError(
                f"{path} could not be read when the library was loaded; "
                "it is left untouched (fix or move it, then reload)"
            )
        self._put(path, document_bytes(document))

    def _put(self, path: Path, data: bytes) -> None:
        """Write one file atomically, remembering its old bytes inside a transaction."""
        if self._journal is not None and path not in self._journal:
            try:
                self._journal[path] = path.read_bytes()
            except FileNotFoundError:
                self._journal[path] = None
        atomic_write_bytes(path, data)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside either land together or, on any exception, are undone: every
        file written goes back to its old bytes (or away), and memory is re-read."""
        with self._lock:
            if self._journal is not None:
                raise LibraryError("a library transaction is already running")
            self._journal = {}
            try:
                yield
            except BaseException:
                journal, self._journal = self._journal, None
                for path, before in reversed(list(journal.items())):
                    if before is None:
                        path.unlink(missing_ok=True)
                    else:
                        atomic_write_bytes(path, before)
                self.reload()
                raise
            self._journal = None

    # -- prompts ---------------------------------------------------------

    def prompt_path(self, prompt_id: str) -> Path:
        return self.prompts_dir / f"{prompt_id}.json"

    def get_prompt(self, prompt_id: str) -> Prompt:
        try:
            return self.prompts[prompt_id]
        except KeyError:
            raise LibraryError(
                f"no prompt with id {prompt_id!r} (or its file is unreadable)"
            ) from None

    def find_prompt(self, ref: str) -> Prompt:
        """A prompt by id, or by name (case-insensitive, unique)."""
        if ref in self.prompts:
            return self.get_prompt(ref)
        matches = [s for s in self._summaries.values() if s.name.casefold() == ref.casefold()]
        if len(matches) == 1:
            return self.get_prompt(matches[0].id)
        if len(matches) > 1:
            ids = ", ".join(p.id for p in matches)
            raise LibraryError(f"several prompts are named {ref!r} (ids: {ids}); use an id")
        names = [s.name for s in self._summaries.values()]
        close = difflib.get_close_matches(ref, names, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LibraryError(f"no prompt named {ref!r} in {self.root}{hint}")

    def save_prompt(self, prompt: Prompt, note: str | None = None) -> Prompt:
        """Save a prompt. If it exists and its content changed, the previous version goes
        to its history and the version number goes up; an unchanged save is a no-op.
        `note` says what made this version ("restored v3", "imported", …; see
        `version_note`)."""
        with self._lock:
            current = self.prompts.get(prompt.id) if prompt.id in self._summaries else None
            if current is not None and current.content_equal(prompt):
                return current
            if current is not None:
                saved = prompt.model_copy(
                    update={
                        "version": current.version + 1,
                        "updated": utc_now(),
                        "created": current.created,
                    }
                )
                # history first: a crash between the two writes duplicates, never loses
                self._put(self._history_path(prompt.id, current.version), document_bytes(current))
            else:
                saved = prompt.model_copy(update={"updated": utc_now()})
            saved = Prompt.model_validate(saved.model_dump())
            self._write(self.prompt_path(saved.id), saved)
            self._remember(saved)
            self._set_note(saved.id, saved.version, note)
            return saved

    def add_prompt_verbatim(
        self, prompt: Prompt, history: Iterable[Prompt] = (), note: str | None = None
    ) -> None:
        """Add a prompt exactly as given (version, timestamps) with its earlier versions,
        as an import does; refused when the id is taken. `note` is the current version's."""
        with self._lock:
            if prompt.id in self._summaries:
                raise LibraryError(f"a prompt with id {prompt.id!r} exists already")
            for old in history:
                if old.id != prompt.id or old.version >= prompt.version:
                    raise LibraryError(f"history of {prompt.id!r} holds a misfiled version")
                self._put(self._history_path(prompt.id, old.version), document_bytes(old))
            self._write(self.prompt_path(prompt.id), prompt)
            self._remember(prompt)
            self._set_note(prompt.id, prompt.version, note)

    def new_prompt(self, name: str, **fields: Any) -> Prompt:
        return self.save_prompt(Prompt(name=name, **fields))

    def duplicate_prompt(self, prompt_id: str, name: str | None = None) -> Prompt:
        source = self.get_prompt(prompt_id)
        copy = source.model_copy(
            update={
                "id": new_id(),
                "name": name or f"{source.name} (copy)",
                "version": 1,
                "created": utc_now(),
                "labels": [],
            }
        )
        note = f"copied from {source.name!r}"
        return self.save_prompt(Prompt.model_validate(copy.model_dump()), note)

    def rename_prompt(self, prompt_id: str, name: str) -> Prompt:
        if not name.strip():
            raise LibraryError("a prompt needs a name")
        prompt = self.get_prompt(prompt_id)
        return self.save_prompt(prompt.model_copy(update={"name": name}), "renamed")

    def delete_prompt(self, prompt_id: str) -> None:
        """Move a prompt and its history to the trash (restorable with `undelete_prompt`)."""
        with self._lock:
            self.get_prompt(prompt_id)
            target = self.trash_dir / prompt_id
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            os.replace(self.prompt_path(prompt_id), target / "prompt.json")
            history = self.history_dir / prompt_id
            if history.exists():
                os.replace(history, target / "history")
            draft = self.drafts_dir / f"{prompt_id}.json"
            if draft.exists():
                os.replace(draft, target / "draft.json")
            self._forget(prompt_id)

    def trashed_prompt_ids(self) -> list[str]:
        if not self.trash_dir.exists():
            return []
        return sorted(p.name for p in self.trash_dir.iterdir() if (p / "prompt.json").exists())

    def undelete_prompt(self, prompt_id: str) -> Prompt:
        with self._lock:
            source = self.trash_dir / prompt_id
            document = read_document(source / "prompt.json")
            if not isinstance(document, Prompt):
                raise LibraryError(f"{source} does not hold a prompt")
            if prompt_id in self.prompts:
                raise LibraryError(f"a prompt with id {prompt_id!r} exists already")
            if (source / "history").exists():
                self.history_dir.mkdir(exist_ok=True)
                os.replace(source / "history", self.history_dir / prompt_id)
            if (source / "draft.json").exists():
                self.drafts_dir.mkdir(exist_ok=True)
                os.replace(source / "draft.json", self.drafts_dir / f"{prompt_id}.json")
            os.replace(source / "prompt.json", self.prompt_path(prompt_id))
            shutil.rmtree(source, ignore_errors=True)
            self._remember(document)
            return document

    # -- drafts ----------------------------------------------------------

    def save_draft(self, prompt: Prompt) -> None:
        """Keep unsaved edits (the app autosaves them) without making a version."""
        if prompt.id not in self._summaries:
            raise LibraryError(f"no prompt with id {prompt.id!r} to keep a draft of")
        with self._lock:
            atomic_write_bytes(self.drafts_dir / f"{prompt.id}.json", document_bytes(prompt))

    def draft(self, prompt_id: str) -> Prompt | None:
        """The prompt's unsaved draft, if any (an unreadable draft is reported, ignored)."""
        path = self.drafts_dir / f"{prompt_id}.json"
        if not path.exists():
            return None
        document, problems, _ = load_one(path, Prompt)
        self._report(problems)
        return document

    def discard_draft(self, prompt_id: str) -> None:
        try:
            (self.drafts_dir / f"{prompt_id}.json").unlink()
        except FileNotFoundError:
            pass

    def commit_draft(self, prompt: Prompt, note: str | None = None) -> Prompt:
        """Save the edited prompt as a new version and drop its draft."""
        saved = self.save_prompt(prompt, note)
        self.discard_draft(prompt.id)
        return saved

    # -- history ---------------------------------------------------------

    def _history_path(self, prompt_id: str, version: int) -> Path:
        return self.history_dir / prompt_id / f"v{version:06d}.json"

    def _notes_path(self, prompt_id: str) -> Path:
        return self.history_dir / prompt_id / "notes.json"

    def version_notes(self, prompt_id: str) -> dict[int, str]:
        """What made each version, where it was recorded (`history/<id>/notes.json`;
        libraries written before notes existed have none, and an unreadable file is
        reported and read as none)."""
        path = self._notes_path(prompt_id)
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self._report([LoadProblem(path, f"version notes unreadable: {exc}")])
            return {}
        if not isinstance(raw, dict):
            self._report([LoadProblem(path, "version notes are not a JSON object")])
            return {}
        return {
            int(version): str(note)
            for version, note in raw.items()
            if str(version).isdigit() and isinstance(note, str)
        }

    def version_note(self, prompt: Prompt) -> str:
        """What made this version: its recorded note, else "created" for a first version
        and "edited" for a later one (saved from the editor, or before notes existed)."""
        recorded = self.version_notes(prompt.id).get(prompt.version)
        if recorded:
            return recorded
        return "created" if prompt.version == 1 else "edited"

    def _set_note(self, prompt_id: str, version: int, note: str | None) -> None:
        notes = self.version_notes(prompt_id)
        if note is None and version not in notes:
            return
        if note is None:
            del notes[version]  # a version number used again (a prompt added anew)
        else:
            notes[version] = note
        data = json.dumps({str(v): notes[v] for v in sorted(notes)}, indent=2) + "\n"
        self._put(self._notes_path(prompt_id), data.encode("utf-8"))

    def history(self, prompt_id: str) -> list[Prompt]:
        """Every stored version of a prompt, oldest first, the current one last."""
        current = self.get_prompt(prompt_id)
        versions: dict[int, Prompt] = {}
        folder = self.history_dir / prompt_id
        if folder.exists():
            for path in sorted(folder.glob("v*.json")):
                try:
                    document = read_document(path)
                except SchemaError as exc:
                    self._report([LoadProblem(path, str(exc))])
                    continue
                if isinstance(document, Prompt) and document.id == prompt_id:
                    versions[document.version] = document
        versions[current.version] = current
        return [versions[v] for v in sorted(versions)]

    def version(self, prompt_id: str, version: int) -> Prompt:
        for prompt in self.history(prompt_id):
            if prompt.version == version:
                return prompt
        raise LibraryError(f"prompt {prompt_id!r} has no version {version}")

    def diff(self, prompt_id: str, old: int, new: int | None = None) -> str:
        """Unified diff between two versions (new defaults to the current one)."""
        before = self.version(prompt_id, old)
        after = self.get_prompt(prompt_id) if new is None else self.version(prompt_id, new)
        skip = {"updated", "created", "version"}

        def lines(p: Prompt) -> list[str]:
            return json.dumps(p.model_dump(mode="json", exclude=skip), indent=2).splitlines()

        return "\n".join(
            difflib.unified_diff(
                lines(before),
                lines(after),
                f"version {before.version}",
                f"version {after.version}",
                lineterm="",
            )
        )

    def changes(self, prompt_id: str, old: int, new: int | None = None) -> list[FieldChange]:
        """What changed from version `old` to `new` (default: the current one), field by
        field as readable lines (`prompt_diff.prompt_changes`)."""
        before = self.version(prompt_id, old)
        after = self.get_prompt(prompt_id) if new is None else self.version(prompt_id, new)
        return prompt_changes(before, after)

    def restore_version(self, prompt_id: str, version: int) -> Prompt:
        """Make an old version current again (as a new version: history is never rewritten)."""
        old = self.version(prompt_id, version)
        return self.save_prompt(old, f"restored v{version}")

    # -- search ----------------------------------------------------------

    def tags(self) -> list[str]:
        return sorted({t for s in self._summaries.values() for t in s.tags}, key=str.casefold)

    def search(self, text: str = "", tags: Iterable[str] = ()) -> list[PromptSummary]:
        """Prompts whose name, description, tags or templates contain every word of `text`
        (case-insensitive) and that carry all `tags`; sorted by name."""
        words = text.casefold().split()
        wanted = {t.casefold() for t in tags}
        found = []
        for summary in self._summaries.values():
            if wanted and not wanted <= {t.casefold() for t in summary.tags}:
                continue
            if words and not all(w in summary.text for w in words):
                continue
            found.append(summary)
        found.sort(key=lambda s: (s.name.casefold(), s.id))
        return found

    # -- test sets -------------------------------------------------------

    def save_test_set(self, test_set: TestSet) -> TestSet:
        with self._lock:
            saved = test_set.model_copy(update={"updated": utc_now()})
            self._write(self.test_sets_dir / f"{saved.id}.json", saved)
            self.test_sets[saved.id] = saved
            return saved

    def add_test_set_verbatim(self, test_set: TestSet) -> None:
        """Add a test set exactly as given (an import); refused when the id is taken."""
        with self._lock:
            if test_set.id in self.test_sets:
                raise LibraryError(f"a test set with id {test_set.id!r} exists already")
            self._write(self.test_sets_dir / f"{test_set.id}.json", test_set)
            self.test_sets[test_set.id] = test_set

    def test_sets_for(self, prompt_id: str) -> list[TestSet]:
        return sorted(
            (t for t in self.test_sets.values() if t.prompt_id == prompt_id),
            key=lambda t: t.name.casefold(),
        )

    def delete_test_set(self, test_set_id: str) -> None:
        with self._lock:
            if test_set_id not in self.test_sets:
                raise LibraryError(f"no test set with id {test_set_id!r}")
            (self.test_sets_dir / f"{test_set_id}.json").unlink()
            del self.test_sets[test_set_id]

    # -- soft prompts ----------------------------------------------------

    def soft_prompt_tensor_path(self, soft_prompt: SoftPrompt) -> Path:
        return self.soft_prompts_dir / soft_prompt.tensor_file

    def save_soft_prompt(self, soft_prompt: SoftPrompt, tensor_bytes: bytes | None = None) -> None:
        """Save metadata (and the safetensors bytes, written first so metadata never
        points at a missing tensor)."""
        if Path(soft_prompt.tensor_file).name != soft_prompt.tensor_file:
            raise LibraryError(f"tensor file name {soft_prompt.tensor_file!r} must be a plain name")
        with self._lock:
            if tensor_bytes is not None:
                self._put(self.soft_prompt_tensor_path(soft_prompt), tensor_bytes)
            self._write(self.soft_prompts_dir / f"{soft_prompt.id}.json", soft_prompt)
            self.soft_prompts[soft_prompt.id] = soft_prompt

    def soft_prompts_for(self, prompt_id: str) -> list[SoftPrompt]:
        return [s for s in self.soft_prompts.values() if s.prompt_id == prompt_id]

    # -- LoRA adapters ---------------------------------------------------

    def lora_adapter_path(self, adapter: LoraAdapter) -> Path:
        """The adapter's PEFT folder (what `peft.PeftModel.from_pretrained` loads)."""
        return self.lora_adapters_dir / adapter.folder

    def save_lora_adapter(self, adapter: LoraAdapter, files: Mapping[str, bytes]) -> None:
        """Save an adapter: its folder's files (plain names, written first so the
        metadata never points at a missing folder), then its metadata."""
        if Path(adapter.folder).name != adapter.folder or adapter.folder in ("", ".", ".."):
            raise LibraryError(f"adapter folder name {adapter.folder!r} must be a plain name")
        for name in files:
            if Path(name).name != name or name.startswith("."):
                raise LibraryError(f"adapter file name {name!r} must be a plain name")
        with self._lock:
            folder = self.lora_adapter_path(adapter)
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                self._put(folder / name, data)
            self._write(self.lora_adapters_dir / f"{adapter.id}.json", adapter)
            self.lora_adapters[adapter.id] = adapter

    def lora_adapters_for(self, prompt_id: str) -> list[LoraAdapter]:
        """The prompt's adapters, newest first."""
        found = [a for a in self.lora_adapters.values() if a.prompt_id == prompt_id]
        return sorted(found, key=lambda a: (a.created, a.id), reverse=True)

    def delete_lora_adapter(self, adapter_id: str) -> None:
        """Remove an adapter's metadata and its folder."""
        with self._lock:
            adapter = self.lora_adapters.get(adapter_id)
            if adapter is None:
                raise LibraryError(f"no LoRA adapter with id {adapter_id!r}")
            (self.lora_adapters_dir / f"{adapter_id}.json").unlink()
            shutil.rmtree(self.lora_adapter_path(adapter), ignore_errors=True)
            del self.lora_adapters[adapter_id]

    # -- runs ------------------------------------------------------------

    def save_run(self, record: RunRecord) -> RunRecord:
        folder = self.runs_dir / (record.prompt_id or "_adhoc")
        with self._lock:
            self._write(folder / f"{record.id}.json", record)
        return record

    def runs_for(self, prompt_id: str) -> list[RunRecord]:
        """The prompt's stored runs, newest first (unreadable ones are reported, skipped)."""
        folder = self.runs_dir / prompt_id
        runs: list[RunRecord] = []
        if folder.exists():
            for path in folder.glob("*.json"):
                try:
                    document = read_document(path)
                except SchemaError as exc:
                    self._report([LoadProblem(path, str(exc))])
                    continue
                if isinstance(document, RunRecord):
                    runs.append(document)
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        return runs

    # -- evaluation runs ---------------------------------------------------

    def save_eval_run(self, run: EvalRun) -> EvalRun:
        folder = self.root / "evals" / (run.prompt_id or "_adhoc")
        with self._lock:
            self._write(folder / f"{run.id}.json", run)
        return run

    def eval_runs_for(self, prompt_id: str) -> list[EvalRun]:
        """The prompt's stored evaluations, newest first."""
        folder = self.root / "evals" / prompt_id
        runs: list[EvalRun] = []
        if folder.exists():
            for path in folder.glob("*.json"):
                document, problems, _ = load_one(path, EvalRun)
                self._report(problems)
                if document is not None:
                    runs.append(document)
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        return runs

    # -- bulk ------------------------------------------------------------

    def documents(self) -> Iterator[Document]:
        yield from self.prompts.values()
        yield from self.test_sets.values()
        yield from self.soft_prompts.values()

    def is_empty(self) -> bool:
        return not (self._summaries or self.test_sets or self.soft_prompts or self.lora_adapters)


def load_one(path: Path, kind: type[_D]) -> tuple[_D | None, list[LoadProblem], set[Path]]:
    """Read one library file expected to hold a `kind` named after its id."""
    try:
        document = read_document(path)
    except SchemaError as exc:
        detail = "; ".join(f"{loc or 'file'}: {msg}" for loc, msg in exc.problems)
        return None, [LoadProblem(path, detail)], {path}
    if not isinstance(document, kind):
        problem = LoadProblem(path, f"holds a {document.kind}, expected {kind.__name__}")
        return None, [problem], {path}
    if path.stem != document.id:
        problem = LoadProblem(path, f"file name does not match its id {document.id!r}")
        return None, [problem], {path}
    return document, [], set()


def load_folder(folder: Path, kind: type[_D]) -> tuple[dict[str, _D], list[LoadProblem], set[Path]]:
    """Read every document of one kind in a folder: (by id, problems, unreadable paths)."""
    loaded: dict[str, _D] = {}
    problems: list[LoadProblem] = []
    bad: set[Path] = set()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return loaded, [LoadProblem(folder, f"cannot list: {exc}")], bad
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue  # temp files of writes in progress
        if kind is SoftPrompt and entry.name.endswith(".safetensors"):
            continue
        if kind is LoraAdapter and entry.is_dir():
            continue  # an adapter's PEFT folder, beside its metadata
        if not entry.name.endswith(".json") or not entry.is_file():
            problems.append(LoadProblem(path, "unknown file; ignored"))
            continue
        document, found, unreadable = load_one(path, kind)
        problems += found
        bad |= unreadable
        if document is None:
            continue
        loaded[document.id] = document
    return loaded, problems, bad


def seed_library(library: Library, source: Path) -> list[str]:
    """Copy a sample library folder into `library`; documents whose id exists are skipped.
    Returns the names of what was added."""
    prompts, problems, _ = load_folder(source / "prompts", Prompt)
    test_sets, more, _ = load_folder(source / "test_sets", TestSet)
    problems += more
    if problems:
        raise LibraryError("the sample library is damaged: " + "; ".join(map(str, problems)))
    added: list[str] = []
    for prompt in prompts.values():
        if prompt.id not in library.prompts:
            library.save_prompt(prompt)
            added.append(prompt.name)
    for test_set in test_sets.values():
        if test_set.id not in library.test_sets:
            library.save_test_set(test_set)
            added.append(test_set.name)
    return added
