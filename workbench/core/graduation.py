"""Graduate to soft prompt: the whole flow behind the button and `workbench tune`.

1. The prompt's test set is split (seeded) if it is not already; the split is saved so
   the held-out rows stay held out.
2. A soft prompt is trained on the prompt's few-shot examples + the train split, with
   the validation split for early stopping (`tuning.train_soft_prompt`).
3. The result is saved in the library, linked to its prompt, with provenance: base
   model and its file hash, data hash, config, curves, final metrics.
4. Zero-shot hard prompt vs few-shot hard prompt vs soft prompt are compared on the
   held-out test split (accuracy and context tokens per call), and the comparison is
   saved as an evaluation run.

Before that, both front ends plan the same way: `train_config` turns their settings
into a `TrainConfig`, `training_test_set` picks the test set, `prepare` counts what
training will use, and `describe_prepared` / `describe_plan` say so.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from workbench.core.backends.base import Backend, BackendError, BackendSettings
from workbench.core.evaluation import EvalEvent, EvalFinished, evaluate
from workbench.core.library import Library
from workbench.core.models import (
    EvalRun,
    LoraAdapter,
    ModelSpec,
    Prompt,
    SoftPrompt,
    TestSet,
    TrainConfig,
    VariantSpec,
    new_id,
    validate_as,
)
from workbench.core.testsets_io import rows_in_split, split_test_set
from workbench.core.tuning import (
    StepEvent,
    TrainingCosts,
    TrainingError,
    TuneEvent,
    TuningFinished,
    TuningResult,
    ValidationEvent,
    data_hash,
    init_text,
    load_base_model,
    make_accelerator,
    pick_device,
    pick_precision,
    train_soft_prompt,
    training_data,
    zero_shot,
)


@dataclass(frozen=True)
class Prepared:
    """What training will use, for the panel to show before Start."""

    test_set: TestSet | None
    train_examples: int
    validation_examples: int
    held_out_rows: int
    labels: list[str] | None


@dataclass(frozen=True)
class SoftPromptSaved:
    soft_prompt: SoftPrompt


@dataclass(frozen=True)
class ComparisonStarted:
    variants: list[str]
    rows: int


@dataclass(frozen=True)
class ComparisonFinished:
    run: EvalRun


ComparisonEvent = ComparisonStarted | EvalEvent | ComparisonFinished
"""What `compare_on_held_out` yields (after a soft prompt or a LoRA adapter)."""

GraduationEvent = TuneEvent | SoftPromptSaved | ComparisonEvent


def ensure_split(
    library: Library | None, test_set: TestSet | None, seed: int = 0
) -> TestSet | None:
    """Split a test set 50/25/25 (train/validation/test) unless it is split already."""
    if test_set is None or any(row.split for row in test_set.rows):
        return test_set
    split = split_test_set(test_set, train=0.5, validation=0.25, seed=seed)
    if library is not None and test_set.id in library.test_sets:
        split = library.save_test_set(split)
    return split


def prepare(
    library: Library | None, prompt: Prompt, test_set: TestSet | None, seed: int = 0
) -> Prepared:
    test_set = ensure_split(library, test_set, seed)
    train, validation = training_data(prompt, test_set)
    held_out = len(rows_in_split(test_set, "test")) if test_set else 0
    labels = list(test_set.labels) if test_set and test_set.labels else None
    return Prepared(test_set, len(train), len(validation), held_out, labels)


def train_config(options: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from a front end's settings (the form, `workbench tune`'s options),
    keyed by TrainConfig field: None means "the default"; an `early_stopping_patience`
    of 0 turns early stopping off. Raises `SchemaError` naming each bad setting."""
    given = {k: v for k, v in options.items() if v is not None}
    if given.get("early_stopping_patience") == 0:
        given["early_stopping_patience"] = None  # 0 = never stop early
    return validate_as(TrainConfig, given, "training options")


def training_test_set(library: Library | None, prompt: Prompt, ref: str | None) -> TestSet | None:
    """The test set a graduation uses: `ref` (a file, name or id) when given, else the
    prompt's first test set, else None (training on the few-shot examples alone)."""
    from workbench.core.flows.lookup import resolve_test_set

    if ref is None and (library is None or not library.test_sets_for(prompt.id)):
        return None
    return resolve_test_set(library, prompt, ref)


def describe_prepared(prepared: Prepared, few_shot: int) -> str:
    """What training will use, in one line (the Graduate panel's summary): `few_shot`
    is the number of the prompt's few-shot examples."""
    from_rows = prepared.train_examples - few_shot
    if prepared.test_set is None:
        train = f"{prepared.train_examples} training examples (few-shot examples only)"
    else:
        train = (
            f"{prepared.train_examples} training examples "
            f"({few_shot} few-shot + {from_rows} from the train split)"
        )
    validation = (
        f"{prepared.validation_examples} validation rows"
        if prepared.validation_examples
        else "no validation rows (no early stopping)"
    )
    held_out = (
        f"{prepared.held_out_rows} held-out rows for the comparison"
        if prepared.held_out_rows
        else "no held-out rows (no comparison)"
    )
    labels = f"labels: {', '.join(prepared.labels)}" if prepared.labels else "no label set"
    return " · ".join([train, validation, held_out, labels])


def describe_plan(prompt: Prompt, spec: ModelSpec, prepared: Prepared, config: TrainConfig) -> str:
    """The graduation about to run, in one line (`workbench tune` prints it)."""
    epochs = f" ({config.epochs:g} epochs)" if config.epochs else ""
    return (
        f"graduating {prompt.name!r} on {spec.name}: {prepared.train_examples} training, "
        f"{prepared.validation_examples} validation, {prepared.held_out_rows} held-out rows; "
        f"{config.num_virtual_tokens} virtual tokens, "
        f"{config.total_steps(prepared.train_examples)} steps{epochs}"
    )


SMALLER: dict[str, str] = {"soft": "fewer virtual tokens", "lora": "a lower rank"}
"""What to shrink besides the batch when a method runs out of memory (`TuneMethod`)."""


def describe_training_error(exc: BaseException, method: str = "soft") -> str:
    """A message for a training failure: what failed and what to change (for out of
    memory, in the terms of `method`, a `TuneMethod`: a soft prompt's virtual tokens, a
    LoRA adapter's rank)."""
    text = str(exc)
    if isinstance(exc, TrainingError):
        return text
    if "OutOfMemory" in type(exc).__name__ or "out of memory" in text.lower():
        smaller = SMALLER.get(method, SMALLER["soft"])
        return f"out of memory ({text}); try a smaller batch size or {smaller}"
    if isinstance(exc, BackendError | ValueError | OSError):
        return text
    return f"{type(exc).__name__}: {exc}"


def per_call_tokens(backend: Backend, prompt: Prompt, n_virtual: int) -> dict[str, int]:
    """Context tokens one call of the prompt takes (with its sample values, or empty
    ones): zero-shot, with its few-shot examples, and with a soft prompt of `n_virtual`
    tokens in each placement (the soft prompt runs zero-shot). Empty when the backend
    cannot count (a server)."""
    import numpy as np

    from workbench.core.placement import VirtualTokens
    from workbench.core.templates import prompt_variables, render_messages

    width = backend.hidden_size
    if width is None:
        return {}
    values = {name: prompt.sample_values.get(name, "") for name in prompt_variables(prompt)}
    zero_messages = render_messages(zero_shot(prompt), values)
    soft: Any = np.zeros((n_virtual, width), dtype=np.float32)
    costs = {
        "zero-shot": backend.context_tokens(zero_messages),
        "few-shot": backend.context_tokens(render_messages(prompt, values)),
    }
    for placement in ("replace", "add"):
        costs[placement] = backend.context_tokens(zero_messages, VirtualTokens(soft, placement))
    return costs


def model_folder(spec: ModelSpec, cancel: threading.Event | None = None) -> Path:
    """The Hugging Face folder training loads (a GGUF is dequantised and cached once;
    a set `cancel` stops that)."""
    from workbench.core.backends.hf import gguf_as_hf_folder

    if spec.source == "gguf":
        return gguf_as_hf_folder(Path(str(spec.path)), cancel)
    if spec.source == "hf":
        return Path(str(spec.path))
    raise TrainingError(f"model {spec.name!r} is served over HTTP; train on a local model")


def model_hash(spec: ModelSpec, cancel: threading.Event | None = None) -> str:
    from workbench.core.softprompt import model_hash_for_spec

    return model_hash_for_spec(spec, cancel)


def comparison_cases(prompt: Prompt, test_set: TestSet | None, compare: bool) -> int:
    """How many cases the held-out comparison after training scores (`compare_on_held_out`:
    each held-out row for zero-shot, few-shot when the prompt has examples, and what was
    trained); 0 without a comparison."""
    if not compare or test_set is None:
        return 0
    return len(rows_in_split(test_set, "test")) * (3 if prompt.few_shot.examples else 2)


_E = TypeVar("_E")


def with_comparison_eta(events: Iterable[_E], cases: int, batch_size: int) -> Iterator[_E]:
    """A training run's events with each step's ETA covering the held-out comparison
    that follows it (`cases` from `comparison_cases`), the one rule for a soft prompt and
    a LoRA adapter: a case costs what validation measured per row; before the first
    validation, what one example of a training step does."""
    per_case: float | None = None  # seconds to score one case, measured by validation
    for event in events:
        if isinstance(event, ValidationEvent) and event.rows:
            per_case = event.seconds / event.rows
        elif isinstance(event, StepEvent) and cases:
            guess = per_case
            if guess is None:
                guess = 1 / (event.steps_per_s * batch_size) if event.steps_per_s else 0.0
            event = cast(_E, dataclasses.replace(event, eta_s=event.eta_s + cases * guess))
        yield event


def graduate(
    library: Library,
    prompt: Prompt,
    test_set: TestSet | None,
    spec: ModelSpec,
    config: TrainConfig,
    cancel: threading.Event | None = None,
    pause: threading.Event | None = None,
    name: str | None = None,
    compare: bool = True,
    settings: BackendSettings | None = None,
) -> Iterator[GraduationEvent]:
    """Train, save and compare; every step's events in order."""
    import torch

    cancel = cancel or threading.Event()
    settings = settings or BackendSettings()
    costs = TrainingCosts()
    torch.set_num_threads(settings.threads)
    test_set = ensure_split(library, test_set, config.seed)
    train, validation = training_data(prompt, test_set)
    labels = list(test_set.labels) if test_set and test_set.labels else None
    accelerator = make_accelerator(config)
    device = pick_device(config.device)
    precision = pick_precision(device, config.precision)
    # a Stop while a GGUF is first dequantised raises fsutil.Cancelled: nothing trained
    base, tokenizer = load_base_model(model_folder(spec, cancel), device, precision)
    text = config.init_text or init_text(prompt)
    result: TuningResult | None = None
    training = train_soft_prompt(
        base,
        tokenizer,
        train,
        validation,
        config.model_copy(update={"init_text": text}),
        labels,
        cancel,
        pause,
        init_from=text,
        accelerator=accelerator,
    )
    cases = comparison_cases(prompt, test_set, compare)
    for event in with_comparison_eta(training, cases, config.batch_size):
        costs.see(event)
        if isinstance(event, TuningFinished):
            result = event.result
        yield event
    assert result is not None
    if result.steps == 0 or not accelerator.is_main_process:
        return  # nothing worth saving, or another process of `accelerate launch` saves
    result = dataclasses.replace(result, metrics={**result.metrics, **costs.metrics()})
    soft = save_result(library, prompt, spec, config, text, result, train, validation, name)
    yield SoftPromptSaved(soft)
    del base  # free the training copy before the comparison loads its own
    if compare and test_set is not None and not cancel.is_set():
        yield from compare_on_held_out(library, prompt, test_set, spec, soft, cancel, settings)


def save_result(
    library: Library,
    prompt: Prompt,
    spec: ModelSpec,
    config: TrainConfig,
    text: str,
    result: TuningResult,
    train: Any,
    validation: Any,
    name: str | None = None,
) -> SoftPrompt:
    from workbench.core.softprompt import soft_prompt_bytes

    embeddings = result.embeddings
    soft_id = new_id()
    soft = SoftPrompt(
        id=soft_id,
        name=name or f"{prompt.name} — soft prompt ({embeddings.shape[0]} tokens)",
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        base_model=spec.id,
        base_model_hash=model_hash(spec),
        num_virtual_tokens=int(embeddings.shape[0]),
        hidden_size=int(embeddings.shape[1]),
        init=config.init,
        init_text=text if config.init == "text" else None,
        train_config=config,
        data_hash=data_hash(train, validation),
        metrics={**result.metrics, "stopped": float(result.reason != "done")},
        curves=result.curves,
        tensor_file=f"{soft_id}.safetensors",
        placement=config.placement,
    )
    library.save_soft_prompt(soft, soft_prompt_bytes(embeddings))
    return soft


LORA_VARIANT = "LoRA"
"""The name of the LoRA adapter's row in a held-out comparison."""


def compare_on_held_out(
    library: Library,
    prompt: Prompt,
    test_set: TestSet,
    spec: ModelSpec,
    tuned: SoftPrompt | LoraAdapter,
    cancel: threading.Event,
    settings: BackendSettings,
) -> Iterator[ComparisonEvent]:
    """Zero-shot vs few-shot hard prompt vs what was trained (a soft prompt, or a LoRA
    adapter applied to the model for its row only) on the test split; the trained method
    runs zero-shot, as it was trained."""
    from workbench.core.backends.registry import load_backend
    from workbench.core.placement import VirtualTokens
    from workbench.core.softprompt import load_soft_prompt_tensor

    rows = rows_in_split(test_set, "test")
    if not rows:
        return
    tokens: VirtualTokens | None = None
    if isinstance(tuned, SoftPrompt):
        tensor = load_soft_prompt_tensor(library.soft_prompt_tensor_path(tuned))
        tokens = VirtualTokens(tensor, tuned.placement)
        trained = VariantSpec(name="soft prompt", few_shot_count=0, soft_prompt_id=tuned.id)
    else:
        trained = VariantSpec(name=LORA_VARIANT, few_shot_count=0, adapter_id=tuned.id)
    variants = [
        (VariantSpec(name="zero-shot", few_shot_count=0), prompt),
        (VariantSpec(name="few-shot"), prompt),
        (trained, prompt),
    ]
    if not prompt.few_shot.examples:
        variants.pop(1)
    yield ComparisonStarted([v.name for v, _ in variants], len(rows))
    backend = load_backend(spec, "transformers", settings)

    # a LoRA adapter goes into the model for its own row only
    from workbench.core.lora_io import adapter_applier

    adapter_for = adapter_applier(library, [tuned] if isinstance(tuned, LoraAdapter) else [])
    try:
        run = None
        for event in evaluate(
            variants,
            test_set,
            rows,
            lambda _variant: backend,
            cancel=cancel,
            split="test",
            soft_prompt_for=None if tokens is None else lambda _id: tokens,
            adapter_for=adapter_for,
        ):
            if isinstance(event, EvalFinished):
                run = event.run
            yield event
    finally:
        backend.close()
    if run is not None:
        library.save_eval_run(run)
        yield ComparisonFinished(run)
