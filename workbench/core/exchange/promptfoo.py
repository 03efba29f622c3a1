"""promptfoo configuration YAML (`promptfooconfig.yaml`).

Mapping (one config per prompt):

    description            ← the prompt's description (or name)
    prompts: [{label, raw}] ← label = name; raw = the user template when the prompt is a
                             single user turn, else a JSON list of chat messages (system,
                             few-shot turns, user) — promptfoo's chat prompt format
    tests: [{description, vars, assert: [{type: equals, value}], metadata}]
                           ← every row of every test set of the prompt; metadata keeps
                             the test set's name, the row's group and split

Import reads `prompts` (strings, `{raw, label, id}` objects) and `tests` (inline). Each
prompt gets the tests as a test set. The expected output is the value of the first
`equals`, `contains`, `icontains` or `starts-with` assertion
(a regex or a model-graded assertion is not an expected output). promptfoo templates
are Nunjucks; their `{{ var }}` substitutions are the same in our Jinja.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from workbench import __version__
from workbench.core.exchange.base import (
    Collector,
    ExportSet,
    ImportedPrompt,
    Package,
    decode_text,
    load_yaml,
    text_value,
    unique_file_names,
)
from workbench.core.exchange.chat import from_chat, split_messages, to_chat
from workbench.core.models import TestRow, TestSet

NAME = "promptfoo"
LABEL = "promptfoo config (.yaml)"
EXTENSIONS: tuple[str, ...] = (".yaml", ".yml")
ONE_PROMPT_PER_FILE = True
LOSSLESS = False
CAN_IMPORT = True
EXPORT_LOSSES: tuple[str, ...] = (
    "history, generation parameters, variable defaults, tags and labels",
    "chain of thought beyond a zero-shot trigger or a scaffold (merged into the template)",
    "label sets and label scoring (tests assert `equals` on the expected output)",
    "soft prompts and LoRA adapters; no provider is set (add yours under `providers:`)",
)
IMPORT_LOSSES: tuple[str, ...] = (
    "providers, defaultTest, transforms and scenarios",
    "assertions other than the first equals/contains/icontains/starts-with of a test",
)

_EXPECTED_TYPES = ("equals", "contains", "icontains", "starts-with")


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and value == value.strip() and "\t" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for prompt, file_name in unique_file_names(items.prompts, ".yaml"):
        chat = to_chat(prompt)
        # a template that itself reads as a JSON list would be taken for chat messages
        if chat.system or chat.turns or chat.user.lstrip().startswith("["):
            raw = json.dumps(
                [m.model_dump() for m in chat.messages()], indent=2, ensure_ascii=False
            )
        else:
            raw = chat.user
        tests = []
        for test_set in items.test_sets_of(prompt.id):
            for n, row in enumerate(test_set.rows, start=1):
                test: dict[str, Any] = {"description": f"{test_set.name} #{n}"}
                test["vars"] = dict(row.vars)
                test["assert"] = [{"type": "equals", "value": row.expected}]
                metadata = {"test_set": test_set.name}
                if row.group is not None:
                    metadata["group"] = row.group
                if row.split is not None:
                    metadata["split"] = row.split
                test["metadata"] = metadata
                tests.append(test)
        config: dict[str, Any] = {
            "description": prompt.description or prompt.name,
            "prompts": [{"label": prompt.name, "raw": raw}],
            "tests": tests,
        }
        header = f"# exported by Prompt Workbench {__version__}\n"
        files[file_name] = (header + dump_yaml(config)).encode()
    return files


def _prompt_text(entry: Any, path: str, problems: Collector) -> tuple[str, str | None] | None:
    """(raw text, label) of one `prompts` entry."""
    raw: Any
    label: Any
    if isinstance(entry, str):
        raw, label = entry, None
    elif isinstance(entry, dict):
        raw = entry.get("raw", entry.get("id"))
        label = entry.get("label")
        if label is not None and not isinstance(label, str):
            problems.add(f"{path}.label", "must be text")
            return None
        if not isinstance(raw, str):
            problems.add(path, "a prompt needs `raw` text")
            return None
    else:
        problems.add(path, "a prompt must be text or an object with `raw`")
        return None
    if raw.strip().startswith("file://"):
        problems.add(path, f"refers to another file ({raw.strip()}); paste its text as `raw`")
        return None
    return raw, label


def _chat(raw: str, path: str, problems: Collector) -> tuple[str, list[tuple[str, str]], str]:
    """A raw prompt: a JSON list of chat messages, or one user template."""
    stripped = raw.strip()
    if not stripped.startswith("["):
        return "", [], raw
    try:
        messages = json.loads(stripped)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return "", [], raw  # text that merely starts with "[": a plain template
    pairs: list[tuple[str, str]] = []
    if not isinstance(messages, list):
        problems.add(path, "chat prompt must be a list of messages")
        return "", [], ""
    for i, message in enumerate(messages):
        ok = isinstance(message, dict) and isinstance(message.get("content"), str)
        if not ok or message.get("role") not in ("system", "user", "assistant"):
            problems.add(f"{path}[{i}]", "a message needs a role (system/user/assistant) and text")
            return "", [], ""
        pairs.append((message["role"], message["content"]))
    try:
        return split_messages(pairs)
    except ValueError as exc:
        problems.add(path, str(exc))
        return "", [], ""


def _tests(data: Any, problems: Collector) -> dict[str, list[TestRow]]:
    """Rows grouped by the test set they came from (metadata.test_set)."""
    groups: dict[str, list[TestRow]] = {}
    if data is None:
        return groups
    if not isinstance(data, list):
        what = "refers to another file" if isinstance(data, str) else "must be a list"
        problems.add("tests", f"{what}; inline the tests to import them")
        return groups
    for i, test in enumerate(data):
        path = f"tests[{i}]"
        if not isinstance(test, dict):
            problems.add(path, "a test must be an object with vars and assert")
            continue
        raw_vars = test.get("vars", {})
        if not isinstance(raw_vars, dict) or not all(isinstance(k, str) for k in raw_vars):
            problems.add(f"{path}.vars", "must map variable names to values")
            continue
        expected = ""
        asserts = test.get("assert", [])
        if not isinstance(asserts, list):
            problems.add(f"{path}.assert", "must be a list")
            continue
        for a in asserts:
            typed = isinstance(a, dict) and a.get("type") in _EXPECTED_TYPES
            if typed and isinstance(a.get("value"), str | int | float):
                expected = text_value(a["value"])
                break
        found = test.get("metadata")
        metadata: dict[str, Any] = found if isinstance(found, dict) else {}
        group = metadata.get("group")
        split = metadata.get("split")
        row = TestRow(
            vars={k: text_value(v) for k, v in raw_vars.items()},
            expected=expected,
            group=text_value(group) if group is not None else None,
            split=split if split in ("train", "validation", "test") else None,
        )
        name = metadata.get("test_set")
        groups.setdefault(name if isinstance(name, str) and name else "", []).append(row)
    return groups


def parse(data: bytes, source: str) -> Package:
    text = decode_text(data, source)
    config = load_yaml(text, source)
    problems = Collector(source)
    if not isinstance(config, dict):
        problems.fail("", "a promptfoo config is a YAML mapping with `prompts` and `tests`")
    prompts = config.get("prompts")
    if isinstance(prompts, str | dict) and not isinstance(prompts, list):
        prompts = (
            [prompts]
            if isinstance(prompts, str)
            else [{"raw": k, "label": v} for k, v in prompts.items()]
        )
    if not isinstance(prompts, list) or not prompts:
        problems.fail("prompts", "missing: a promptfoo config lists its prompts")
    description = config.get("description")
    description = description if isinstance(description, str) else ""
    parsed: list[tuple[str, tuple[str, list[tuple[str, str]], str]]] = []
    for i, entry in enumerate(prompts):
        found = _prompt_text(entry, f"prompts[{i}]", problems)
        if found is None:
            continue
        raw, label = found
        base = description or "promptfoo prompt"
        name = label or (base if len(prompts) == 1 else f"{base} #{i + 1}")
        parsed.append((name, _chat(raw, f"prompts[{i}]", problems)))
    tests = _tests(config.get("tests"), problems)
    problems.check()
    package = Package(notes=list(IMPORT_LOSSES))
    for name, (system, turns, user) in parsed:
        prompt = from_chat(name, system, turns, user, description=description)
        package.prompts.append(ImportedPrompt(prompt))
        for set_name, rows in tests.items():
            package.test_sets.append(
                TestSet(name=set_name or f"{name} tests", prompt_id=prompt.id, rows=rows)
            )
    return package
