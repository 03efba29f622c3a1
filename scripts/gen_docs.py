"""Generate the library format reference from the pydantic models.

    python scripts/gen_docs.py            rewrite docs/library-format.md and docs/schema/
    python scripts/gen_docs.py --check    exit 1 (and say which) when a file is stale

Writes `docs/library-format.md` (the folder layout, then one field table per document
kind, the shared nested types, the schema version and the migrations) and the full JSON
Schema of each kind as `docs/schema/<kind>.schema.json`. Everything is derived from
`Model.model_json_schema()`, the module docstring of `workbench.core.library` and the
migration table of `workbench.core.models`; the output is deterministic, so
`tests/docs/test_docs_in_sync.py` can compare the committed files with it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORMAT_DOC = Path("docs/library-format.md")
SCHEMA_DIR = Path("docs/schema")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The document kinds in the order the reference presents them, and where each is stored.
KIND_ORDER = ("prompt", "test_set", "soft_prompt", "lora_adapter", "run", "eval_run", "model")
WHERE = {
    "prompt": (
        "`prompts/<id>.json` (the current version), `history/<id>/v000001.json` (each "
        "earlier version, numbered by `version`), `drafts/<id>.json` (the app's unsaved "
        "edits) and `trash/<id>/prompt.json` (a deleted prompt, restorable)"
    ),
    "test_set": "`test_sets/<id>.json`; `prompt_id` links it to its prompt",
    "soft_prompt": (
        "`soft_prompts/<id>.json` (this metadata) beside `soft_prompts/<id>.safetensors`, "
        "the tensor named by `tensor_file`"
    ),
    "lora_adapter": (
        "`lora_adapters/<id>.json` (this metadata) beside `lora_adapters/<id>/`, the PEFT "
        "adapter folder named by `folder` (`adapter_config.json`, `adapter_model.safetensors`)"
    ),
    "run": "`runs/<prompt id>/<run id>.json` (`runs/_adhoc/` for runs without a prompt)",
    "eval_run": ("`evals/<prompt id>/<eval id>.json` (`evals/_adhoc/` for runs without a prompt)"),
    "model": (
        "not in the library: the user-added models live in `models.json` in the user "
        'config folder (`WORKBENCH_CONFIG_DIR` overrides), as `{"models": [...]}`; the '
        "embedded default is never stored"
    ),
}

# Notes for fields whose model declares no description. Kept here, keyed by
# "Model.field", so the tables stay useful; a key naming a field that no longer
# exists stops the generator (a note can never outlive its field).
NOTES = {
    "Variable.name": "a template variable name (letters, digits, `_`)",
    "Variable.default": "used when no value is given",
    "FewShotExample.input": "the example's user text (plain examples)",
    "FewShotExample.vars": "values for the user template's variables (instead of `input`)",
    "FewShotExample.output": "the expected answer (the assistant turn)",
    "FewShot.examples": "the demonstrations, in their written order",
    "FewShot.order": "order in which the included examples are shown",
    "FewShot.seed": "shuffle seed for `random` order",
    "FewShot.style": "`chat`: user/assistant turns; `inline`: one block in the user turn",
    "FewShot.inline_header": "text above the inline block",
    "FewShot.separator": "text between inline examples",
    "ChainStep.name": "the step's name; later steps read its output as `{{ name }}`",
    "ChainStep.template": "the step's user message template",
    "ChainOfThought.mode": "how the model is asked to reason",
    "ChainOfThought.trigger": "sentence appended to the user turn in `zero_shot` mode",
    "ChainOfThought.steps": "the steps of `chain` mode, run in order",
    "GenerationParams.top_p": "nucleus sampling",
    "GenerationParams.max_new_tokens": "generation stops after this many tokens",
    "GenerationParams.repetition_penalty": "1 = none",
    "GenerationParams.stop": "generation stops before any of these strings",
    "GenerationParams.seed": "sampling seed; null = random",
    "GenerationParams.logprobs": "report each token's log-probability",
    "GenerationParams.top_logprobs": "alternatives reported per token",
    "GenerationParams.json_schema": "constrain the output to this JSON Schema",
    "Prompt.schema_version": "schema version of this file",
    "Prompt.kind": "document kind",
    "Prompt.id": "stable id; names the files",
    "Prompt.name": "display name (not empty)",
    "Prompt.description": "what the prompt is for",
    "Prompt.tags": "free-form tags (library filter)",
    "Prompt.system": "system message template (Jinja)",
    "Prompt.user_template": "user message template (Jinja, `{{ variables }}`)",
    "Prompt.variables": "declared variables (defaults and help texts)",
    "Prompt.few_shot": "few-shot examples and how they are used",
    "Prompt.cot": "chain-of-thought scaffold",
    "Prompt.params": "sampling parameters",
    "Prompt.created": "creation time (UTC)",
    "Prompt.updated": "time of the last save (UTC)",
    "TestRow.vars": "values for the prompt's variables",
    "TestRow.expected": "the expected answer",
    "TestRow.group": "group name for per-group metrics",
    "TestSet.name": "display name",
    "TestSet.prompt_id": "the prompt this test set belongs to",
    "TestSet.rows": "the test cases",
    "TrainConfig.num_virtual_tokens": "soft prompt length",
    "TrainConfig.init": "initialisation: the prompt's text, sampled vocabulary, or random",
    "TrainConfig.init_text": "text for `text` initialisation (null = the prompt's own)",
    "TrainConfig.learning_rate": "AdamW learning rate",
    "TrainConfig.weight_decay": "AdamW weight decay",
    "TrainConfig.steps": "optimiser steps",
    "TrainConfig.batch_size": "examples per step (per process under `accelerate launch`)",
    "TrainConfig.eval_every": "steps between validations",
    "TrainConfig.early_stopping_patience": (
        "validations without improvement before stopping; null = never"
    ),
    "TrainConfig.device": "training device",
    "TrainConfig.precision": "auto: bf16/fp16 on a GPU, fp32 on the CPU",
    "TrainConfig.seed": "seeds the split, the initialisation and the batch order",
    "TrainConfig.max_length": "longest training sequence in tokens",
    "SoftPrompt.prompt_id": "the prompt it was graduated from",
    "SoftPrompt.prompt_version": "that prompt's version at training time",
    "SoftPrompt.base_model": "id of the model it was trained on",
    "SoftPrompt.base_model_hash": "hash of that model's weights; must match to run",
    "SoftPrompt.num_virtual_tokens": "rows of the tensor",
    "SoftPrompt.hidden_size": "columns of the tensor (the model's embedding width)",
    "SoftPrompt.train_config": "the training settings used",
    "SoftPrompt.data_hash": "hash of the training and validation data",
    "SoftPrompt.metrics": "final training metrics (steps, best_step, losses, accuracy)",
    "SoftPrompt.curves": "training curves (train_loss, val_loss, val_accuracy, val_step)",
    "SoftPrompt.tensor_file": "file name of the tensor, beside this file",
    "RunStats.prompt_tokens": "tokens of the prompt (all steps of a chain)",
    "RunStats.completion_tokens": "tokens generated (all steps of a chain)",
    "RunStats.time_to_first_token_s": "seconds to the first generated token",
    "RunStats.tokens_per_s": "decoding speed after the first token",
    "RunStats.total_s": "seconds for the whole call",
    "RunStats.finish_reason": "why generation ended (e.g. stop, length, cancelled)",
    "Message.role": "who speaks",
    "Message.content": "the message text",
    "SoftPrompt.init": "how the tensor was initialised",
    "SoftPrompt.init_text": "the text of `text` initialisation",
    "RunRecord.prompt_id": "the prompt that ran (null for ad-hoc text)",
    "RunRecord.prompt_version": "that prompt's version",
    "RunRecord.stats": "token counts and timings",
    "RunRecord.model": "model id",
    "RunRecord.backend": "backend that ran it",
    "RunRecord.soft_prompt_id": "the soft prompt it ran with, if any",
    "RunRecord.params": "the sampling parameters used",
    "RunRecord.variables": "the variable values used",
    "RunRecord.messages": "the chat messages of the (first) call",
    "RunRecord.output": "the final output",
    "VariantSpec.name": "column name in the results",
    "VariantSpec.backend": "backend override; null = the model's default",
    "VariantSpec.cot_mode": "chain-of-thought override; null = as the prompt says",
    "CaseResult.row": "index of the test row",
    "CaseResult.output": "the model's output (or the chosen label)",
    "CaseResult.answer": "the answer the metrics scored (extracted from reasoning)",
    "CaseResult.scores": "metric name → score (0 to 1)",
    "CaseResult.label_scores": "likelihood mode: log-likelihood of each label",
    "CaseResult.latency_s": "seconds the case took",
    "CaseResult.context_tokens": "prompt tokens per call (virtual tokens included)",
    "CaseResult.completion_tokens": "tokens generated (0 in likelihood mode)",
    "CaseResult.error": "why the case failed, if it did",
    "VariantSummary.name": "the variant's name",
    "VariantSummary.cases": "cases evaluated",
    "VariantSummary.metrics": "mean of each metric, plus costs and the error count",
    "VariantSummary.groups": "the same means per test-row group",
    "EvalRun.test_set_id": "the test set evaluated",
    "EvalRun.test_set_name": "test set name at the time of the run",
    "EvalRun.split": "the split evaluated; null = all rows",
    "EvalRun.mode": "`generate` (text metrics) or `likelihood` (label scoring)",
    "EvalRun.metrics": "the metrics measured",
    "EvalRun.variants": "the compared variants (columns)",
    "EvalRun.results": "one list of case results per variant",
    "EvalRun.summaries": "one aggregate per variant",
    "EvalRun.complete": "false when the evaluation was stopped early",
    "ModelSpec.id": "stable id (from the name)",
    "ModelSpec.name": "display name",
    "ModelSpec.source": "GGUF file, Hugging Face folder, or OpenAI-compatible server",
    "ModelSpec.embedded": "true only for the embedded default",
}
_COMMON = {
    "schema_version": "schema version of this file",
    "kind": "document kind",
    "id": "stable id; names the file",
    "created": "creation time (UTC)",
    "updated": "time of the last save (UTC)",
    "name": "display name",
    "description": "free text",
    "prompt_id": "the prompt it belongs to",
}


# ---------------------------------------------------------------------------
# Schema helpers


def _models() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout's package, not an installed one
    import workbench.core.models as models

    return models


def document_models() -> dict[str, Any]:
    """The document kinds, in presentation order (every kind of the schema)."""
    kinds = _models()._KINDS
    if set(kinds) != set(KIND_ORDER):
        raise SystemExit(
            f"gen_docs: the schema's document kinds {sorted(kinds)} differ from KIND_ORDER "
            f"{sorted(KIND_ORDER)}; update scripts/gen_docs.py"
        )
    return {kind: kinds[kind] for kind in KIND_ORDER}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return name.lower()


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _is_enum(schema: dict[str, Any]) -> bool:
    return "enum" in schema and "properties" not in schema


def type_text(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A readable type for a property schema: refs resolved, enums listed."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        target = defs[name]
        if _is_enum(target):
            return " | ".join(_code(v) for v in target["enum"])
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        text = " or ".join(type_text(b, defs) for b in branches)
        return f"{text} or `null`" if len(branches) < len(schema["anyOf"]) else text
    if "const" in schema:
        return _code(schema["const"])
    if "enum" in schema:
        return " | ".join(_code(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {type_text(schema.get('items', {}), defs)}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"map of string → {type_text(extra, defs)}"
        return "object"
    if kind == "string" and schema.get("format") == "date-time":
        return "date-time (ISO 8601)"
    if isinstance(kind, str):
        return kind
    return "any"


_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
)


def constraints_text(schema: dict[str, Any]) -> str:
    """ge/le/gt/lt bounds and patterns, also inside an optional (anyOf) type."""
    parts: list[str] = []
    for branch in [schema, *schema.get("anyOf", [])]:
        for key, template in _BOUNDS:
            if key in branch:
                parts.append(template.format(branch[key]))
        if "pattern" in branch:
            parts.append(f"matches `{branch['pattern']}`")
    return ", ".join(parts)


def default_text(name: str, schema: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" in schema:
        return _code(schema["default"])
    # a default_factory: the schema has no value, so say what an omitted field becomes
    if schema.get("type") == "array":
        return "`[]`"
    if schema.get("type") == "object":
        return "`{}`"
    if "$ref" in schema:
        return "all defaults"
    if schema.get("format") == "date-time":
        return "now"
    if name == "id":
        return "a new random id"
    return "generated"


def field_rows(
    model_name: str, schema: dict[str, Any], defs: dict[str, Any], used: set[str]
) -> Iterator[str]:
    required = set(schema.get("required", []))
    yield "| field | type | default | constraints | description |"
    yield "|---|---|---|---|---|"
    for name, prop in schema.get("properties", {}).items():
        key = f"{model_name}.{name}"
        used.add(key)
        description = prop.get("description") or NOTES.get(key) or _COMMON.get(name, "")
        yield (
            f"| `{name}` | {_cell(type_text(prop, defs))} | "
            f"{_cell(default_text(name, prop, name in required))} | "
            f"{_cell(constraints_text(prop))} | {_cell(description)} |"
        )


def referenced_defs(schema: Any, defs: dict[str, Any]) -> list[str]:
    """Names of the nested (non-enum) types a schema refers to, in order of first use,
    following references transitively."""
    order: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = _ref_name(ref)
                if name not in order and not _is_enum(defs[name]):
                    order.append(name)
                    walk(defs[name])
            for key, value in node.items():
                if key != "$defs":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return order


# ---------------------------------------------------------------------------
# Rendering


def _docstring_paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", inspect.cleandoc(text)) if p.strip()]


def layout_section() -> list[str]:
    """The folder layout and the rules that come with it, from library.py's docstring."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import workbench.core.library as library

    lines = ["## Folder layout", ""]
    for paragraph in _docstring_paragraphs(library.__doc__ or "")[1:]:
        if paragraph.startswith("    "):
            lines += ["```text", textwrap.dedent(paragraph), "```", ""]
        else:
            lines += [" ".join(paragraph.split()), ""]
    return lines


def migration_section(models: Any) -> list[str]:
    lines = [
        "## Schema version and migrations",
        "",
        f"This release writes `schema_version` **{models.SCHEMA_VERSION}** in every file "
        f"(and in the manifest `workbench-library.json`). A file with an older version is "
        "migrated in memory when it is read, one version at a time; the file itself is "
        "rewritten only when the app saves that document again. A file without "
        "`schema_version` is read as version 1. A file with a newer version than this "
        "release knows is reported (naming the file) and skipped, never overwritten; a "
        "library whose manifest is newer does not open.",
        "",
        "| kind | from | to | change |",
        "|---|---|---|---|",
    ]
    unchanged: Callable[..., Any] = models._unchanged
    for (kind, version), migrate in sorted(models._MIGRATIONS.items()):
        if migrate is unchanged:
            change = "no change in content (only `schema_version` goes up)"
        else:
            change = " ".join(inspect.cleandoc(migrate.__doc__ or "").split())
        lines.append(f"| `{kind}` | {version} | {version + 1} | {_cell(change)} |")
    lines.append("")
    return lines


def render_format_doc() -> str:
    models = _models()
    kinds = document_models()
    used: set[str] = set()
    shared: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    lines = [
        "<!-- Generated by scripts/gen_docs.py from workbench/core/models.py and the "
        "docstring of workbench/core/library.py. Do not edit: run "
        "`python scripts/gen_docs.py`. -->",
        "",
        "# Library format reference",
        "",
        "A library is one folder of pretty-printed JSON files (UTF-8, one document per "
        "file) that diff well in git; soft-prompt tensors sit beside their metadata as "
        "safetensors. Every document carries `kind` and `schema_version`; unknown fields "
        "are rejected. The full JSON Schemas are in [schema/](schema/), one file per kind.",
        "",
        f"Schema version: **{models.SCHEMA_VERSION}**.",
        "",
        *layout_section(),
        "## Document kinds",
        "",
        "| kind | model | stored in | JSON Schema |",
        "|---|---|---|---|",
    ]
    for kind, model in kinds.items():
        lines.append(
            f"| `{kind}` | [{model.__name__}](#{_anchor(model.__name__)}) | "
            f"{_cell(WHERE[kind])} | [{kind}.schema.json](schema/{kind}.schema.json) |"
        )
    lines.append("")
    for kind, model in kinds.items():
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        lines += [f"### {model.__name__}", ""]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        lines += [f"`kind`: `{kind}`. Where: {WHERE[kind]}.", ""]
        lines += list(field_rows(model.__name__, schema, defs, used))
        nested = referenced_defs(schema, defs)
        if nested:
            links = ", ".join(f"[{n}](#{_anchor(n)})" for n in nested)
            lines += ["", f"Nested types: {links}."]
        lines.append("")
        for name in nested:
            shared.setdefault(name, (defs[name], defs))
    lines += [
        "## Nested types",
        "",
        "Objects used inside the documents above (each is also defined under `$defs` in "
        "the JSON Schemas). Unknown fields are rejected here too.",
        "",
    ]
    for name in sorted(shared):
        schema, defs = shared[name]
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        lines += list(field_rows(name, schema, defs, used))
        lines.append("")
    lines += migration_section(models)
    lines += bundle_section()
    stale = sorted(set(NOTES) - used)
    if stale:
        raise SystemExit(
            "gen_docs: NOTES name fields the models no longer have: " + ", ".join(stale)
        )
    return "\n".join(lines).rstrip("\n") + "\n"


def bundle_section() -> list[str]:
    """The exchange bundle: a zip of library documents (workbench.core.exchange.bundle)."""
    from workbench.core.exchange import bundle

    return [
        "## Exchange bundle",
        "",
        f"File → Export… and `workbench library export --format bundle` write a zip "
        f"archive, format `{bundle.FORMAT_ID}` version {bundle.FORMAT_VERSION}, that holds "
        "library documents byte for byte (exported, imported into an empty library and "
        "exported again, it is the same file):",
        "",
        *[f"    {line}" for line in _bundle_layout(bundle.__doc__ or "")],
        "",
        "Its JSON Schema (the manifest and each document kind, and which zip entry follows "
        "which) is [schema/bundle.schema.json](schema/bundle.schema.json); "
        "`workbench library schema` prints it. Import refuses entries outside this layout, "
        f"links, more than {bundle.MAX_ENTRIES} entries, more than "
        f"{bundle.MAX_TOTAL_BYTES >> 20} MiB uncompressed or a compression ratio above "
        f"{bundle.MAX_RATIO}:1, and any file whose SHA-256 differs from the manifest.",
        "",
    ]


def _bundle_layout(docstring: str) -> list[str]:
    """The indented layout block of the bundle module's docstring."""
    lines = docstring.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("manifest.json"))
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def render_bundle_schema() -> str:
    from workbench.core.exchange.bundle import bundle_schema

    # the same text as `workbench library schema`
    return json.dumps(bundle_schema(), indent=2, sort_keys=True) + "\n"


def render_schema(kind: str, model: Any) -> str:
    schema = {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[Path, str]:
    """Every generated file, by path relative to the repository root."""
    files = {FORMAT_DOC: render_format_doc()}
    for kind, model in document_models().items():
        files[SCHEMA_DIR / f"{kind}.schema.json"] = render_schema(kind, model)
    files[SCHEMA_DIR / "bundle.schema.json"] = render_bundle_schema()
    return files


def stale_files(root: Path = ROOT) -> list[str]:
    """Generated files that are missing or differ, and schema files nothing generates."""
    files = render_all()
    problems = []
    for path, text in files.items():
        target = root / path
        if not target.is_file():
            problems.append(f"{path} is missing")
        elif target.read_text("utf-8") != text:
            problems.append(f"{path} is out of date")
    for extra in sorted((root / SCHEMA_DIR).glob("*.schema.json")):
        if extra.relative_to(root) not in files:
            problems.append(f"{extra.relative_to(root)} is not generated any more")
    return problems


def write_all(root: Path = ROOT) -> list[Path]:
    files = render_all()
    written = []
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text("utf-8") != text:
            target.write_text(text, "utf-8")
            written.append(path)
    for extra in sorted((root / SCHEMA_DIR).glob("*.schema.json")):
        if extra.relative_to(root) not in files:
            extra.unlink()
            written.append(extra.relative_to(root))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a generated file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files()
        for problem in problems:
            print(f"stale: {problem}", file=sys.stderr)
        if problems:
            print("run `python scripts/gen_docs.py` and commit the result", file=sys.stderr)
            return 1
        print("docs are up to date")
        return 0
    written = write_all()
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("docs are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
