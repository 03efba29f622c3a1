"""The data model: one versioned pydantic schema for everything the library stores.

Every stored object carries `schema_version`; `load_document` migrates older
versions before validating, and validation errors name the offending field.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import pydantic.main
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

# These documents use no pydantic plugins, and looking for some reads the metadata of every
# installed package when the first schema is built (at start-up, for the library list).
# Someone who wants a plugin (to trace validation, say) sets the variable themselves.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

SCHEMA_VERSION = 2
"""The schema version written by this release. Version 1 was the pre-release draft
format (see `_migrate_prompt_v1`)."""

_T = TypeVar("_T", bound="BaseModel")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- choice lists: one source of truth for the schema, argparse and the combo boxes
# (`typing.get_args(BackendName)` lists the values)
BackendName = Literal["llama.cpp", "transformers", "openai"]
ModelSource = Literal["gguf", "hf", "openai"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
InitMode = Literal["text", "vocab", "random"]
Split = Literal["train", "validation", "test"]
EvalMode = Literal["auto", "generate", "likelihood"]
"""How an evaluation scores: `auto` picks likelihood when the test set has labels."""
ScoringMode = Literal["generate", "likelihood"]
"""What an evaluation ran as (an `EvalMode` once `auto` is decided)."""
SoftPromptPlacement = Literal["replace", "add", "start"]
"""Where a soft prompt's virtual tokens go: `replace` — in place of the system message
(Lester et al.: the instruction becomes the initialisation text); `add` — right after the
system message, which stays; `start` — before the whole prompt (soft prompts made before
placements existed)."""
TuneMethod = Literal["soft", "lora"]
"""How `workbench tune` graduates a prompt: `soft` — a soft prompt (prompt tuning, the
base model frozen); `lora` — a LoRA adapter (low-rank updates of the model's weights)."""


Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
"""Ids name files in the library, so they are restricted to safe file-name characters."""


def new_id() -> str:
    """A short random id, stable across renames (files are named by id)."""
    return secrets.token_hex(6)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def utc_now_precise() -> datetime:
    """Now, to the microsecond: for runs and evaluations, listed newest first, which a
    user can make several of within one second (to the second, they tied)."""
    return datetime.now(UTC)


class SchemaError(ValueError):
    """A stored or imported document does not match the schema.

    `problems` holds one `(location, message)` pair per problem, the location
    being a dotted field path such as `few_shot.examples.2.output`.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "; ".join(f"{loc or '(document)'}: {msg}" for loc, msg in problems)
        super().__init__(f"{source}: {lines}")


_DEFER_BUILD = hasattr(pydantic.main, "_rebuild_lock")
"""Each model's validator is built when the model is first used, not when this module is
imported (building them all took about 40 ms of the app's start-up, for documents most
starts never open), where pydantic builds them under a lock (2.14 does): the app
validates on its worker threads too, and an older pydantic could let a second thread
validate with a half-built model."""


class _Model(BaseModel):
    # NaN/inf (a diverged loss in a curve, say) are written as the constants NaN and
    # Infinity, which the reader accepts, instead of null, which it would then refuse
    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        ser_json_inf_nan="constants",
        defer_build=_DEFER_BUILD,
    )


# ---------------------------------------------------------------------------
# Prompt parts


class Variable(_Model):
    """A template variable the user fills in."""

    name: str
    default: str | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"{value!r} is not a valid variable name (letters, digits, _)")
        return value


class FewShotExample(_Model):
    """One input → output demonstration.

    `input` is the example's user text. When `vars` is given instead, the user turn
    is the prompt's own user template rendered with those values, so examples and
    test rows look exactly like real calls.
    """

    input: str = ""
    vars: dict[str, str] = Field(default_factory=dict)
    output: str


class FewShotStyle(StrEnum):
    CHAT = "chat"  # each example as a user turn and an assistant turn
    INLINE = "inline"  # all examples as one block at the start of the final user turn


class FewShotOrder(StrEnum):
    AS_WRITTEN = "as_written"
    REVERSED = "reversed"
    RANDOM = "random"  # shuffled with `seed`, so the order is reproducible


class FewShot(_Model):
    examples: list[FewShotExample] = Field(default_factory=list)
    count: int | None = Field(default=None, ge=0, description="how many to include; None = all")
    order: FewShotOrder = FewShotOrder.AS_WRITTEN
    seed: int = 0
    style: FewShotStyle = FewShotStyle.CHAT
    example_format: str = Field(
        default="Input: {{ input }}\nOutput: {{ output }}",
        description="template of one example in inline style (variables: input, output, and vars)",
    )
    inline_header: str = "Examples:"
    separator: str = "\n\n"


class CoTMode(StrEnum):
    OFF = "off"
    ZERO_SHOT = "zero_shot"  # append a trigger such as "Let's think step by step."
    SCAFFOLD = "scaffold"  # wrap the user turn in a reasoning template
    CHAIN = "chain"  # several steps, each its own template, outputs feed later steps


BUILTIN_TRIGGERS: tuple[str, ...] = (
    "Let's think step by step.",
    "Let's work this out in a step by step way to be sure we have the right answer.",
    "First, let's break the problem down into smaller parts.",
    "Take a deep breath and work on this problem step-by-step.",
)


class ChainStep(_Model):
    """One step of a multi-step chain; earlier steps' outputs are variables named after them."""

    name: str
    template: str
    system: str | None = Field(default=None, description="None = the prompt's system message")

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"step name {value!r} must be usable as a variable name")
        return value


class ChainOfThought(_Model):
    mode: CoTMode = CoTMode.OFF
    trigger: str = BUILTIN_TRIGGERS[0]
    scaffold: str = Field(
        default="{{ user }}\n\nReason step by step, then give the final answer on a last line "
        "that starts with 'Answer:'.",
        description="template wrapping the user turn; `user` is the rendered user turn",
    )
    answer_pattern: str | None = Field(
        default=r"(?im)^\s*answer:\s*(.+)$",
        description="regex whose first group extracts the final answer from the reasoning",
    )
    steps: list[ChainStep] = Field(default_factory=list)

    @field_validator("answer_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
            except (RecursionError, OverflowError):  # deeply nested, or a huge repeat count
                raise ValueError("not a usable regular expression (too complex)") from None
        return value

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[ChainStep]) -> list[ChainStep]:
        names = [s.name for s in steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate step names: {', '.join(dupes)}")
        return steps


class GenerationParams(_Model):
    """Sampling parameters with the same meaning on every backend."""

    temperature: float = Field(default=0.0, ge=0.0, le=5.0, description="0 = greedy")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="0 = disabled")
    max_new_tokens: int = Field(default=256, ge=1, le=32768)
    repetition_penalty: float = Field(default=1.0, gt=0.0, le=5.0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = Field(default=0, ge=0, le=20)
    grammar: str | None = Field(default=None, description="GBNF grammar (llama.cpp)")
    json_schema: dict[str, Any] | None = None


class Prompt(_Model):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["prompt"] = "prompt"
    id: Id = Field(default_factory=new_id)
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list, description='e.g. "production"')
    system: str = ""
    user_template: str = ""
    variables: list[Variable] = Field(default_factory=list)
    few_shot: FewShot = Field(default_factory=FewShot)
    cot: ChainOfThought = Field(default_factory=ChainOfThought)
    params: GenerationParams = Field(default_factory=GenerationParams)
    model: str | None = Field(default=None, description="preferred model; None = default")
    sample_values: dict[str, str] = Field(
        default_factory=dict, description="variable values the editor previews and runs with"
    )
    version: int = Field(default=1, ge=1, description="incremented by the library on each save")
    created: datetime = Field(default_factory=utc_now)
    updated: datetime = Field(default_factory=utc_now)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a prompt needs a name")
        return value

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    def content_equal(self, other: Prompt) -> bool:
        """Same content, ignoring bookkeeping (version number and timestamps)."""
        skip = {"version", "created", "updated"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


# ---------------------------------------------------------------------------
# Test sets, soft prompts, runs


class TestRow(_Model):
    __test__ = False  # not a pytest class

    vars: dict[str, str] = Field(default_factory=dict)
    expected: str = ""
    group: str | None = None
    split: Split | None = Field(
        default=None, description="set by TestSet splitting; None = not split"
    )


class TestSet(_Model):
    __test__ = False

    schema_version: int = SCHEMA_VERSION
    kind: Literal["test_set"] = "test_set"
    id: Id = Field(default_factory=new_id)
    name: str
    prompt_id: Id | None = None
    description: str = ""
    labels: list[str] | None = Field(
        default=None, description="fixed label set: enables scoring labels by likelihood"
    )
    rows: list[TestRow] = Field(default_factory=list)
    created: datetime = Field(default_factory=utc_now)
    updated: datetime = Field(default_factory=utc_now)


class TrainConfig(_Model):
    num_virtual_tokens: int = Field(default=20, ge=1, le=512)
    init: InitMode = "text"
    init_text: str | None = None
    learning_rate: float = Field(default=0.1, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    steps: int = Field(default=225, ge=1)
    epochs: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="passes over the training data; when set, it decides the steps",
    )
    batch_size: int = Field(default=8, ge=1)
    eval_every: int = Field(default=25, ge=1)
    early_stopping_patience: int | None = Field(default=2, ge=1)
    device: Device = "auto"
    precision: Precision = "auto"
    seed: int = 0
    max_length: int = Field(default=256, ge=8)
    placement: SoftPromptPlacement = Field(
        default="replace", description="where the virtual tokens go (see SoftPrompt.placement)"
    )

    def total_steps(self, train_examples: int, processes: int = 1) -> int:
        """Optimiser steps of a run: `steps`, or `epochs` passes over the training
        examples in batches of `batch_size` per process."""
        if self.epochs is None:
            return self.steps
        per_step = self.batch_size * max(processes, 1)
        return max(1, math.ceil(self.epochs * max(train_examples, 1) / per_step))


class SoftPrompt(_Model):
    """A learned soft prompt: metadata here, the tensor in `tensor_file` (safetensors)."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["soft_prompt"] = "soft_prompt"
    id: Id = Field(default_factory=new_id)
    name: str
    prompt_id: Id | None = None
    prompt_version: int | None = None
    base_model: str
    base_model_hash: str
    num_virtual_tokens: int = Field(ge=1)
    hidden_size: int | None = Field(default=None, ge=1)
    init: InitMode = "text"
    init_text: str | None = None
    train_config: TrainConfig = Field(default_factory=TrainConfig)
    data_hash: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    curves: dict[str, list[float]] = Field(default_factory=dict)
    tensor_file: str
    placement: SoftPromptPlacement = Field(
        default="start",
        description="where the virtual tokens go: replace (instead of the system message), "
        "add (after it) or start (before the whole prompt, as soft prompts made before "
        "placements existed)",
    )
    created: datetime = Field(default_factory=utc_now)


class LoraSettings(_Model):
    """A LoRA adapter's shape (PEFT `LoraConfig`): rank, scaling and where it goes."""

    rank: int = Field(default=8, ge=1, le=1024, description="the rank r of each update")
    alpha: float = Field(default=16.0, gt=0, description="scaling: the update is alpha/r")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=list,
        description="names of the linear layers adapted (empty: chosen from the model's "
        "module names, the attention's query and value projections where it has them)",
    )


class LoraAdapter(_Model):
    """A LoRA adapter trained for (or imported for) a prompt: metadata here, the PEFT
    adapter folder (`adapter_config.json` + `adapter_model.safetensors`) in `folder`."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["lora_adapter"] = "lora_adapter"
    id: Id = Field(default_factory=new_id)
    name: str
    prompt_id: Id | None = None
    prompt_version: int | None = None
    base_model: str
    base_model_hash: str
    lora: LoraSettings = Field(default_factory=LoraSettings)
    train_config: TrainConfig | None = Field(
        default=None,
        description="the training run (its soft-prompt fields are unused); null when imported",
    )
    data_hash: str | None = None
    trainable_parameters: int | None = Field(default=None, ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)
    curves: dict[str, list[float]] = Field(default_factory=dict)
    folder: str = Field(description="the adapter folder's name inside `lora_adapters/`")
    created: datetime = Field(default_factory=utc_now)


class RunStats(_Model):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    time_to_first_token_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float | None = None
    finish_reason: str | None = None


class Message(_Model):
    role: Literal["system", "user", "assistant"]
    content: str


class RunRecord(_Model):
    """What was run, on which model, with which parameters, and what came out."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["run"] = "run"
    id: Id = Field(default_factory=new_id)
    prompt_id: Id | None = None
    prompt_version: int | None = None
    model: str
    backend: str
    soft_prompt_id: Id | None = None
    adapter_id: Id | None = Field(default=None, description="the LoRA adapter it ran with")
    params: GenerationParams = Field(default_factory=GenerationParams)
    variables: dict[str, str] = Field(default_factory=dict)
    messages: list[Message] = Field(default_factory=list)
    output: str = ""
    step_outputs: dict[str, str] = Field(default_factory=dict, description="chain steps")
    stats: RunStats = Field(default_factory=RunStats)
    created: datetime = Field(default_factory=utc_now_precise)


class VariantSpec(_Model):
    """One column of an evaluation: a prompt (version), a model, and optional overrides."""

    name: str
    prompt_id: Id | None = Field(default=None, description="None = the evaluated prompt")
    prompt_version: int | None = Field(default=None, description="None = the current one")
    model: str | None = Field(default=None, description="model id; None = the default")
    backend: BackendName | None = None
    few_shot_count: int | None = Field(default=None, ge=0, description="0 = zero-shot")
    cot_mode: CoTMode | None = None
    soft_prompt_id: Id | None = Field(default=None, description="run with this soft prompt")
    adapter_id: Id | None = Field(default=None, description="run with this LoRA adapter")


class CaseRating(_Model):
    """A person's verdict on one output: thumbs, 1–5 stars and a note (any may be empty)."""

    thumbs: Literal["up", "down"] | None = None
    stars: int | None = Field(default=None, ge=1, le=5)
    note: str = ""

    def is_empty(self) -> bool:
        return self.thumbs is None and self.stars is None and not self.note.strip()


class CaseResult(_Model):
    """One test case under one variant."""

    row: int
    output: str = ""
    answer: str = ""
    scores: dict[str, float] = Field(default_factory=dict)
    label_scores: dict[str, float] | None = None
    latency_s: float = 0.0
    context_tokens: int | None = None
    completion_tokens: int | None = None
    expected_logprob: float | None = Field(
        default=None,
        description="log-likelihood (nats) of the expected output right after the prompt",
    )
    expected_tokens: int | None = Field(
        default=None, ge=0, description="tokens of the expected output (for nats per token)"
    )
    rating: CaseRating | None = Field(default=None, description="a person's rating of the output")
    error: str | None = None


class VariantSummary(_Model):
    name: str
    cases: int = 0
    metrics: dict[str, float] = Field(default_factory=dict)
    groups: dict[str, dict[str, float]] = Field(default_factory=dict)


class EvalRun(_Model):
    """A stored evaluation: variants × test cases, with per-variant aggregates."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["eval_run"] = "eval_run"
    id: Id = Field(default_factory=new_id)
    prompt_id: Id | None = None
    test_set_id: Id | None = None
    test_set_name: str = ""
    split: Split | None = None
    mode: ScoringMode = "generate"
    metrics: list[str] = Field(default_factory=list)
    variants: list[VariantSpec] = Field(default_factory=list)
    results: list[list[CaseResult]] = Field(default_factory=list)
    summaries: list[VariantSummary] = Field(default_factory=list)
    complete: bool = True
    method_table: dict[str, Any] | None = Field(
        default=None,
        description="the method table computed from this run (the Methods tab); "
        "absent in other runs",
    )
    created: datetime = Field(default_factory=utc_now_precise)


class ModelSpec(_Model):
    """A model the workbench can run: a GGUF file, a Hugging Face folder, or a server."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["model"] = "model"
    id: Id
    name: str
    source: ModelSource
    path: str | None = Field(default=None, description="file (gguf) or folder (hf)")
    url: str | None = Field(default=None, description="base URL of an OpenAI-compatible server")
    remote_model: str | None = Field(default=None, description="model name on the server")
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the server's API key"
    )
    backend: BackendName | None = Field(
        default=None, description="None = the natural one for the source"
    )
    allow_pickle: bool = Field(default=False, description="accept pickle .bin weights (unsafe)")
    embedded: bool = False

    def default_backend(self) -> str:
        if self.backend:
            return self.backend
        return {"gguf": "llama.cpp", "hf": "transformers", "openai": "openai"}[self.source]


Document = Prompt | TestSet | SoftPrompt | LoraAdapter | RunRecord | ModelSpec | EvalRun

_KINDS: dict[str, type[Document]] = {
    "prompt": Prompt,
    "test_set": TestSet,
    "soft_prompt": SoftPrompt,
    "lora_adapter": LoraAdapter,
    "run": RunRecord,
    "model": ModelSpec,
    "eval_run": EvalRun,
}


# ---------------------------------------------------------------------------
# Migrations: each takes a raw dict of version N and returns version N + 1.


def _migrate_prompt_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 (draft format): `template` instead of `user_template`, few-shot examples as a
    top-level list `examples` of {"input", "output"}, and `cot` as the trigger string."""
    data = dict(data)
    if "template" in data:
        data["user_template"] = data.pop("template")
    examples = data.pop("examples", None)
    few_shot = data.get("few_shot")
    if examples is not None and (few_shot is None or isinstance(few_shot, dict)):
        data["few_shot"] = {**(few_shot or {}), "examples": examples}
    cot = data.get("cot")
    if isinstance(cot, str):
        data["cot"] = {"mode": "zero_shot", "trigger": cot} if cot else {"mode": "off"}
    return data


def _unchanged(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data)


_MIGRATIONS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("prompt", 1): _migrate_prompt_v1,
    ("test_set", 1): _unchanged,
    ("soft_prompt", 1): _unchanged,
    ("lora_adapter", 1): _unchanged,
    ("run", 1): _unchanged,
    ("model", 1): _unchanged,
    ("eval_run", 1): _unchanged,
}


def migrate(data: dict[str, Any], source: str = "document") -> dict[str, Any]:
    """Bring a raw document of any known older schema version up to SCHEMA_VERSION."""
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise SchemaError(source, [("kind", f"unknown document kind {kind!r}")])
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise SchemaError(source, [("schema_version", f"invalid schema version {version!r}")])
    if version > SCHEMA_VERSION:
        raise SchemaError(
            source,
            [
                (
                    "schema_version",
                    f"written by a newer release (schema {version}; "
                    f"this release reads up to {SCHEMA_VERSION})",
                )
            ],
        )
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[(kind, version)](data)
        version += 1
        data["schema_version"] = version
    return data


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


def load_document(data: Any, source: str = "document") -> Document:
    """Validate a raw (parsed JSON/YAML) document of any kind, migrating older versions."""
    if not isinstance(data, dict):
        raise SchemaError(source, [("", f"expected an object, got {type(data).__name__}")])
    data = migrate(data, source)
    model = _KINDS[data["kind"]]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(source, _problems(exc)) from None


def validate_as(model: type[_T], data: Any, source: str = "document") -> _T:
    """Validate `data` as `model`, raising SchemaError that names each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(source, _problems(exc)) from None
