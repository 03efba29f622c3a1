"""What changed between two versions of a prompt, field by field, as text people read.

Each field (name, system message, user template, examples, chain of thought,
parameters, …) is shown as lines of text — multi-line text as its own lines, never as
JSON with escapes — and compared line by line; only the fields that changed appear.
The app's History and `workbench library history --diff` read the same changes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from workbench.core.models import Prompt

LineKind = Literal["same", "added", "removed", "gap"]


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind  # "gap": unchanged lines left out
    text: str


@dataclass(frozen=True)
class FieldChange:
    field: str  # the field's name as the app shows it
    lines: list[DiffLine]


def _text(value: str) -> list[str]:
    return value.splitlines() or ([""] if value else [])


def _block(label: str, value: str) -> list[str]:
    """`label: value` for one line; a multi-line value indented under its label."""
    lines = value.splitlines()
    if len(lines) <= 1:
        return [f"{label}: {value}"]
    return [f"{label}:", *(f"    {line}" for line in lines)]


def _value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _mapping(values: dict[str, object]) -> list[str]:
    lines: list[str] = []
    for key, value in values.items():
        lines += _block(key, _value(value))
    return lines


def _variables(prompt: Prompt) -> list[str]:
    lines: list[str] = []
    for variable in prompt.variables:
        extra = [f"default {variable.default!r}"] if variable.default is not None else []
        extra += [variable.description] if variable.description else []
        lines.append(variable.name + (f" ({', '.join(extra)})" if extra else ""))
    return lines


def _examples(prompt: Prompt) -> list[str]:
    few = prompt.few_shot
    lines = [
        f"style: {few.style.value}",
        f"order: {few.order.value}",
        f"count: {'all' if few.count is None else few.count}",
    ]
    for i, example in enumerate(few.examples, start=1):
        lines.append(f"Example {i}")
        if example.vars:
            lines += [f"  {line}" for line in _mapping(dict(example.vars))]
        else:
            lines += [f"  {line}" for line in _block("input", example.input)]
        lines += [f"  {line}" for line in _block("output", example.output)]
    return lines


def _few_shot_format(prompt: Prompt) -> list[str]:
    few = prompt.few_shot
    return [
        *_block("example format", few.example_format),
        *_block("header", few.inline_header),
        f"separator: {json.dumps(few.separator)}",
        f"seed: {few.seed}",
    ]


def _chain_of_thought(prompt: Prompt) -> list[str]:
    cot = prompt.cot
    lines = [
        f"mode: {cot.mode.value}",
        *_block("trigger", cot.trigger),
        *_block("scaffold", cot.scaffold),
    ]
    lines.append(f"answer pattern: {cot.answer_pattern or '(none)'}")
    for step in cot.steps:
        lines.append(f"Step {step.name}")
        lines += [f"  {line}" for line in _block("template", step.template)]
        if step.system is not None:
            lines += [f"  {line}" for line in _block("system", step.system)]
    return lines


def _params(prompt: Prompt) -> list[str]:
    return _mapping(prompt.params.model_dump(mode="json"))


FIELDS: list[tuple[str, Callable[[Prompt], list[str]]]] = [
    ("Name", lambda p: [p.name]),
    ("Description", lambda p: _text(p.description)),
    ("Tags", lambda p: [", ".join(p.tags)] if p.tags else []),
    ("Labels", lambda p: [", ".join(p.labels)] if p.labels else []),
    ("System message", lambda p: _text(p.system)),
    ("User template", lambda p: _text(p.user_template)),
    ("Variables", _variables),
    ("Few-shot examples", _examples),
    ("Few-shot format", _few_shot_format),
    ("Chain of thought", _chain_of_thought),
    ("Parameters", _params),
    ("Model", lambda p: [p.model or "(the default)"]),
    ("Sample values", lambda p: _mapping(dict(p.sample_values))),
]


def _compare(before: list[str], after: list[str], context: int) -> list[DiffLine]:
    lines: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    groups = list(matcher.get_grouped_opcodes(context))
    for group in groups:
        _tag, i1, _i2, j1, _j2 = group[0]
        if i1 > 0 or j1 > 0:
            lines.append(DiffLine("gap", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("same", t) for t in before[i1:i2]]
                continue
            lines += [DiffLine("removed", t) for t in before[i1:i2]]
            lines += [DiffLine("added", t) for t in after[j1:j2]]
    if groups:
        _tag, _i1, i2, _j1, j2 = groups[-1][-1]
        if i2 < len(before) or j2 < len(after):
            lines.append(DiffLine("gap", "…"))
    return lines


def prompt_changes(before: Prompt, after: Prompt, context: int = 3) -> list[FieldChange]:
    """The fields that differ from `before` to `after`, each with its changed lines and
    up to `context` unchanged lines around them."""
    changes: list[FieldChange] = []
    for field, lines_of in FIELDS:
        old, new = lines_of(before), lines_of(after)
        if old != new:
            changes.append(FieldChange(field, _compare(old, new, context)))
    return changes


MARKS: dict[LineKind, str] = {"same": "  ", "added": "+ ", "removed": "- ", "gap": "  "}


def changes_text(changes: list[FieldChange]) -> str:
    """The changes as plain text: a heading per field, then its lines marked `+ `
    (added), `- ` (removed) or two spaces (unchanged)."""
    out: list[str] = []
    for change in changes:
        if out:
            out.append("")
        out.append(f"── {change.field} ──")
        out += [MARKS[line.kind] + line.text for line in change.lines]
    return "\n".join(out)
