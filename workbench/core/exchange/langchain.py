"""LangChain prompt JSON: the files `langchain_core.prompts.load_prompt` reads.

    {"_type": "prompt", "input_variables": ["country"],
     "template": "What is the capital of {country}?", "template_format": "f-string"}

    {"_type": "few_shot", "input_variables": ["word"],
     "prefix": "Give the antonym of every input.",
     "example_prompt": {"_type": "prompt", "input_variables": ["input", "output"],
                        "template": "Input: {input}\\nOutput: {output}"},
     "examples": [{"input": "happy", "output": "sad"}],
     "example_separator": "\\n\\n", "suffix": "Input: {word}\\nOutput:"}

Mapping: template ↔ user template; a prompt with few-shot examples is written as
`few_shot` (examples inline: prefix = the examples header, example_prompt = the example
format, suffix = the user template). Templates made only of text and `{{ variable }}`
become f-strings (LangChain's default, and the only format its loader accepts besides
mustache); others are written as `jinja2`, which LangChain refuses to load by default.
The system message has no place in these prompt types and is not written.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

from workbench.core.exchange.base import (
    Collector,
    ExportFailed,
    ExportSet,
    ImportedPrompt,
    Package,
    decode_text,
    load_json,
    text_value,
    unique_file_names,
)
from workbench.core.models import FewShot, FewShotExample, FewShotStyle, Prompt
from workbench.core.templates import TemplateError, example_user_text, template_variables

NAME = "langchain"
LABEL = "LangChain prompt (.json)"
EXTENSIONS: tuple[str, ...] = (".json",)
ONE_PROMPT_PER_FILE = True
LOSSLESS = False
CAN_IMPORT = True
EXPORT_LOSSES: tuple[str, ...] = (
    "the system message, history, test sets, soft prompts, LoRA adapters, parameters",
    "chain of thought; description, tags and labels",
    "templates with Jinja logic are written as jinja2, which LangChain refuses by default",
)
IMPORT_LOSSES: tuple[str, ...] = (
    "output parsers and partial variables",
    "example selectors and examples kept in other files",
)

_SIMPLE_VAR = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
_JINJA_OPEN = re.compile(r"\{[{%#]")


def to_fstring(template: str) -> str | None:
    """A Jinja template of text and `{{ name }}` only, as an f-string; else None."""
    out: list[str] = []
    pos = 0
    for match in _SIMPLE_VAR.finditer(template):
        literal = template[pos : match.start()]
        if _JINJA_OPEN.search(literal) or "}}" in literal:
            return None
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        out.append("{" + match.group(1) + "}")
        pos = match.end()
    tail = template[pos:]
    if _JINJA_OPEN.search(tail) or "}}" in tail:
        return None
    out.append(tail.replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def _jinja_literal(text: str) -> str:
    """Literal text as Jinja source (raw blocks around anything Jinja would read)."""
    if not _JINJA_OPEN.search(text) and not text.endswith("{"):
        return text
    return "{% raw %}" + text + "{% endraw %}"


def from_fstring(template: str) -> tuple[str, list[str]]:
    """An f-string as a Jinja template, and its variables; ValueError when it is not one
    LangChain would accept (positional fields, attribute access, format specs)."""
    out: list[str] = []
    names: list[str] = []
    literal_run = ""  # "{{" splits a literal into pieces: join them before escaping
    for literal, field_name, spec, conversion in string.Formatter().parse(template):
        literal_run += literal
        if field_name is None:
            continue
        out.append(_jinja_literal(literal_run))
        literal_run = ""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_name):
            raise ValueError(f"unsupported placeholder {{{field_name}}}")
        if spec or conversion:
            raise ValueError(f"format specs and conversions are not supported: {{{field_name}}}")
        out.append("{{ " + field_name + " }}")
        if field_name not in names:
            names.append(field_name)
    out.append(_jinja_literal(literal_run))
    return "".join(out), names


def _mustache(template: str) -> str:
    if re.search(r"\{\{\s*[#^/!>&{]", template):
        raise ValueError("mustache sections and partials are not supported")
    return _SIMPLE_VAR.sub(lambda m: "{{ " + m.group(1) + " }}", template)


def _template(text: str, template_format: str) -> dict[str, Any]:
    fstring = to_fstring(text)
    if fstring is not None and template_format != "jinja2":
        return {"template": fstring, "template_format": "f-string"}
    return {"template": text, "template_format": "jinja2"}


def _variables(text: str) -> list[str]:
    try:
        return template_variables(text)
    except TemplateError:
        return []


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for prompt, file_name in unique_file_names(items.prompts, ".json"):
        few_shot = prompt.few_shot
        examples = few_shot.examples
        texts = [prompt.user_template]
        if examples:
            texts += [few_shot.example_format, few_shot.inline_header]
        fmt = "f-string" if all(to_fstring(t) is not None for t in texts) else "jinja2"
        user = _template(prompt.user_template, fmt)
        data: dict[str, Any]
        if examples:
            try:
                inputs = [example_user_text(prompt, i) for i in range(len(examples))]
            except TemplateError as exc:
                raise ExportFailed(f"prompt {prompt.name!r}: a few-shot example: {exc}") from None
            data = {
                "_type": "few_shot",
                "input_variables": _variables(prompt.user_template),
                "prefix": _template(few_shot.inline_header, fmt)["template"],
                "example_prompt": {
                    "_type": "prompt",
                    "input_variables": ["input", "output"],
                    **_template(few_shot.example_format, fmt),
                },
                "examples": [
                    {"input": text, "output": e.output}
                    for text, e in zip(inputs, examples, strict=True)
                ],
                "example_separator": few_shot.separator,
                "suffix": user["template"],
                "template_format": user["template_format"],
            }
        else:
            data = {"_type": "prompt", "input_variables": _variables(prompt.user_template), **user}
        data["name"] = prompt.name
        files[file_name] = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    return files


def _convert(text: Any, template_format: str, path: str, problems: Collector) -> str:
    if not isinstance(text, str):
        problems.add(path, "must be text")
        return ""
    try:
        if template_format == "f-string":
            return from_fstring(text)[0]
        if template_format == "mustache":
            return _mustache(text)
    except ValueError as exc:
        problems.add(path, str(exc))
        return ""
    return text  # jinja2: our own template language; parsed when used, never run here


def parse(data: bytes, source: str) -> Package:
    text = decode_text(data, source)
    document = load_json(text, source)
    problems = Collector(source)
    if not isinstance(document, dict):
        problems.fail("", "a LangChain prompt file is a JSON object with `_type`")
    kind = document.get("_type", "prompt")
    if kind not in ("prompt", "few_shot"):
        problems.fail("_type", f"{kind!r} is not supported (only 'prompt' and 'few_shot')")
    template_format = document.get("template_format", "f-string")
    if template_format not in ("f-string", "jinja2", "mustache"):
        problems.fail("template_format", f"unknown template format {template_format!r}")
    if "template_path" in document or "suffix_path" in document or "prefix_path" in document:
        problems.add("", "refers to template files; inline the templates to import them")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        name = source.rsplit("/", 1)[-1].removesuffix(".json") or "Imported prompt"
    fields: dict[str, Any] = {"name": name}
    if kind == "prompt":
        fields["user_template"] = _convert(
            document.get("template"), template_format, "template", problems
        )
    else:
        fields["user_template"] = _convert(
            document.get("suffix", ""), template_format, "suffix", problems
        )
        example_prompt = document.get("example_prompt")
        if isinstance(example_prompt, str):
            problems.add("example_prompt", "refers to another file; inline it")
            example_prompt = {}
        if not isinstance(example_prompt, dict):
            problems.add("example_prompt", "must be a prompt object")
            example_prompt = {}
        inner_format = example_prompt.get("template_format", "f-string")
        example_format = _convert(
            example_prompt.get("template", "{input}\n{output}"),
            inner_format if isinstance(inner_format, str) else "f-string",
            "example_prompt.template",
            problems,
        )
        # the example template's two variables are our example's input and output
        names = list(dict.fromkeys(_SIMPLE_VAR.findall(example_format)))
        if set(names) != {"input", "output"} and len(names) != 2:
            problems.add(
                "example_prompt.template",
                f"uses {len(names)} variables; only examples of an input and an output "
                "are supported",
            )
            names = ["input", "output"]
        if set(names) != {"input", "output"}:
            renamed = dict(zip(names, ("input", "output"), strict=True))
            example_format = _SIMPLE_VAR.sub(
                lambda m: "{{ " + renamed.get(m.group(1), str(m.group(1))) + " }}", example_format
            )
        else:
            renamed = {"input": "input", "output": "output"}
        key_of = {ours: theirs for theirs, ours in renamed.items()}
        raw_examples = document.get("examples", [])
        if isinstance(raw_examples, str):
            problems.add("examples", f"refers to another file ({raw_examples}); inline it")
            raw_examples = []
        if not isinstance(raw_examples, list):
            problems.add("examples", "must be a list of objects")
            raw_examples = []
        examples: list[FewShotExample] = []
        for i, example in enumerate(raw_examples):
            if not isinstance(example, dict) or not all(isinstance(k, str) for k in example):
                problems.add(f"examples[{i}]", "must be an object of text values")
                continue
            examples.append(
                FewShotExample(
                    input=text_value(example.get(key_of["input"], "")),
                    output=text_value(example.get(key_of["output"], "")),
                )
            )
        prefix = document.get("prefix", "")
        separator = document.get("example_separator", "\n\n")
        if not isinstance(prefix, str) or not isinstance(separator, str):
            problems.add("", "prefix and example_separator must be text")
            prefix, separator = "", "\n\n"
        fields["few_shot"] = FewShot(
            examples=examples,
            style=FewShotStyle.INLINE,
            example_format=example_format,
            inline_header=_convert(prefix, template_format, "prefix", problems),
            separator=separator,
        ).model_dump()
    problems.check()
    prompt = Prompt.model_validate(fields)
    return Package(prompts=[ImportedPrompt(prompt)], notes=list(IMPORT_LOSSES))
