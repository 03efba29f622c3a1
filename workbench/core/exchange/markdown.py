"""Markdown, for reading and reviewing prompts (e.g. in a pull request). Export only.

One document for the selection: per prompt its description, tags, system message and
user template (fenced, verbatim), variables, few-shot examples, chain of thought,
generation parameters, and a summary of its test sets, soft prompts and LoRA adapters.
"""

from __future__ import annotations

from workbench.core.exchange.base import ExportSet, Package
from workbench.core.models import CoTMode, Prompt

NAME = "markdown"
LABEL = "Markdown for review (.md, export only)"
EXTENSIONS: tuple[str, ...] = (".md",)
ONE_PROMPT_PER_FILE = False
LOSSLESS = False
CAN_IMPORT = False
EXPORT_LOSSES: tuple[str, ...] = (
    "it is for reading: it cannot be imported back",
    "test-set rows beyond the first five of each set, soft prompt and LoRA tensors, history",
)
IMPORT_LOSSES: tuple[str, ...] = ()


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _cell(text: str) -> str:
    flat = " ".join(text.split())
    flat = flat if len(flat) <= 80 else flat[:79] + "…"
    return flat.replace("|", "\\|") or " "


def _prompt(prompt: Prompt, items: ExportSet) -> list[str]:
    out = [f"## {prompt.name}", ""]
    meta = [f"version {prompt.version}", f"id `{prompt.id}`"]
    if prompt.tags:
        meta.append("tags: " + ", ".join(f"`{t}`" for t in prompt.tags))
    if prompt.labels:
        meta.append("labels: " + ", ".join(f"**{label}**" for label in prompt.labels))
    out += [" · ".join(meta), ""]
    if prompt.description:
        out += [prompt.description, ""]
    if prompt.system:
        out += ["### System message", "", _fence(prompt.system, "jinja"), ""]
    out += ["### User template", "", _fence(prompt.user_template, "jinja"), ""]
    if prompt.variables:
        out += ["| variable | default | description |", "|---|---|---|"]
        for v in prompt.variables:
            out.append(f"| `{v.name}` | {_cell(v.default or '')} | {_cell(v.description)} |")
        out.append("")
    few_shot = prompt.few_shot
    if few_shot.examples:
        count = "all" if few_shot.count is None else str(few_shot.count)
        out += [
            f"### Few-shot examples ({len(few_shot.examples)}; using {count}, "
            f"{few_shot.order.value.replace('_', ' ')}, as {few_shot.style.value})",
            "",
            "| # | input | output |",
            "|---|---|---|",
        ]
        for i, e in enumerate(few_shot.examples, start=1):
            given = e.input or ", ".join(f"{k}={val}" for k, val in e.vars.items())
            out.append(f"| {i} | {_cell(given)} | {_cell(e.output)} |")
        out.append("")
    cot = prompt.cot
    if cot.mode is not CoTMode.OFF:
        out += [f"### Chain of thought: {cot.mode.value.replace('_', ' ')}", ""]
        if cot.mode is CoTMode.ZERO_SHOT:
            out += [f"> {cot.trigger}", ""]
        elif cot.mode is CoTMode.SCAFFOLD:
            out += [_fence(cot.scaffold, "jinja"), ""]
        else:
            for n, step in enumerate(cot.steps, start=1):
                out += [f"{n}. **{step.name}**", "", _fence(step.template, "jinja"), ""]
    params = prompt.params.model_dump(exclude_defaults=True)
    if params:
        out += ["### Generation parameters", ""]
        out += [f"- {k}: `{v}`" for k, v in params.items()]
        out.append("")
    for test_set in items.test_sets_of(prompt.id):
        out += [f"### Test set: {test_set.name} ({len(test_set.rows)} rows)", ""]
        if test_set.rows:
            names = list(dict.fromkeys(k for r in test_set.rows for k in r.vars))
            out.append("| " + " | ".join([*names, "expected"]) + " |")
            out.append("|" + "---|" * (len(names) + 1))
            for row in test_set.rows[:5]:
                cells = [_cell(row.vars.get(n, "")) for n in names] + [_cell(row.expected)]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
    for soft, _ in items.soft_prompts:
        if soft.prompt_id == prompt.id:
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in sorted(soft.metrics.items()))
            out += [
                f"- Soft prompt **{soft.name}**: {soft.num_virtual_tokens} virtual tokens on "
                f"`{soft.base_model}`" + (f" ({metrics})" if metrics else ""),
                "",
            ]
    for adapter, _ in items.lora_adapters:
        if adapter.prompt_id == prompt.id:
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in sorted(adapter.metrics.items()))
            out += [
                f"- LoRA adapter **{adapter.name}**: rank {adapter.lora.rank} on "
                f"`{adapter.base_model}`" + (f" ({metrics})" if metrics else ""),
                "",
            ]
    return out


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    lines = ["# Prompts", ""]
    if len(items.prompts) > 1:
        lines += [f"- [{p.name}](#{_anchor(p.name)})" for p in items.prompts] + [""]
    for prompt in items.prompts:
        lines += _prompt(prompt, items)
    return {"prompts.md": ("\n".join(lines).rstrip() + "\n").encode()}


def _anchor(name: str) -> str:
    return "-".join("".join(c for c in name.lower() if c.isalnum() or c in " -").split())


def parse(data: bytes, source: str) -> Package:
    raise NotImplementedError("Markdown is an export-only format")
