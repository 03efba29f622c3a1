"""Import plans: what an import will add, what clashes with the library and how each clash
is resolved — shown to the user before anything is written, then applied in one
library transaction (all or nothing).

Rules:
- a prompt whose id — or, for formats without ids, whose name — is in the library with
  the same content is *unchanged*;
- a prompt whose id or name is taken is a *clash*, resolved as
  - `copy`: added under a new id and a free name ("Name (2)"), the default;
  - `replace`: becomes a new version of the existing prompt (the old content stays in its
    history, so nothing is lost);
  - `skip`: not imported (nor its test sets and soft prompts);
- test sets, soft prompts and LoRA adapters follow their prompt; they are never
  overwritten: one whose id is taken is added under a new id, unless it is identical
  (then it is unchanged).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from workbench.core.exchange.base import Package
from workbench.core.fsutil import Cancelled
from workbench.core.library import Library, LibraryError
from workbench.core.models import LoraAdapter, Prompt, SoftPrompt, TestSet, new_id
from workbench.core.names import unique_name


class Resolution(StrEnum):
    ADD = "add"
    COPY = "copy"
    REPLACE = "replace"
    SKIP = "skip"
    UNCHANGED = "unchanged"


CLASH_POLICIES = (Resolution.COPY, Resolution.REPLACE, Resolution.SKIP)


@dataclass
class PlanItem:
    kind: str  # "prompt", "test set", "soft prompt", "LoRA adapter"
    name: str
    source_id: str
    resolution: Resolution
    choices: tuple[Resolution, ...] = ()
    clash: str = ""  # what it clashes with, for the user
    target_id: str | None = None  # the library prompt a replace writes to
    parent: int | None = None  # index of the prompt item a test set / soft prompt / adapter follows

    def describe(self) -> str:
        if self.resolution is Resolution.ADD:
            return "add"
        if self.resolution is Resolution.UNCHANGED:
            return "already in the library (unchanged)"
        if self.resolution is Resolution.SKIP:
            return "skip"
        if self.resolution is Resolution.REPLACE:
            return "replace: a new version of the existing prompt"
        return "add as a copy"


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)
    # replaced prompts whose unsaved draft became a version before the imported one
    drafts_kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.replaced)} replaced (as new versions)",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.skipped)} skipped",
        ]
        text = ", ".join(parts)
        if self.drafts_kept:
            names = ", ".join(self.drafts_kept)
            text += f"; the unsaved edits of {names} were saved as a version first (see History)"
        return text


class ImportPlan:
    """A package matched against a library. Change resolutions with `resolve`, then
    `apply`. The library is not touched until then."""

    def __init__(self, library: Library, package: Package, source: str) -> None:
        self.library = library
        self.package = package
        self.source = source
        self.items: list[PlanItem] = []
        by_name: dict[str, list[str]] = {}
        for summary in library.search():
            by_name.setdefault(summary.name.casefold(), []).append(summary.id)
        # ids name files: on a case-insensitive file system "AB" would overwrite "ab"
        folded_ids = {
            i.casefold(): i
            for i in (
                *library.prompts,
                *library.test_sets,
                *library.soft_prompts,
                *library.lora_adapters,
            )
        }
        seen: set[tuple[str, str]] = set()
        for imported in package.prompts:
            prompt = imported.prompt
            if self._repeated("prompt", prompt.id, prompt.name, seen):
                continue
            same_id = prompt.id in library.prompts
            if same_id and library.get_prompt(prompt.id).content_equal(prompt):
                self.items.append(PlanItem("prompt", prompt.name, prompt.id, Resolution.UNCHANGED))
                continue
            if not same_id and prompt.id.casefold() in folded_ids:
                clash = f"its id differs only in case from {folded_ids[prompt.id.casefold()]!r}"
                self.items.append(
                    PlanItem(
                        "prompt",
                        prompt.name,
                        prompt.id,
                        Resolution.COPY,
                        (Resolution.COPY, Resolution.SKIP),
                        clash,
                    )
                )
                continue
            if same_id:
                existing = library.get_prompt(prompt.id)
                clash = f"its id is taken by “{existing.name}” (v{existing.version})"
                self.items.append(
                    PlanItem(
                        "prompt",
                        prompt.name,
                        prompt.id,
                        Resolution.COPY,
                        CLASH_POLICIES,
                        clash,
                        prompt.id,
                    )
                )
                continue
            namesakes = by_name.get(prompt.name.casefold(), [])
            if len(namesakes) == 1:
                existing = library.get_prompt(namesakes[0])
                if existing.model_copy(update={"id": prompt.id}).content_equal(prompt):
                    item = PlanItem("prompt", prompt.name, prompt.id, Resolution.UNCHANGED)
                    item.target_id = existing.id
                    self.items.append(item)
                    continue
            if namesakes:
                target = namesakes[0] if len(namesakes) == 1 else None
                choices = CLASH_POLICIES if target else (Resolution.COPY, Resolution.SKIP)
                clash = (
                    "a prompt with this name exists"
                    if target
                    else f"{len(namesakes)} prompts with this name exist"
                )
                self.items.append(
                    PlanItem(
                        "prompt",
                        prompt.name,
                        prompt.id,
                        Resolution.COPY,
                        choices,
                        clash,
                        target,
                    )
                )
                continue
            self.items.append(PlanItem("prompt", prompt.name, prompt.id, Resolution.ADD))
        prompt_index: dict[str, int] = {}
        for i, imported in enumerate(package.prompts):
            prompt_index.setdefault(imported.prompt.id, i)
        for test_set in package.test_sets:
            existing_ts = library.test_sets.get(test_set.id)
            parent = prompt_index.get(test_set.prompt_id or "")
            same = existing_ts is not None and _same_test_set(existing_ts, test_set)
            # a format without ids, imported again: the prompt already has this set
            same = same or self._twin_exists(test_set, parent)
            self._add_child("test set", test_set, parent, same, seen, folded_ids)
        for soft, tensor in package.soft_prompts:
            existing_sp = library.soft_prompts.get(soft.id)
            same = (
                existing_sp is not None
                and existing_sp == soft
                and _same_bytes(library.soft_prompt_tensor_path(existing_sp), tensor)
            )
            parent = prompt_index.get(soft.prompt_id or "")
            self._add_child("soft prompt", soft, parent, same, seen, folded_ids)
        for adapter, files in package.lora_adapters:
            existing_lora = library.lora_adapters.get(adapter.id)
            same = (
                existing_lora is not None
                and existing_lora.model_copy(update={"folder": adapter.folder}) == adapter
                and all(
                    _same_bytes(library.lora_adapter_path(existing_lora) / name, data)
                    for name, data in files.items()
                )
            )
            parent = prompt_index.get(adapter.prompt_id or "")
            self._add_child("LoRA adapter", adapter, parent, same, seen, folded_ids)

    def _add_child(
        self,
        kind: str,
        doc: TestSet | SoftPrompt | LoraAdapter,
        parent: int | None,
        same: bool,
        seen: set[tuple[str, str]],
        folded_ids: dict[str, str],
    ) -> None:
        """A test set, soft prompt or adapter: unchanged when the library has it, else
        added — under a new id when its id is taken (they are never overwritten)."""
        if self._repeated(kind, doc.id, doc.name, seen):
            return
        if same:
            resolution, clash = Resolution.UNCHANGED, ""
        elif doc.id.casefold() in folded_ids:
            resolution, clash = Resolution.COPY, "its id is taken; added under a new id"
        else:
            resolution, clash = Resolution.ADD, ""
        item = PlanItem(kind, doc.name, doc.id, resolution, (), clash)
        item.parent = parent
        self.items.append(item)

    def _twin_exists(self, test_set: TestSet, parent: int | None) -> bool:
        """The library prompt this test set's prompt matches already has the same set
        (same name and rows) under another id."""
        if parent is None:
            return False
        item = self.items[parent]
        owner = item.target_id or (
            item.source_id if item.source_id in self.library.prompts else None
        )
        if owner is None:
            return False
        return any(
            t.name == test_set.name and t.rows == test_set.rows
            for t in self.library.test_sets_for(owner)
        )

    def _repeated(self, kind: str, doc_id: str, name: str, seen: set[tuple[str, str]]) -> bool:
        """A document met twice in one import (two files holding it) is imported once."""
        if (kind, doc_id.casefold()) in seen:
            clash = "appears more than once in what is imported; imported once"
            self.items.append(PlanItem(kind, name, doc_id, Resolution.SKIP, (), clash))
            return True
        seen.add((kind, doc_id.casefold()))
        return False

    # -- choosing --------------------------------------------------------------

    @property
    def notes(self) -> list[str]:
        return self.package.notes

    @property
    def template_problems(self) -> list[str]:
        """Templates in the file that would certainly exceed the render limits (checked
        without rendering): the preview shows them; they import, and refuse to render."""
        from workbench.core.templates import prompt_template_problems

        return [
            problem
            for item in self.package.prompts
            for problem in prompt_template_problems(item.prompt)
        ]

    def clashes(self) -> list[int]:
        return [i for i, item in enumerate(self.items) if item.choices]

    def resolve(self, index: int, resolution: Resolution) -> None:
        item = self.items[index]
        if resolution not in item.choices:
            raise ValueError(f"{item.name!r} cannot be resolved as {resolution}")
        item.resolution = resolution

    def resolve_all(self, resolution: Resolution) -> None:
        """One policy for every clash (where it applies; `replace` falls back to `copy`
        for a name shared by several prompts)."""
        for index in self.clashes():
            choices = self.items[index].choices
            self.items[index].resolution = resolution if resolution in choices else Resolution.COPY

    def effective(self, index: int) -> Resolution:
        """An item's resolution after its prompt's: a skipped prompt skips its test sets,
        soft prompts and adapters; a prompt added as a copy takes copies of them along."""
        item = self.items[index]
        if item.parent is not None:
            parent = self.items[item.parent].resolution
            if parent in (Resolution.SKIP, Resolution.COPY):
                return parent
        return item.resolution

    def preview(self) -> list[str]:
        lines = []
        for i, item in enumerate(self.items):
            resolution = self.effective(i)
            what = (
                item.describe()
                if resolution is item.resolution
                else f"{resolution} (as its prompt)"
            )
            clash = f" — {item.clash}" if item.clash else ""
            lines.append(f"{item.kind:<11} {item.name}: {what}{clash}")
        return lines

    # -- applying --------------------------------------------------------------

    def apply(self, cancel: threading.Event | None = None) -> ImportResult:
        """Write everything the plan says, in one transaction: on any error the library
        is left as it was and the error propagates. A set `cancel` stops it before the
        next item (`Cancelled`), and what was written is undone too."""
        library = self.library
        result = ImportResult()
        prompt_ids: dict[str, str] = {}  # imported id -> id in the library
        taken = {s.name.casefold() for s in library.search()}
        stale_drafts: list[str] = []  # dropped once everything is written

        def check() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("the import was stopped; nothing was imported")

        with library.transaction():
            for i, imported in enumerate(self.package.prompts):
                check()
                item = self.items[i]
                prompt = imported.prompt
                match self.effective(i):
                    case Resolution.UNCHANGED:
                        prompt_ids[prompt.id] = item.target_id or prompt.id
                        result.unchanged.append(prompt.name)
                    case Resolution.SKIP:
                        result.skipped.append(prompt.name)
                    case Resolution.ADD:
                        library.add_prompt_verbatim(prompt, imported.history, note="imported")
                        taken.add(prompt.name.casefold())
                        prompt_ids[prompt.id] = prompt.id
                        result.added.append(prompt.name)
                    case Resolution.COPY:
                        copy_id = new_id()
                        name = _free_name(prompt.name, taken)
                        taken.add(name.casefold())
                        history = [h.model_copy(update={"id": copy_id}) for h in imported.history]
                        copy = prompt.model_copy(update={"id": copy_id, "name": name})
                        library.add_prompt_verbatim(copy, history, note="imported as a copy")
                        prompt_ids[prompt.id] = copy_id
                        result.added.append(name)
                    case Resolution.REPLACE:
                        assert item.target_id is not None
                        existing = library.get_prompt(item.target_id)
                        draft = library.draft(existing.id)
                        if draft is not None and not draft.content_equal(existing):
                            # unsaved edits would otherwise reopen over the import (or be
                            # lost): they become the version before it
                            existing = library.save_prompt(
                                draft.model_copy(update={"version": existing.version}),
                                note="unsaved edits, kept before an import",
                            )
                            result.drafts_kept.append(existing.name)
                        if draft is not None:
                            stale_drafts.append(existing.id)
                        update = prompt.model_copy(
                            update={"id": existing.id, "version": existing.version}
                        )
                        library.save_prompt(
                            Prompt.model_validate(update.model_dump()), note="imported"
                        )
                        prompt_ids[prompt.id] = existing.id
                        result.replaced.append(existing.name)
            children: list[
                tuple[TestSet | SoftPrompt | LoraAdapter, bytes | dict[str, bytes] | None]
            ] = [
                *((t, None) for t in self.package.test_sets),
                *self.package.soft_prompts,
                *self.package.lora_adapters,
            ]
            for index, (doc, tensor) in enumerate(children, start=len(self.package.prompts)):
                check()
                resolution = self.effective(index)
                if resolution in (Resolution.SKIP, Resolution.UNCHANGED):
                    bucket = result.skipped if resolution is Resolution.SKIP else result.unchanged
                    bucket.append(doc.name)
                    continue
                linked = _relink(doc, prompt_ids, resolution)
                if isinstance(linked, TestSet):
                    library.add_test_set_verbatim(linked)
                elif isinstance(linked, LoraAdapter):
                    if linked.id in library.lora_adapters:
                        raise LibraryError(f"a LoRA adapter with id {linked.id!r} exists already")
                    assert isinstance(tensor, dict)
                    library.save_lora_adapter(linked, tensor)
                else:
                    if linked.id in library.soft_prompts:
                        raise LibraryError(f"a soft prompt with id {linked.id!r} exists already")
                    assert isinstance(tensor, bytes)
                    library.save_soft_prompt(linked, tensor)
                result.added.append(linked.name)
        for prompt_id in stale_drafts:  # after the transaction: a failed import keeps them
            library.discard_draft(prompt_id)
        result.prompt_ids = [
            prompt_ids[p.prompt.id] for p in self.package.prompts if p.prompt.id in prompt_ids
        ]
        return result


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, or "name (2)", "name (3)", … (`taken` holds casefolded names)."""
    return unique_name(name, taken, "{stem} ({n})", casefold=True)


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _same_test_set(a: TestSet, b: TestSet) -> bool:
    skip = {"updated", "created"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


def _relink(
    doc: TestSet | SoftPrompt | LoraAdapter, prompt_ids: dict[str, str], resolution: Resolution
) -> TestSet | SoftPrompt | LoraAdapter:
    """Point a test set, soft prompt or adapter at its prompt's id in the library (a new
    id when it is added as a copy)."""
    update: dict[str, object] = {}
    if doc.prompt_id is not None and doc.prompt_id in prompt_ids:
        update["prompt_id"] = prompt_ids[doc.prompt_id]
    if resolution is Resolution.COPY:
        fresh = new_id()
        update["id"] = fresh
        if isinstance(doc, SoftPrompt):
            update["tensor_file"] = f"{fresh}.safetensors"
        if isinstance(doc, LoraAdapter):
            update["folder"] = fresh
    return doc.model_copy(update=update)


def plan_import(
    library: Library, package: Package, source: str, on_clash: Resolution = Resolution.COPY
) -> ImportPlan:
    plan = ImportPlan(library, package, source)
    plan.resolve_all(on_clash)
    return plan
