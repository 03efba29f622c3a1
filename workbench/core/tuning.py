"""Soft-prompt training (prompt tuning, Lester et al. 2021) as a generator of events.

The base model is frozen; the only trainable tensor is the [N, d_model] prompt
embedding, kept in fp32 even when the model runs in bf16. The loss covers only the
target tokens, and the LM head runs only at the positions that predict them: no
full-vocabulary logits for virtual or prompt positions (the waste that makes PEFT's
step slower). All data is tokenised and padded once and moved to the device once, so
a step makes no host→device copies. The loop runs on Hugging Face Accelerate's
`Accelerator`, so `workbench tune` also runs under `accelerate launch` on several GPUs
(each process takes its slice of the batch; gradients are averaged by DDP).

`train_soft_prompt` checks its cancel event once per optimiser step, and a pause event
between steps. NaN/inf loss stops the run with a message and keeps the best (or last
good) prompt; out of memory raises `TrainingError` suggesting a smaller batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.core.models import FewShotExample, Message, Prompt, TestRow, TestSet, TrainConfig
from workbench.core.prefix_cache import PrefixCache, score_continuations
from workbench.core.templates import render_messages
from workbench.core.tuning_data import (
    EmptyTargetError,
    Encoded,
    SequenceTooLongError,
    TrainingExample,
    batch_schedule,
    encode,
)

StopReason = Literal["done", "early_stop", "cancelled", "nan"]


class TrainingError(Exception):
    """Training cannot start or continue; the message says what to change."""


@dataclass(frozen=True)
class StepEvent:
    step: int
    total_steps: int
    loss: float
    steps_per_s: float
    eta_s: float
    memory_mb: float | None  # peak GPU memory (CUDA), None on other devices
    ram_mb: float | None = None  # this process's resident memory now (RSS)


class TrainingCosts:
    """What one training run cost, for the method table: its wall time from the moment
    this is made (make it before the model loads: loading and validation count) and its
    peak memory from the step events `see` is shown — the GPU's peak on CUDA, else the
    process's highest resident memory. `metrics()` gives them as a soft prompt's or
    adapter's metrics (`train_s`, `peak_cuda_mb` or `peak_rss_mb`)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.peak: dict[str, float] = {}

    def see(self, event: object) -> None:
        if not isinstance(event, StepEvent):
            return
        for key, value in (("peak_cuda_mb", event.memory_mb), ("peak_rss_mb", event.ram_mb)):
            if value is not None:
                self.peak[key] = max(self.peak.get(key, 0.0), float(value))

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def metrics(self) -> dict[str, float]:
        return {"train_s": round(self.seconds(), 3), **self.peak}


@dataclass(frozen=True)
class ValidationEvent:
    step: int
    loss: float
    accuracy: float | None
    best: bool
    seconds: float = 0.0  # how long the validation pass took
    rows: int = 0  # validation rows scored


@dataclass
class TuningResult:
    """What a finished (or stopped) run produced."""

    embeddings: Any  # numpy float32 [N, d]: the best prompt (by validation), else the last
    reason: StopReason
    message: str
    steps: int
    best_step: int
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    checkpoint: TrainingState | None = None


@dataclass(frozen=True)
class TuningFinished:
    result: TuningResult


TuneEvent = StepEvent | ValidationEvent | TuningFinished


@dataclass
class TrainingState:
    """Enough to resume: the prompt, the optimiser's moments and the step."""

    embeddings: Any  # numpy float32 [N, d]
    exp_avg: Any | None
    exp_avg_sq: Any | None
    step: int

    def save(self, path: Path) -> None:
        from safetensors.numpy import save

        from workbench.core.fsutil import atomic_write_bytes

        tensors = {"prompt_embeddings": self.embeddings}
        if self.exp_avg is not None and self.exp_avg_sq is not None:
            tensors["adam.exp_avg"] = self.exp_avg
            tensors["adam.exp_avg_sq"] = self.exp_avg_sq
        atomic_write_bytes(path, save(tensors, metadata={"step": str(self.step)}))

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            keys = set(handle.keys())
            if "prompt_embeddings" not in keys:
                raise TrainingError(f"{path} is not a soft-prompt checkpoint")
            get = handle.get_tensor
            return cls(
                embeddings=get("prompt_embeddings"),
                exp_avg=get("adam.exp_avg") if "adam.exp_avg" in keys else None,
                exp_avg_sq=get("adam.exp_avg_sq") if "adam.exp_avg_sq" in keys else None,
                step=int(meta.get("step", "0")),
            )


# ---------------------------------------------------------------------------
# Data


def zero_shot(prompt: Prompt) -> Prompt:
    """The prompt without its examples: the soft prompt learns the task from data."""
    return prompt.model_copy(update={"few_shot": prompt.few_shot.model_copy(update={"count": 0})})


def example_messages(prompt: Prompt, example: FewShotExample | TestRow) -> list[Message]:
    plain = zero_shot(prompt)
    values = dict(example.vars)
    if isinstance(example, FewShotExample) and not values:
        # a plain-input example: its text is the whole user turn
        return [
            *render_messages(
                plain.model_copy(update={"user_template": "{{ input }}"}), {"input": example.input}
            )
        ]
    return render_messages(plain, values)


def training_data(
    prompt: Prompt, test_set: TestSet | None
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Training data = the prompt's few-shot examples + the test set's train split;
    validation = its validation split (the test split stays held out)."""
    train = [
        TrainingExample(example_messages(prompt, e), e.output) for e in prompt.few_shot.examples
    ]
    validation: list[TrainingExample] = []
    if test_set is not None:
        for row in test_set.rows:
            example = TrainingExample(example_messages(prompt, row), row.expected)
            if row.split == "train":
                train.append(example)
            elif row.split == "validation":
                validation.append(example)
    return train, validation


def data_hash(train: Sequence[TrainingExample], validation: Sequence[TrainingExample]) -> str:
    digest = hashlib.sha256()
    for part, examples in (("train", train), ("validation", validation)):
        for example in examples:
            record = [part, [m.model_dump() for m in example.messages], example.target]
            digest.update(json.dumps(record, sort_keys=True).encode())
    return digest.hexdigest()


def init_text(prompt: Prompt) -> str:
    """Lester et al.'s text init: the prompt's own instruction."""
    text = " ".join(t for t in (prompt.system.strip(), prompt.description.strip()) if t)
    return text or prompt.name


# ---------------------------------------------------------------------------
# Devices and precision


def pick_device(preference: str) -> str:
    from workbench.core.backends.hf import pick_device as pick

    try:
        return pick(preference)
    except Exception as exc:
        raise TrainingError(str(exc)) from None


def pick_precision(device: str, preference: str) -> str:
    """The chosen precision, checked against the device; "auto" follows
    `backends.hf.auto_precision` (bf16 or fp16 on a GPU, fp32 on the CPU)."""
    import torch

    if preference != "auto":
        if preference == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            raise TrainingError("this GPU does not support bf16; choose fp16 or fp32")
        if preference in ("bf16", "fp16") and device == "cpu":
            raise TrainingError(f"{preference} training needs a GPU; use fp32 on the CPU")
        return preference
    from workbench.core.backends.hf import auto_precision

    return auto_precision(device)  # the same rule as running a model


def resident_mb() -> float | None:
    """This process's resident memory (RSS) now, in MB; None where it cannot be read."""
    import os

    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def device_description(device: str) -> str:
    """What was picked, with its memory, for the Graduate panel."""
    import torch

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"CUDA: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    if device == "mps":
        return "Apple MPS"
    import os

    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return f"CPU, {torch.get_num_threads()} threads, {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        return f"CPU, {torch.get_num_threads()} threads"


def make_accelerator(config: TrainConfig) -> Any:
    """Accelerate's Accelerator for the configured device and precision. Under
    `accelerate launch` it picks up the launcher's processes and devices."""
    from accelerate import Accelerator

    device = pick_device(config.device)
    precision = pick_precision(device, config.precision)
    return Accelerator(
        cpu=device == "cpu", mixed_precision="no" if precision == "fp32" else precision
    )


# ---------------------------------------------------------------------------
# The trainable module


def _make_module(base: Any, init: Any, head: Any = None) -> Any:
    """The trainable module: `head` is the `PrefixCache` of the text every row starts
    with (None: rows carry all their tokens)."""
    import torch
    from torch import nn

    class PromptTuning(nn.Module):  # type: ignore[misc]
        """A frozen causal LM with N trainable virtual-token embeddings in each row."""

        def __init__(self) -> None:
            super().__init__()
            self.prompt = nn.Parameter(init.clone().float())  # fp32 master copy
            self.base = base

        def hidden(self, input_ids: Any, attention_mask: Any, virtual_at: Any) -> Any:
            embeds = self.base.get_input_embeddings()(input_ids)
            batch, n = input_ids.shape[0], self.prompt.shape[0]
            rows = torch.arange(batch, device=input_ids.device).repeat_interleave(n)
            offsets = torch.arange(n, device=input_ids.device)
            cols = (virtual_at.unsqueeze(1) + offsets.unsqueeze(0)).reshape(-1)
            values = self.prompt.to(embeds.dtype).repeat(batch, 1)
            embeds = embeds.index_put((rows, cols), values)
            if head is not None:
                return head.run(embeds, attention_mask)[0]
            return self.base.get_decoder()(
                inputs_embeds=embeds, attention_mask=attention_mask
            ).last_hidden_state

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            virtual_at: Any,
            rows: Any,
            positions: Any,
            targets: Any,
        ) -> Any:
            hidden = self.hidden(input_ids, attention_mask, virtual_at)
            logits = self.base.get_output_embeddings()(hidden[rows, positions]).float()
            return torch.nn.functional.cross_entropy(logits, targets)

    return PromptTuning()


def _label_token_ids(tokenizer: Any, labels: Sequence[str]) -> list[list[int]]:
    return [list(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in labels]


def _encode_or_fail(
    tokenizer: Any,
    examples: Sequence[TrainingExample],
    config: TrainConfig,
    device: str,
    virtual: bool = True,
) -> Encoded:
    """The examples encoded for training; `virtual=False` leaves no virtual-token slots
    (methods that change the model's weights see the whole rendered prompt)."""
    try:
        return encode(
            tokenizer,
            examples,
            config.num_virtual_tokens if virtual else 0,
            config.placement if virtual else "start",
            config.max_length,
            device,
        )
    except (EmptyTargetError, SequenceTooLongError) as exc:
        raise TrainingError(str(exc)) from None


# ---------------------------------------------------------------------------
# Initialisation


def initial_embeddings(base: Any, tokenizer: Any, config: TrainConfig, text: str) -> Any:
    """[N, d] fp32: text init (the text's token embeddings, repeated to fill N), sampled
    vocabulary (from the 5,000 most frequent ids, as Lester et al.), or random."""
    import torch

    weight = base.get_input_embeddings().weight.detach().float().cpu()
    n = config.num_virtual_tokens
    generator = torch.Generator().manual_seed(config.seed)
    if config.init == "text":
        ids = list(tokenizer(config.init_text or text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise TrainingError("the initialisation text has no tokens")
        ids = (ids * math.ceil(n / len(ids)))[:n]
        return weight[torch.tensor(ids)].clone()
    if config.init == "vocab":
        top = min(5000, weight.shape[0])
        ids_t = torch.randint(0, top, (n,), generator=generator)
        return weight[ids_t].clone()
    std = float(weight.std())
    return torch.randn((n, weight.shape[1]), generator=generator) * std


# ---------------------------------------------------------------------------
# Training


def load_base_model(model_dir: Path, device: str, precision: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=dtype, trust_remote_code=False, use_safetensors=True
        )
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load the base model from {model_dir}: {exc}") from None
    model.requires_grad_(False)
    model.eval()  # no dropout: the base is frozen
    return model, tokenizer


def train_soft_prompt(
    base: Any,
    tokenizer: Any,
    train: Sequence[TrainingExample],
    validation: Sequence[TrainingExample],
    config: TrainConfig,
    labels: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
    pause: threading.Event | None = None,
    resume: TrainingState | None = None,
    init_from: str = "",
    accelerator: Any = None,
) -> Iterator[TuneEvent]:
    """Train; yields a StepEvent per optimiser step, a ValidationEvent per evaluation,
    and ends with TuningFinished (also when cancelled, or stopped by NaN)."""
    import numpy as np
    import torch

    cancel = cancel or threading.Event()
    if not train:
        raise TrainingError("no training examples: add few-shot examples or split the test set")
    if accelerator is None:
        accelerator = make_accelerator(config)
    device = str(accelerator.device)
    torch.manual_seed(config.seed)
    base.to(accelerator.device)
    train_data = _encode_or_fail(tokenizer, train, config, device)
    val_data = _encode_or_fail(tokenizer, validation, config, device) if validation else None
    label_ids = _label_token_ids(tokenizer, labels) if labels else None
    # the text every row starts with runs once, without gradients, for the whole run
    head = PrefixCache(base, train_data.head) if train_data.head else None

    start_embeddings = (
        torch.from_numpy(np.asarray(resume.embeddings))
        if resume is not None
        else initial_embeddings(base, tokenizer, config, init_from)
    )
    module = _make_module(base, start_embeddings.to(accelerator.device), head)
    optimizer = torch.optim.AdamW(
        [module.prompt], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    module, optimizer = accelerator.prepare(module, optimizer)
    inner = accelerator.unwrap_model(module)
    first_step = 0
    if resume is not None:
        first_step = resume.step
        if resume.exp_avg is not None:
            state = optimizer.state[inner.prompt] if hasattr(optimizer, "state") else {}
            state["step"] = torch.tensor(float(resume.step))
            state["exp_avg"] = torch.from_numpy(resume.exp_avg).to(inner.prompt.device)
            state["exp_avg_sq"] = torch.from_numpy(resume.exp_avg_sq).to(inner.prompt.device)

    def state_now(step: int) -> TrainingState:
        opt_state = optimizer.state.get(inner.prompt, {}) if hasattr(optimizer, "state") else {}
        avg = opt_state.get("exp_avg")
        avg_sq = opt_state.get("exp_avg_sq")
        return TrainingState(
            embeddings=inner.prompt.detach().float().cpu().numpy().copy(),
            exp_avg=avg.detach().cpu().numpy().copy() if avg is not None else None,
            exp_avg_sq=avg_sq.detach().cpu().numpy().copy() if avg_sq is not None else None,
            step=step,
        )

    def snapshot() -> Any:
        return inner.prompt.detach().float().cpu().numpy().copy()

    def validation_scores() -> tuple[float, float | None]:
        assert val_data is not None  # the loop validates only with validation data
        return validate(inner.base, inner.prompt, val_data, label_ids, config.batch_size)

    loop = TrainingLoop(
        module=module,
        optimizer=optimizer,
        accelerator=accelerator,
        config=config,
        train_data=train_data,
        val_data=val_data,
        first_step=first_step,
        snapshot=snapshot,
        is_finite=lambda values: bool(np.isfinite(values).all()),
        validate=validation_scores,
    )
    outcome = yield from run_training_loop(loop, cancel, pause)
    yield TuningFinished(
        TuningResult(
            outcome.best,
            outcome.reason,
            outcome.message,
            outcome.step,
            outcome.best_step,
            outcome.metrics,
            outcome.curves,
            state_now(outcome.step),
        )
    )


# ---------------------------------------------------------------------------
# The training loop every method shares


@dataclass
class TrainingLoop:
    """What one method gives the shared loop (`run_training_loop`): the prepared module
    (called with a batch's ids, mask, virtual-token offsets, target rows, positions and
    ids, it returns the loss), its optimiser, the data, and how to copy, check and
    validate what it trains. `noun` names what is kept in messages ("prompt",
    "adapter"); `overflowed` says what overflowed; `smaller` is the OOM advice after
    "a smaller batch"; `keep` is called with the best state so far (and its step)
    before an out-of-memory error is raised and returns where it was kept."""

    module: Any
    optimizer: Any
    accelerator: Any
    config: TrainConfig
    train_data: Encoded
    val_data: Encoded | None
    snapshot: Callable[[], Any]
    is_finite: Callable[[Any], bool]
    validate: Callable[[], tuple[float, float | None]]
    first_step: int = 0
    noun: str = "prompt"
    overflowed: str = "the soft prompt overflowed"
    smaller: str = "fewer virtual tokens"
    train_mode: Callable[[bool], None] | None = None
    on_best: Callable[[Any, int], None] | None = None
    keep: Callable[[Any, int], str] | None = None


@dataclass
class LoopOutcome:
    best: Any  # the snapshot of the best validation, else the last good one
    reason: StopReason
    message: str
    step: int
    best_step: int
    metrics: dict[str, float]
    curves: dict[str, list[float]]


def batch_arguments(data: Encoded, idx: Any) -> tuple[Any, ...]:
    """A training module's arguments for the rows `idx` of `data`: ids and mask trimmed
    to the batch's longest row, virtual-token offsets, and the target rows, positions
    and ids (what the loop's step feeds the module; a benchmark's forward-only pass
    feeds it the same)."""
    import torch

    width = int(data.attention_mask[idx].sum(dim=1).max())
    ids = data.input_ids[idx, :width]
    mask = data.attention_mask[idx, :width]
    tmask = data.target_mask[idx]
    rows = torch.arange(idx.shape[0], device=ids.device).unsqueeze(1).expand_as(tmask)
    return (
        ids,
        mask,
        data.virtual_at[idx],
        rows[tmask],
        data.target_pos[idx][tmask],
        data.target_ids[idx][tmask],
    )


def run_training_loop(
    loop: TrainingLoop,
    cancel: threading.Event,
    pause: threading.Event | None = None,
) -> Generator[StepEvent | ValidationEvent, None, LoopOutcome]:
    """The optimiser steps, validation and early stopping of any method: yields a
    StepEvent per step and a ValidationEvent per validation, and returns what to keep.
    Cancel is checked once per step, pause between steps; NaN/inf stops with the last
    good state; out of memory raises `TrainingError`."""
    import torch

    config, accelerator = loop.config, loop.accelerator
    module, optimizer = loop.module, loop.optimizer
    train_data, val_data = loop.train_data, loop.val_data
    device = str(accelerator.device)
    noun = loop.noun
    n_train = train_data.input_ids.shape[0]
    world, rank = accelerator.num_processes, accelerator.process_index
    per_step = config.batch_size * world
    total = config.total_steps(n_train, world)  # `steps`, or `epochs` passes over the data
    # every step's rows, bucketed by length, fixed by the seed (a resumed run continues it)
    schedule = [
        torch.tensor(batch, device=accelerator.device)
        for batch in batch_schedule(train_data.lengths, per_step, total, config.seed)
    ]

    curves: dict[str, list[float]] = {
        "train_loss": [],
        "val_loss": [],
        "val_accuracy": [],
        "val_step": [],
    }
    first_step = loop.first_step
    best_score = -math.inf
    best_step = first_step
    best = loop.snapshot()
    last_good = best
    bad_evals = 0
    reason: StopReason = "done"
    message = "finished"
    started = time.perf_counter()
    step = first_step
    measured = 0
    validation_s = 0.0  # the last validation's duration (none yet: 0)

    try:
        while step < total:
            if pause is not None:
                while pause.is_set() and not cancel.is_set():
                    cancel.wait(0.1)  # paused: the worker idles until resume or stop
            if cancel.is_set():
                reason, message = "cancelled", f"stopped at step {step}"
                break
            batch = schedule[step]
            idx = batch[rank * config.batch_size : (rank + 1) * config.batch_size]
            if idx.numel() == 0:  # more processes than rows: this one repeats the batch
                idx = batch[: config.batch_size]
            if loop.train_mode is not None:
                loop.train_mode(True)
            with accelerator.autocast():
                loss = module(*batch_arguments(train_data, idx))
            value = float(loss.detach())
            if not math.isfinite(value):
                reason = "nan"
                message = (
                    f"the loss became {value} at step {step + 1}; stopped and kept the "
                    f"{noun} from step {best_step} (try a lower learning rate)"
                )
                break
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            step += 1
            measured += 1
            current = loop.snapshot()
            if not loop.is_finite(current):
                reason = "nan"
                message = (
                    f"{loop.overflowed} at step {step}; stopped and kept the "
                    f"{noun} from step {step - 1} (try a lower learning rate)"
                )
                step -= 1
                break
            last_good = current
            curves["train_loss"].append(value)
            elapsed = time.perf_counter() - started
            rate = measured / elapsed if elapsed > 0 else 0.0
            memory = (
                torch.cuda.max_memory_allocated() / 2**20
                if torch.cuda.is_available() and device.startswith("cuda")
                else None
            )
            eta = (total - step) / rate if rate else 0.0
            if val_data is not None:  # the validations still to come take time too
                eta += _validations_left(step, total, config.eval_every) * validation_s
            yield StepEvent(step, total, value, rate, eta, memory, resident_mb())

            if val_data is not None and (step % config.eval_every == 0 or step == total):
                validation_started = time.perf_counter()
                if loop.train_mode is not None:
                    loop.train_mode(False)
                val_loss, accuracy = loop.validate()
                validation_s = time.perf_counter() - validation_started
                started += validation_s  # steps/s and the ETA count training steps only
                score = accuracy if accuracy is not None else -val_loss
                improved = score > best_score + 1e-9
                if improved:
                    best_score, best_step = score, step
                    best = last_good
                    bad_evals = 0
                    if loop.on_best is not None:
                        loop.on_best(best, best_step)
                else:
                    bad_evals += 1
                curves["val_loss"].append(val_loss)
                curves["val_step"].append(float(step))
                if accuracy is not None:
                    curves["val_accuracy"].append(accuracy)
                yield ValidationEvent(
                    step, val_loss, accuracy, improved, validation_s, val_data.input_ids.shape[0]
                )
                if (
                    config.early_stopping_patience is not None
                    and bad_evals >= config.early_stopping_patience
                ):
                    reason = "early_stop"
                    message = f"validation stopped improving; kept the {noun} from step {best_step}"
                    break
    except torch.OutOfMemoryError:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        kept = ""
        if loop.keep is not None:
            if val_data is None or best_score == -math.inf:
                best, best_step = last_good, step
            kept = loop.keep(best, best_step)
        raise TrainingError(
            f"out of memory at batch size {config.batch_size} on {device}; try a batch size "
            f"of {max(1, config.batch_size // 2)} or {loop.smaller}{kept}"
        ) from None
    finally:
        if loop.train_mode is not None:
            loop.train_mode(False)
    if val_data is None or best_score == -math.inf:
        best, best_step = last_good, step
    metrics: dict[str, float] = {"steps": float(step), "best_step": float(best_step)}
    if curves["train_loss"]:
        metrics["final_train_loss"] = curves["train_loss"][-1]
    if curves["val_loss"]:
        metrics["best_val_loss"] = min(curves["val_loss"])
    if curves["val_accuracy"]:
        metrics["best_val_accuracy"] = max(curves["val_accuracy"])
    if reason == "done":
        message = f"finished {step} steps; kept the {noun} from step {best_step}"
    return LoopOutcome(best, reason, message, step, best_step, metrics, curves)


def _validations_left(step: int, total: int, every: int) -> int:
    """Validations after `step`: every `every` steps, and at the last step."""
    left = total // every - step // every
    return left + (1 if total % every else 0)


def validate(
    base: Any,
    prompt: Any,
    data: Encoded,
    label_ids: list[list[int]] | None,
    batch_size: int = 8,
) -> tuple[float, float | None]:
    """Validation loss (mean per-example cross-entropy of the target tokens) and label
    accuracy by likelihood, through the label-scoring path evaluation uses
    (`prefix_cache.score_continuations`: what the rows share runs once)."""
    n = data.input_ids.shape[0]
    cases = [data.prompt_items(i) for i in range(n)]
    targets = [data.target(i) for i in range(n)]
    options = [[*(label_ids or []), target] for target in targets]
    total_loss = 0.0
    correct = 0
    # each row's target is teacher-forced inside its own pass: its loss costs no other
    virtual = prompt.detach() if prompt is not None else None  # None: no virtual tokens
    scored = score_continuations(
        base, cases, options, virtual, teacher=targets, batch_size=batch_size
    )
    for target, scores in zip(targets, scored, strict=True):
        total_loss += -scores[-1] / len(target)
        if label_ids:
            best = label_ids[max(range(len(label_ids)), key=lambda k: scores[k])]
            correct += int(target[: len(best)] == best)
    return total_loss / n, (correct / n if label_ids else None)
