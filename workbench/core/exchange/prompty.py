"""Prompty (`.prompty`): YAML front matter, then a body of role-marked chat messages.

    ---
    name: Capital                    ← name
    description: …                   ← description
    tags: [geo]                      ← tags
    model:
      api: chat
      parameters: {max_tokens: 64, temperature: 0.2, top_p: 1.0, stop: [], seed: 7}
    inputs:                          ← declared variables (description, default)
      country: {type: string, description: …, default: …}
    sample: {country: France}        ← sample values
    ---
    system:
    You are a geography tutor.       ← system template
    user:
    …                                ← few-shot examples as user/assistant turns
    assistant:
    …
    user:
    What is the capital of {{country}}?   ← user template

Prompty templates are Jinja2, like ours. One prompt per file. Leading and trailing blank
space of each message is not kept, and a line that is only a role marker (`user:`)
cannot appear inside a message (Prompty has no escape for it): such prompts are refused
at export with a clear message.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.core.exchange.base import (
    Collector,
    ExportFailed,
    ExportSet,
    ImportedPrompt,
    Package,
    decode_text,
    load_yaml,
    text_value,
    unique_file_names,
)
from workbench.core.exchange.chat import from_chat, split_messages, to_chat
from workbench.core.exchange.promptfoo import dump_yaml
from workbench.core.models import GenerationParams, Variable

NAME = "prompty"
LABEL = "Prompty (.prompty)"
EXTENSIONS: tuple[str, ...] = (".prompty",)
ONE_PROMPT_PER_FILE = True
LOSSLESS = False
CAN_IMPORT = True
EXPORT_LOSSES: tuple[str, ...] = (
    "history, test sets, soft prompts, LoRA adapters and labels",
    "top_k, repetition penalty, grammar and JSON schema (Prompty has no such parameters)",
    "chain of thought beyond a zero-shot trigger or a scaffold (merged into the template)",
    "blank space at the start and end of each message",
)
IMPORT_LOSSES: tuple[str, ...] = (
    "model configuration (connection, deployment) and parameters other than "
    "max_tokens, temperature, top_p, stop and seed",
    "authors, version and output schema",
)

# [ \t], not \s: \s also matches newlines, and the pattern then backtracks over blank
# lines in cubic time (a 2 KB file took 48 s)
_ROLE = re.compile(
    r"^[ \t]*#?[ \t]*(system|user|assistant)[ \t]*:[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_FENCE = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)


def _message_text(text: str, prompt_name: str, what: str) -> str:
    if _ROLE.search(text):
        raise ExportFailed(
            f"prompt {prompt_name!r}: the {what} has a line that reads as a Prompty role "
            "marker (like `user:`); Prompty cannot hold it — reword that line"
        )
    return text.strip()


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for prompt, file_name in unique_file_names(items.prompts, ".prompty"):
        chat = to_chat(prompt)
        params = prompt.params
        parameters: dict[str, Any] = {
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            parameters["stop"] = list(params.stop)
        if params.seed is not None:
            parameters["seed"] = params.seed
        front: dict[str, Any] = {"name": prompt.name}
        if prompt.description:
            front["description"] = prompt.description
        if prompt.tags:
            front["tags"] = list(prompt.tags)
        front["model"] = {"api": "chat", "parameters": parameters}
        if prompt.variables:
            inputs: dict[str, Any] = {}
            for variable in prompt.variables:
                spec: dict[str, Any] = {"type": "string"}
                if variable.description:
                    spec["description"] = variable.description
                if variable.default is not None:
                    spec["default"] = variable.default
                inputs[variable.name] = spec
            front["inputs"] = inputs
        if prompt.sample_values:
            front["sample"] = dict(prompt.sample_values)
        body: list[str] = []
        if chat.system.strip():
            body += ["system:", _message_text(chat.system, prompt.name, "system message"), ""]
        for n, (user, assistant) in enumerate(chat.turns, start=1):
            body += ["user:", _message_text(user, prompt.name, f"example {n}"), ""]
            body += ["assistant:", _message_text(assistant, prompt.name, f"example {n}"), ""]
        body += ["user:", _message_text(chat.user, prompt.name, "user template")]
        text = f"---\n{dump_yaml(front)}---\n" + "\n".join(body) + "\n"
        files[file_name] = text.encode()
    return files


def _messages(body: str, problems: Collector) -> list[tuple[str, str]]:
    markers = list(_ROLE.finditer(body))
    messages: list[tuple[str, str]] = []
    lead = body[: markers[0].start()] if markers else body
    if lead.strip():
        messages.append(("system", lead.strip()))  # Prompty: text before any role is system
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(body)
        messages.append((marker.group(1).lower(), body[marker.end() : end].strip()))
    if not messages:
        problems.fail("body", "empty: no messages after the front matter")
    return messages


def _params(model: Any, problems: Collector) -> dict[str, Any]:
    if model is None:
        return {}
    if not isinstance(model, dict):
        problems.add("model", "must be a mapping")
        return {}
    raw = model.get("parameters") or {}
    if not isinstance(raw, dict):
        problems.add("model.parameters", "must be a mapping")
        return {}
    params: dict[str, Any] = {}
    names = {"max_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "top_p"}
    for theirs, ours in names.items():
        if theirs in raw:
            params[ours] = raw[theirs]
    if "seed" in raw:
        params["seed"] = raw["seed"]
    if "stop" in raw:
        stop = raw["stop"]
        params["stop"] = [stop] if isinstance(stop, str) else stop
    try:
        return GenerationParams.model_validate(params).model_dump(exclude_defaults=True)
    except ValueError as exc:
        for error in getattr(exc, "errors", lambda: [])():
            loc = ".".join(str(p) for p in error["loc"])
            problems.add(f"model.parameters.{loc}", error["msg"])
        return {}


def _variables(inputs: Any, problems: Collector) -> list[Variable]:
    if inputs is None:
        return []
    if not isinstance(inputs, dict):
        problems.add("inputs", "must map input names to their description")
        return []
    variables: list[Variable] = []
    for name, spec in inputs.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.add(f"inputs.{name}", "is not a valid variable name (letters, digits, _)")
            continue
        spec = spec if isinstance(spec, dict) else {}
        default = spec.get("default", spec.get("sample"))
        description = spec.get("description")
        variables.append(
            Variable(
                name=name,
                default=text_value(default) if default is not None else None,
                description=description if isinstance(description, str) else "",
            )
        )
    return variables


def parse(data: bytes, source: str) -> Package:
    text = decode_text(data, source)
    problems = Collector(source)
    fence = _FENCE.match(text)
    if fence is None:
        problems.fail("", "a .prompty file starts with YAML front matter between --- lines")
    front = load_yaml(fence.group(1), source) or {}
    if not isinstance(front, dict):
        problems.fail("front matter", "must be a YAML mapping")
    name = front.get("name")
    if not isinstance(name, str) or not name.strip():
        stem = source.rsplit("/", 1)[-1].removesuffix(".prompty")
        name = stem or "Imported prompt"
    description = front.get("description", "")
    if not isinstance(description, str):
        problems.add("description", "must be text")
        description = ""
    tags = front.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.add("tags", "must be a list of text")
        tags = []
    params = _params(front.get("model"), problems)
    variables = _variables(front.get("inputs"), problems)
    sample = front.get("sample", {})
    if isinstance(sample, str):
        problems.add("sample", f"refers to another file ({sample}); inline the sample values")
        sample = {}
    elif not isinstance(sample, dict):
        problems.add("sample", "must map input names to values")
        sample = {}
    messages = _messages(text[fence.end() :], problems)
    try:
        system, turns, user = split_messages(messages)
    except ValueError as exc:
        problems.add("body", str(exc))
    problems.check()
    prompt = from_chat(
        name,
        system,
        turns,
        user,
        description=description,
        tags=tags,
        variables=[v.model_dump() for v in variables],
        params=params,
        sample_values={str(k): text_value(v) for k, v in sample.items()},
    )
    return Package(prompts=[ImportedPrompt(prompt)], notes=list(IMPORT_LOSSES))
