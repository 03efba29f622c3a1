"""OpenAI chat JSONL, the fine-tuning format: one `{"messages": [...]}` object per line.

Export writes, for every prompt of the selection, one line per few-shot example and one
per test-set row: the system message, the user turn (the template filled with the row's
values) and the expected answer as the assistant turn. That is rendered text: templates,
variables and settings do not survive the trip.

Import makes one prompt per file: the system message shared by the lines (the first one
if they differ), the user template `{{ input }}`, and a test set with one row per line
(`input` = the last user turn, expected = the final assistant turn). Earlier turns of a
multi-turn line are dropped, and the import says so.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.core.examples_io import LineProblem, chat_message_text, jsonl_records
from workbench.core.exchange.base import (
    Collector,
    ExportFailed,
    ExportSet,
    ImportedPrompt,
    Package,
    decode_text,
)
from workbench.core.models import Prompt, TestRow, TestSet
from workbench.core.templates import (
    TemplateError,
    example_user_text,
    render_template,
    resolve_values,
)

NAME = "openai-jsonl"
LABEL = "OpenAI chat JSONL (.jsonl)"
EXTENSIONS: tuple[str, ...] = (".jsonl",)
ONE_PROMPT_PER_FILE = False
LOSSLESS = False
CAN_IMPORT = True
EXPORT_LOSSES: tuple[str, ...] = (
    "everything but the rendered conversations: templates, variables, parameters, history",
    "chain of thought and the few-shot settings (each example is its own line)",
)
IMPORT_LOSSES: tuple[str, ...] = (
    "earlier turns of multi-turn lines, tool calls, weights and function definitions",
)


def _line(system: str, user: str, assistant: str) -> bytes:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return (json.dumps({"messages": messages}, ensure_ascii=False) + "\n").encode()


def _render(prompt: Prompt, source: str, values: dict[str, str], field: str) -> str:
    """The system message or user template filled with one example's or row's values."""
    merged = resolve_values(prompt, values)
    text = prompt.system if field == "system" else prompt.user_template
    try:
        return render_template(text, merged, field)
    except TemplateError as exc:
        raise ExportFailed(f"prompt {prompt.name!r}, {source}: {exc}") from None


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    lines: list[bytes] = []
    for prompt in items.prompts:
        for i, example in enumerate(prompt.few_shot.examples):
            system = _render(prompt, f"few-shot example {i + 1}", dict(example.vars), "system")
            try:
                user = example_user_text(prompt, i)
            except TemplateError as exc:
                raise ExportFailed(f"prompt {prompt.name!r}, example {i + 1}: {exc}") from None
            lines.append(_line(system, user, example.output))
        for test_set in items.test_sets_of(prompt.id):
            for n, row in enumerate(test_set.rows, start=1):
                where = f"test set {test_set.name!r} row {n}"
                system = _render(prompt, where, row.vars, "system")
                user = _render(prompt, where, row.vars, "user_template")
                lines.append(_line(system, user, row.expected))
    return {"conversations.jsonl": b"".join(lines)}


def _conversation(record: Any) -> tuple[str, TestRow, bool]:
    """One line: (its system message, the row, whether it had earlier turns)."""
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        raise LineProblem('expected an object with a "messages" list')
    messages = [chat_message_text(m, n) for n, m in enumerate(record["messages"], start=1)]
    for number, (role, _) in enumerate(messages, start=1):
        if role not in ("system", "user", "assistant"):
            raise LineProblem(
                f"message {number}: role {role!r} is not supported (system, user, assistant)"
            )
    if not messages or messages[-1][0] != "assistant":
        raise LineProblem("the last message must be the assistant's answer")
    users = [c for r, c in messages if r == "user"]
    if not users:
        raise LineProblem("has no user message")
    system = "\n\n".join(c for r, c in messages if r == "system")
    row = TestRow(vars={"input": users[-1]}, expected=messages[-1][1])
    return system, row, len(users) > 1


def parse(data: bytes, source: str) -> Package:
    text = decode_text(data, source)
    problems = Collector(source)
    conversations, bad_lines = jsonl_records(text, _conversation)
    for number, message in bad_lines:
        problems.add(f"line {number}", message)
    systems = [system for system, _, _ in conversations]
    rows = [row for _, row, _ in conversations]
    multi_turn = any(earlier for _, _, earlier in conversations)
    if not rows and not problems.problems:
        problems.add("", "no conversations in the file")
    problems.check()
    name = source.rsplit("/", 1)[-1].removesuffix(".jsonl") or "Imported conversations"
    notes = list(IMPORT_LOSSES)
    if len(set(systems)) > 1:
        notes.append("the lines have different system messages; the first one is kept")
    if multi_turn:
        notes.append("earlier turns of multi-turn conversations were dropped")
    prompt = Prompt(name=name, system=systems[0], user_template="{{ input }}")
    test_set = TestSet(name=f"{name} conversations", prompt_id=prompt.id, rows=rows)
    return Package(prompts=[ImportedPrompt(prompt)], test_sets=[test_set], notes=notes)
