"""Finding library items by name or id, and reading example and test-set files.

One reader per kind of file, so the app, the command line and the tests agree on
encodings and newlines: files are decoded from bytes (UTF-8, an optional BOM) rather
than read with universal newlines, which would turn a "\\r" inside a CSV cell into "\\n".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from workbench.core.examples_io import parse_examples_csv, parse_examples_jsonl
from workbench.core.library import Library, read_document
from workbench.core.models import (
    FewShotExample,
    LoraAdapter,
    Prompt,
    SoftPrompt,
    TestRow,
    TestSet,
)
from workbench.core.placement import VirtualTokens
from workbench.core.testsets_io import parse_test_set_csv, parse_test_set_jsonl


class NotFoundError(LookupError):
    """No single library item answers to a name or id; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class FileReadError(ValueError):
    """A file could not be read as text (missing, unreadable, not UTF-8)."""


_Item = TypeVar("_Item", SoftPrompt, LoraAdapter, TestSet)


def _find_one(items: Iterable[_Item], ref: str, what: str) -> _Item:
    pool = list(items)
    by_id = [item for item in pool if item.id == ref]
    matches = by_id or [item for item in pool if item.name == ref]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{item.id} ({item.name})" for item in pool) or "none"
    many = "more than one" if matches else "no single"  # the CLI's wording: scripts match on it
    raise NotFoundError(f"{many} {what} {ref!r} in the library (known: {known})")


def find_soft_prompt(library: Library, ref: str) -> SoftPrompt:
    """The soft prompt with this id, else the only one with this name."""
    return _find_one(library.soft_prompts.values(), ref, "soft prompt")


def find_lora_adapter(library: Library, ref: str) -> LoraAdapter:
    """The LoRA adapter with this id, else the only one with this name."""
    return _find_one(library.lora_adapters.values(), ref, "LoRA adapter")


def find_test_set(library: Library, ref: str) -> TestSet:
    """The test set with this id, else the only one with this name."""
    return _find_one(library.test_sets.values(), ref, "test set")


def load_soft_prompt(library: Library, soft: SoftPrompt) -> Any:
    """The soft prompt's [N, d] tensor (numpy), read from the library."""
    from workbench.core.softprompt import load_soft_prompt_tensor

    return load_soft_prompt_tensor(library.soft_prompt_tensor_path(soft))


def load_virtual_tokens(library: Library, soft: SoftPrompt) -> VirtualTokens:
    """The soft prompt ready to run: its tensor and its placement."""
    return VirtualTokens(load_soft_prompt(library, soft), soft.placement)


def read_text_file(path: Path) -> str:
    """A text file's content: decoded from bytes (UTF-8, a BOM dropped), newlines kept."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileReadError(f"could not read {path.name}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileReadError(
            f"could not read {path.name}: not UTF-8 text (byte {exc.start})"
        ) from exc


def _is_jsonl(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return True
    return suffix not in (".csv", ".tsv", ".txt") and text.lstrip().startswith("{")


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def read_examples_file(path: Path, variables: Sequence[str] | None = None) -> list[FewShotExample]:
    """Few-shot examples from a CSV, TSV or JSONL file (all or nothing: any problem
    raises `ExamplesFormatError` listing every one with its line)."""
    text = read_text_file(path)
    if _is_jsonl(path, text):
        return parse_examples_jsonl(text, variables, source=path.name)
    return parse_examples_csv(text, variables, delimiter=_delimiter(path), source=path.name)


def read_test_rows_file(path: Path) -> list[TestRow]:
    """Test rows from a CSV, TSV or JSONL file (all or nothing, like the examples)."""
    text = read_text_file(path)
    if _is_jsonl(path, text):
        return parse_test_set_jsonl(text, source=path.name)
    return parse_test_set_csv(text, source=path.name, delimiter=_delimiter(path))


def read_test_set_file(path: Path) -> TestSet:
    """A test set from a file: rows from CSV/TSV/JSONL (named after the file), or a
    library test-set document (.json)."""
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson", ".txt"):
        return TestSet(name=path.stem, rows=read_test_rows_file(path))
    document = read_document(path)
    if not isinstance(document, TestSet):
        raise FileReadError(f"{path} holds a {document.kind}, not a test set")
    return document


def resolve_test_set(library: Library | None, prompt: Prompt, ref: str | None) -> TestSet:
    """The test set a flow runs on: `ref` as a file, a name or an id; without one, the
    prompt's first test set."""
    if ref is None:
        found = library.test_sets_for(prompt.id) if library is not None else []
        if not found:
            raise NotFoundError(f"prompt {prompt.name!r} has no test set; pass --test-set FILE")
        return found[0]
    path = Path(ref)
    if path.is_file():
        return read_test_set_file(path)
    if library is not None:
        try:
            return find_test_set(library, ref)
        except NotFoundError:
            pass
    raise NotFoundError(f"no test set {ref!r} (give its name, id, or a .csv/.jsonl/.json file)")
