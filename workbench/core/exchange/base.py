"""What every exchange format shares: the import error, the parsed package, the export set.

An importer only parses and validates: it turns outside bytes into a `Package` of
validated documents or raises `ImportFailed` with every problem it found and where.
Nothing is written until the user has seen the plan (`workbench.core.exchange.plan`).
Outside files are data, never code: YAML is read with the safe loader, nothing is
unpickled, templates are parsed at most (to list variables), never rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from workbench.core import names
from workbench.core.flows.report import count
from workbench.core.library import Library
from workbench.core.models import LoraAdapter, Prompt, SchemaError, SoftPrompt, TestSet
from workbench.core.peft_io import CONFIG_FILE, WEIGHTS_FILE

MAX_TEXT_BYTES = 32 * 1024 * 1024
"""A text format file larger than this is refused before it is parsed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported file: where (file, then line or JSON path) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ImportFailed(ValueError):
    """The file cannot be imported; nothing was written. `problems` lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(f"cannot import ({count(len(self.problems), 'problem')}):\n{shown}{tail}")


class ExportFailed(ValueError):
    """The selection cannot be written in this format; the message says why."""


@dataclass
class ImportedPrompt:
    prompt: Prompt
    history: list[Prompt] = field(default_factory=list)  # earlier versions, oldest first


@dataclass
class Package:
    """Validated documents parsed from outside files, not yet in any library."""

    prompts: list[ImportedPrompt] = field(default_factory=list)
    test_sets: list[TestSet] = field(default_factory=list)
    soft_prompts: list[tuple[SoftPrompt, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what this format did not carry over
    # each adapter with its PEFT folder's files (adapter_config.json, the safetensors)
    lora_adapters: list[tuple[LoraAdapter, dict[str, bytes]]] = field(default_factory=list)

    def extend(self, other: Package) -> None:
        self.prompts += other.prompts
        self.test_sets += other.test_sets
        self.soft_prompts += other.soft_prompts
        self.lora_adapters += other.lora_adapters
        self.notes += [n for n in other.notes if n not in self.notes]


@dataclass
class ExportSet:
    """What an export writes: prompts with their history, test sets, soft prompts and
    LoRA adapters (with their PEFT folder's files)."""

    prompts: list[Prompt]
    history: dict[str, list[Prompt]]
    test_sets: list[TestSet]
    soft_prompts: list[tuple[SoftPrompt, bytes]]
    whole_library: bool
    lora_adapters: list[tuple[LoraAdapter, dict[str, bytes]]] = field(default_factory=list)

    def test_sets_of(self, prompt_id: str) -> list[TestSet]:
        return [t for t in self.test_sets if t.prompt_id == prompt_id]


def collect(library: Library, prompt_ids: Sequence[str] | None = None) -> ExportSet:
    """The export set of some prompts (with their test sets, soft prompts and LoRA
    adapters), or of the whole library (also those that belong to no prompt)."""
    whole = prompt_ids is None
    ids = sorted(library.prompts) if prompt_ids is None else list(dict.fromkeys(prompt_ids))
    prompts = [library.get_prompt(i) for i in ids]
    chosen = set(ids)
    history = {p.id: library.history(p.id)[:-1] for p in prompts}
    test_sets = sorted(
        (t for t in library.test_sets.values() if whole or t.prompt_id in chosen),
        key=lambda t: (t.prompt_id or "", t.name.casefold(), t.id),
    )
    soft: list[tuple[SoftPrompt, bytes]] = []
    for sp in sorted(library.soft_prompts.values(), key=lambda s: s.id):
        if whole or sp.prompt_id in chosen:
            path = library.soft_prompt_tensor_path(sp)
            try:
                soft.append((sp, path.read_bytes()))
            except OSError as exc:
                raise ExportFailed(f"soft prompt {sp.name!r}: cannot read {path}: {exc}") from None
    adapters: list[tuple[LoraAdapter, dict[str, bytes]]] = []
    for adapter in sorted(library.lora_adapters.values(), key=lambda a: a.id):
        if whole or adapter.prompt_id in chosen:
            folder = library.lora_adapter_path(adapter)
            try:
                files = {n: (folder / n).read_bytes() for n in (CONFIG_FILE, WEIGHTS_FILE)}
            except OSError as exc:
                raise ExportFailed(
                    f"LoRA adapter {adapter.name!r}: cannot read {folder}: {exc}"
                ) from None
            adapters.append((adapter, files))
    return ExportSet(prompts, history, test_sets, soft, whole, adapters)


class Format(Protocol):
    """One exchange format: a module under workbench/core/exchange/ satisfies this."""

    NAME: str
    LABEL: str
    EXTENSIONS: tuple[str, ...]
    ONE_PROMPT_PER_FILE: bool
    LOSSLESS: bool
    CAN_IMPORT: bool
    EXPORT_LOSSES: tuple[str, ...]
    IMPORT_LOSSES: tuple[str, ...]

    def export_bytes(self, items: ExportSet) -> dict[str, bytes]:
        """File name → content (one entry, or one per prompt for per-prompt formats)."""
        ...

    def parse(self, data: bytes, source: str) -> Package:
        """Validated documents, or ImportFailed (`can_import` False: never called)."""
        ...


# -- helpers shared by the text formats ---------------------------------------


def decode_text(data: bytes, source: str) -> str:
    if len(data) > MAX_TEXT_BYTES:
        raise ImportFailed([Problem(source, f"larger than {MAX_TEXT_BYTES >> 20} MiB; refused")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed([Problem(source, f"not UTF-8 text (byte {exc.start})")]) from None
    return text.removeprefix("\ufeff")


def _no_alias_loader() -> type:
    """The safe loader (plain data, no tags that construct objects) that also refuses
    aliases: `*name` shares a node, and a few nested ones expand to gigabytes once the
    data is turned into text ("billion laughs")."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are not accepted in imported files",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    return NoAliasLoader


def load_yaml(text: str, source: str) -> Any:
    """YAML with the safe loader, without aliases."""
    import yaml

    try:
        return yaml.load(text, Loader=_no_alias_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ImportFailed([Problem(where, f"not valid YAML: {exc.problem or exc}")]) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        # ValueError: e.g. an integer of more than 4300 digits
        raise ImportFailed([Problem(source, f"not valid YAML: {exc}")]) from None


def load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{source}:{exc.lineno}:{exc.colno}"
        raise ImportFailed([Problem(where, f"not valid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise ImportFailed([Problem(source, "JSON nested too deeply")]) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ImportFailed([Problem(source, f"not valid JSON: {exc}")]) from None


def schema_problems(exc: SchemaError, where: str) -> list[Problem]:
    return [Problem(f"{where}.{loc}" if loc else where, msg) for loc, msg in exc.problems]


class Collector:
    """Gathers problems while a file is read, so the user sees all of them at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(f"{self.source}: {path}" if path else self.source, message))

    def check(self) -> None:
        if self.problems:
            raise ImportFailed(self.problems)

    def fail(self, path: str, message: str) -> NoReturn:
        self.add(path, message)
        raise ImportFailed(self.problems)


def text_value(value: Any) -> str:
    """A variable value from a data format, as the text a template receives (dates and
    other YAML scalars as their text; lists and maps as JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        try:
            return str(value)
        except ValueError:  # an integer too long to print
            return "(a number too long to show)"
    if not isinstance(value, list | dict | tuple):
        return str(value)  # a date, time, bytes or set from YAML: its text
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def slug(name: str) -> str:
    """A file name stem from a prompt name."""
    return names.slug(name, "prompt")


def unique_file_names(prompts: Sequence[Prompt], suffix: str) -> Iterator[tuple[Prompt, str]]:
    """Each prompt with a file name of its own ("name.json", "name-2.json", … ignoring
    case, since the folder may be on a case-insensitive disk)."""
    # every name ends in the same suffix, so comparing the stems is enough
    seen: set[str] = set()
    for prompt in prompts:
        stem = names.unique_name(slug(prompt.name), seen, "{stem}-{n}", casefold=True)
        seen.add(stem)
        yield prompt, f"{stem}{suffix}"


__all__ = [
    "MAX_TEXT_BYTES",
    "Collector",
    "ExportFailed",
    "ExportSet",
    "Format",
    "ImportFailed",
    "ImportedPrompt",
    "Package",
    "Problem",
    "collect",
]
