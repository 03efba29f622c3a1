"""LoRA fine-tuning (Hu et al. 2021) as a generator of events, beside prompt tuning.

A LoRA adapter adds a trainable low-rank update `B·A` (rank r, scaled by alpha/r) to
some linear layers of the frozen base model; PEFT's `LoraConfig` and `get_peft_model`
build it. It trains on exactly what a soft prompt trains on — the prompt's few-shot
examples and the train split, rendered zero-shot (`tuning.training_data`), with the
validation split scored the same way (`tuning.validate`: loss and label accuracy by
likelihood) — and through the same loop (`tuning.run_training_loop`): the same events,
early stopping, cancel within one step, pause between steps, NaN/inf stops keeping the
best state, out of memory a `TrainingError` after the best adapter so far is written.

Unlike a soft prompt the adapter changes every position's activations, so the model
sees the whole rendered prompt (no virtual-token slots, no cached head); the loss still
covers only the target tokens and the LM head runs only where they are predicted.

Which layers: `target_modules` as given (checked against the model's module names),
else found from the model's own linear layers — the attention's query and value
projections under whichever names the family uses (`q_proj`/`v_proj`, `query`/`value`,
...), a fused query-key-value projection (`c_attn`, `qkv_proj`, ...), else every linear
layer but the LM head. torch and peft are imported lazily.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.backends.base import BackendSettings
from workbench.core.graduation import SMALLER, ComparisonEvent
from workbench.core.models import (
    LoraAdapter,
    LoraSettings,
    ModelSpec,
    Prompt,
    TestSet,
    TrainConfig,
    new_id,
    validate_as,
)
from workbench.core.tuning import (
    StepEvent,
    StopReason,
    TrainingError,
    TrainingLoop,
    ValidationEvent,
    _encode_or_fail,
    _label_token_ids,
    data_hash,
    make_accelerator,
    run_training_loop,
    validate,
)
from workbench.core.tuning_data import TrainingExample

if TYPE_CHECKING:
    from workbench.core.graduation import Prepared
    from workbench.core.library import Library

LORA_LEARNING_RATE = 2e-4
"""The learning rate a LoRA run uses when none is given (a soft prompt's is 0.1)."""

# the attention's query and value projections, as model families name them
_QUERY_VALUE = (
    ("q_proj", "v_proj"),  # Llama, Mistral, Qwen, Gemma, Phi-3, OPT, SmolLM
    ("query", "value"),  # BERT-like, GPT-NeoX variants
    ("q_lin", "v_lin"),  # DistilBERT
    ("q", "v"),  # T5
)
# fused query-key-value projections
_FUSED = ("c_attn", "qkv_proj", "query_key_value", "Wqkv", "W_pack", "qkv")


@dataclass
class LoraResult:
    """What a finished (or stopped) LoRA run produced."""

    state: dict[str, Any]  # the adapter's tensors (PEFT's saved keys, CPU): best, else last
    peft_config: Any  # the peft.LoraConfig it was trained with
    settings: LoraSettings  # with the target modules resolved
    reason: StopReason
    message: str
    steps: int
    best_step: int
    trainable_parameters: int
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    checkpoint: Path | None = None  # where the kept adapter was written, if anywhere


@dataclass(frozen=True)
class LoraFinished:
    result: LoraResult


LoraEvent = StepEvent | ValidationEvent | LoraFinished


# ---------------------------------------------------------------------------
# Target modules


def linear_layer_names(model: Any) -> dict[str, list[str]]:
    """The model's linear layers (torch Linear, transformers' Conv1D) by their last name
    component, without the LM head: {"q_proj": ["model.layers.0.self_attn.q_proj", ...]}."""
    from torch import nn

    try:
        from transformers.pytorch_utils import Conv1D

        kinds: tuple[type, ...] = (nn.Linear, Conv1D)
    except ImportError:  # pragma: no cover - every supported transformers has it
        kinds = (nn.Linear,)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    found: dict[str, list[str]] = {}
    for path, module in model.named_modules():
        if isinstance(module, kinds) and module is not head:
            found.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    return found


def default_target_modules(model: Any) -> list[str]:
    """The layers a LoRA adapter goes into by default, found from the model's module
    names: the query and value projections, else a fused QKV projection, else every
    linear layer but the LM head."""
    names = linear_layer_names(model)
    for pair in _QUERY_VALUE:
        if all(name in names for name in pair):
            return list(pair)
    for fused in _FUSED:
        if fused in names:
            return [fused]
    if not names:
        raise TrainingError("the model has no linear layers a LoRA adapter could go into")
    return sorted(names)


def target_modules(model: Any, settings: LoraSettings) -> list[str]:
    """`settings.target_modules` checked against the model, or the default for it."""
    if not settings.target_modules:
        return default_target_modules(model)
    names = linear_layer_names(model)
    unknown = [name for name in settings.target_modules if name not in names]
    if unknown:
        raise TrainingError(
            f"the model has no linear layers named {', '.join(map(repr, unknown))}; "
            f"its linear layers are: {', '.join(sorted(names))}"
        )
    return list(dict.fromkeys(settings.target_modules))


def adapter_backends(spec: ModelSpec) -> tuple[str, ...]:
    """The backends a LoRA adapter runs on with the model `spec`, as
    `lora_io.check_compatible` allows them: transformers (PEFT's LoRA layers in the
    model) and, for a GGUF model, llama.cpp (the adapter as a GGUF LoRA file); none for
    a model served over HTTP. What the Run panel says before a run starts."""
    from workbench.core.backends.registry import backends_for
    from workbench.core.lora_io import runs_adapters

    return tuple(name for name in backends_for(spec) if runs_adapters(name, spec))


def describe_target_layers(spec: ModelSpec, backend: Any = None) -> str:
    """Which layers an adapter of `spec` goes into by default and which it could, in a
    line, when finding out is cheap: from the loaded transformers model (`backend`,
    when it is `spec`'s), else from a Hugging Face folder's config (no weights loaded).
    "" when it is not cheap (a GGUF not loaded on transformers) or cannot be read."""
    loaded = backend is not None and backend.name == "transformers"
    loaded = loaded and backend.spec.id == spec.id
    model = getattr(backend, "model", None) if loaded else None
    if model is None and spec.source == "hf" and spec.path:
        from workbench.core.lora_io import LoraAdapterError, empty_model

        try:
            model = empty_model(Path(str(spec.path)))
        except (LoraAdapterError, OSError, ValueError):
            return ""
    if model is None:
        return ""
    try:
        default = default_target_modules(model)
    except TrainingError:
        return ""
    names = sorted(linear_layer_names(model))
    return (
        f"Found in {spec.name}: {', '.join(default)} (used when this is empty); its linear "
        f"layers: {', '.join(names)}"
    )


def peft_lora_config(settings: LoraSettings, modules: Sequence[str]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


# ---------------------------------------------------------------------------
# The trainable module


def _make_module(base: Any) -> Any:
    """`base` (with PEFT's LoRA layers injected) behind the training loop's forward:
    the loss of the target tokens, the LM head only where they are predicted."""
    import torch
    from torch import nn

    class LoraTuning(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            virtual_at: Any,
            rows: Any,
            positions: Any,
            targets: Any,
        ) -> Any:
            del virtual_at  # no virtual tokens: the adapter sees the whole prompt
            hidden = self.base.get_decoder()(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            logits = self.base.get_output_embeddings()(hidden[rows, positions]).float()
            return torch.nn.functional.cross_entropy(logits, targets)

    return LoraTuning()


# ---------------------------------------------------------------------------
# Training


def train_lora(
    base: Any,
    tokenizer: Any,
    train: Sequence[TrainingExample],
    validation: Sequence[TrainingExample],
    config: TrainConfig,
    settings: LoraSettings | None = None,
    labels: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
    pause: threading.Event | None = None,
    accelerator: Any = None,
    checkpoint_dir: Path | None = None,
    base_model_path: str | None = None,
) -> Iterator[LoraEvent]:
    """Train a LoRA adapter on `base` (frozen; PEFT injects the adapter's layers, and
    they are taken out again when the run ends, leaving `base` as it was). Yields a
    StepEvent per step, a ValidationEvent per validation and ends with LoraFinished
    (also when cancelled or stopped by NaN). With `checkpoint_dir`, the best adapter so
    far is written there as a PEFT folder at each better validation and at the end
    (and before an out-of-memory error is raised)."""
    import torch
    from peft import get_peft_model
    from peft.utils import get_peft_model_state_dict

    from workbench.core.lora_io import write_adapter_folder

    cancel = cancel or threading.Event()
    settings = settings or LoraSettings()
    if not train:
        raise TrainingError("no training examples: add few-shot examples or split the test set")
    if accelerator is None:
        accelerator = make_accelerator(config)
    device = str(accelerator.device)
    torch.manual_seed(config.seed)
    base.requires_grad_(False)
    base.eval()
    base.to(accelerator.device)
    train_data = _encode_or_fail(tokenizer, train, config, device, virtual=False)
    val_data = (
        _encode_or_fail(tokenizer, validation, config, device, virtual=False)
        if validation
        else None
    )
    label_ids = _label_token_ids(tokenizer, labels) if labels else None
    modules = target_modules(base, settings)
    settings = settings.model_copy(update={"target_modules": modules})
    peft_config = peft_lora_config(settings, modules)
    if base_model_path:
        peft_config.base_model_name_or_path = base_model_path
    peft_model = get_peft_model(base, peft_config)
    try:
        model = peft_model.get_base_model()  # `base`, with the LoRA layers in it
        trainable = [p for p in peft_model.parameters() if p.requires_grad]
        count = sum(int(p.numel()) for p in trainable)
        dropouts = [m for name, m in model.named_modules() if name.endswith("lora_dropout")]
        module = _make_module(model)
        optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        module, optimizer = accelerator.prepare(module, optimizer)

        def snapshot() -> dict[str, Any]:
            tensors = get_peft_model_state_dict(peft_model)
            return {key: value.detach().clone() for key, value in tensors.items()}

        def is_finite(state: dict[str, Any]) -> bool:
            return all(bool(torch.isfinite(t).all()) for t in state.values())

        def validation_scores() -> tuple[float, float | None]:
            assert val_data is not None  # the loop validates only with validation data
            return validate(model, None, val_data, label_ids, config.batch_size)

        def train_mode(on: bool) -> None:
            for dropout in dropouts:  # only the adapter's dropout: the base stays in eval
                dropout.train(on)

        def keep(state: dict[str, Any], step: int) -> str:
            if checkpoint_dir is None or not accelerator.is_main_process:
                return ""
            write_adapter_folder(state, peft_config, checkpoint_dir, overwrite=True)
            return f"; the adapter from step {step} is kept in {checkpoint_dir}"

        def checkpoint(state: dict[str, Any], step: int) -> None:
            keep(state, step)  # each better validation: the best adapter so far on disk

        loop = TrainingLoop(
            module=module,
            optimizer=optimizer,
            accelerator=accelerator,
            config=config,
            train_data=train_data,
            val_data=val_data,
            snapshot=snapshot,
            is_finite=is_finite,
            validate=validation_scores,
            noun="adapter",
            overflowed="the adapter's weights overflowed",
            smaller=SMALLER["lora"],
            train_mode=train_mode,
            on_best=checkpoint,
            keep=keep,
        )
        outcome = yield from run_training_loop(loop, cancel, pause)
        state = {key: value.detach().float().cpu() for key, value in outcome.best.items()}
        written = None
        if checkpoint_dir is not None and outcome.step > 0 and accelerator.is_main_process:
            written = write_adapter_folder(state, peft_config, checkpoint_dir, overwrite=True)
    finally:
        peft_model.unload()  # take the LoRA layers out: `base` is as it was
    yield LoraFinished(
        LoraResult(
            state=state,
            peft_config=peft_config,
            settings=settings,
            reason=outcome.reason,
            message=outcome.message,
            steps=outcome.step,
            best_step=outcome.best_step,
            trainable_parameters=count,
            metrics=outcome.metrics,
            curves=outcome.curves,
            checkpoint=written,
        )
    )


# ---------------------------------------------------------------------------
# The flow: train on a prompt's data and save the adapter in the library


@dataclass(frozen=True)
class LoraAdapterSaved:
    adapter: LoraAdapter


LoraGraduationEvent = LoraEvent | LoraAdapterSaved | ComparisonEvent


def lora_train_config(options: Mapping[str, Any]) -> TrainConfig:
    """`graduation.train_config` with LoRA's learning rate when none is given."""
    from workbench.core.graduation import train_config

    given = dict(options)
    if given.get("learning_rate") is None:
        given["learning_rate"] = LORA_LEARNING_RATE
    return train_config(given)


def lora_settings(options: Mapping[str, Any]) -> LoraSettings:
    """A LoraSettings from a front end's settings (None: the default); raises
    `SchemaError` naming each bad setting."""
    given = {k: v for k, v in options.items() if v is not None}
    return validate_as(LoraSettings, given, "LoRA options")


def checkpoint_folder(adapter_id: str) -> Path:
    """Where a run keeps its best adapter until it is saved in the library."""
    from workbench.core.paths import cache_dir

    return cache_dir() / "lora-checkpoints" / adapter_id


def graduate_lora(
    library: Library,
    prompt: Prompt,
    test_set: TestSet | None,
    spec: ModelSpec,
    config: TrainConfig,
    settings: LoraSettings | None = None,
    cancel: threading.Event | None = None,
    pause: threading.Event | None = None,
    name: str | None = None,
    backend_settings: BackendSettings | None = None,
    compare: bool = False,
) -> Iterator[LoraGraduationEvent]:
    """Split the test set if needed, train a LoRA adapter on the prompt's data (as a soft
    prompt would be), and save it in the library linked to the prompt, with provenance.
    With `compare`, zero-shot / few-shot hard prompt / LoRA are then compared on the
    held-out split (`graduation.compare_on_held_out`, as after a soft prompt) and the
    comparison is saved as an evaluation run."""
    import torch

    from workbench.core.graduation import (
        compare_on_held_out,
        comparison_cases,
        ensure_split,
        model_folder,
        with_comparison_eta,
    )
    from workbench.core.tuning import (
        TrainingCosts,
        load_base_model,
        pick_device,
        pick_precision,
        training_data,
    )

    cancel = cancel or threading.Event()
    backend_settings = backend_settings or BackendSettings()
    costs = TrainingCosts()
    torch.set_num_threads(backend_settings.threads)
    test_set = ensure_split(library, test_set, config.seed)
    train, validation = training_data(prompt, test_set)
    labels = list(test_set.labels) if test_set and test_set.labels else None
    accelerator = make_accelerator(config)
    device = pick_device(config.device)
    folder = model_folder(spec, cancel)
    base, tokenizer = load_base_model(folder, device, pick_precision(device, config.precision))
    adapter_id = new_id()
    checkpoint = checkpoint_folder(adapter_id)
    result: LoraResult | None = None
    training = train_lora(
        base,
        tokenizer,
        train,
        validation,
        config,
        settings,
        labels,
        cancel,
        pause,
        accelerator=accelerator,
        checkpoint_dir=checkpoint,
        base_model_path=str(folder),
    )
    # the ETA covers the held-out comparison after training, as a soft prompt's does
    cases = comparison_cases(prompt, test_set, compare)
    for event in with_comparison_eta(training, cases, config.batch_size):
        costs.see(event)
        if isinstance(event, LoraFinished):
            result = event.result
        yield event
    assert result is not None
    if result.steps == 0 or not accelerator.is_main_process:
        return  # nothing worth saving, or another process of `accelerate launch` saves
    result.metrics.update(costs.metrics())  # what the method table shows
    adapter = save_lora_result(
        library, prompt, spec, config, result, data_hash(train, validation), name, adapter_id
    )
    shutil.rmtree(checkpoint, ignore_errors=True)  # the library holds it now
    yield LoraAdapterSaved(adapter)
    del base  # free the training copy before the comparison loads its own
    if compare and test_set is not None and not cancel.is_set():
        yield from compare_on_held_out(
            library, prompt, test_set, spec, adapter, cancel, backend_settings
        )


def save_lora_result(
    library: Library,
    prompt: Prompt,
    spec: ModelSpec,
    config: TrainConfig,
    result: LoraResult,
    data_digest: str,
    name: str | None = None,
    adapter_id: str | None = None,
) -> LoraAdapter:
    """A trained adapter into the library, with its provenance."""
    from workbench.core.graduation import model_hash
    from workbench.core.lora_io import adapter_files

    adapter_id = adapter_id or new_id()
    adapter = LoraAdapter(
        id=adapter_id,
        name=name or f"{prompt.name} — LoRA (rank {result.settings.rank})",
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        base_model=spec.id,
        base_model_hash=model_hash(spec),
        lora=result.settings,
        train_config=config,
        data_hash=data_digest,
        trainable_parameters=result.trainable_parameters,
        metrics={**result.metrics, "stopped": float(result.reason != "done")},
        curves=result.curves,
        folder=adapter_id,
    )
    library.save_lora_adapter(adapter, adapter_files(result.state, result.peft_config))
    return adapter


def describe_lora_plan(
    prompt: Prompt, spec: ModelSpec, prepared: Prepared, config: TrainConfig, lora: LoraSettings
) -> str:
    """The LoRA run about to start, in one line (`workbench tune --method lora`)."""
    epochs = f" ({config.epochs:g} epochs)" if config.epochs else ""
    targets = ", ".join(lora.target_modules) or "found from the model"
    return (
        f"fine-tuning {prompt.name!r} on {spec.name} with LoRA: {prepared.train_examples} "
        f"training, {prepared.validation_examples} validation, {prepared.held_out_rows} "
        f"held-out rows; rank {lora.rank}, alpha "
        f"{lora.alpha:g}, dropout {lora.dropout:g}, layers {targets}; "
        f"{config.total_steps(prepared.train_examples)} steps{epochs}, learning rate "
        f"{config.learning_rate:g}"
    )
