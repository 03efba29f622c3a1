"""The method table (`workbench compare`) end to end on the embedded model: for the
sample "Review sentiment" prompt (and, with --tasks, the graduation benchmark's generated
tasks, `bench/tasks.py`), the product's own flow — split 50/25/25 if needed, train the
missing soft prompt and LoRA adapter with the Graduate defaults (or --steps), score every
method on the held-out test split — and print every column of the table, the verdict,
and the wall time of each phase. Then, for the soft prompt and for LoRA, a training step
÷ a forward-only pass on the same batch (`step_ratios`).

    .venv/bin/python bench/bench_methods.py                      # the full sample table
    .venv/bin/python bench/bench_methods.py --limit 8 --steps 10 # a quick look

--limit scores only the first N held-out rows; --steps trains that many steps (the
defaults train for the Graduate tab's 225 steps with early stopping); --ratio-only skips
the table and measures only the step ÷ forward-only ratios. BENCH_THREADS as for the
other benches.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_graduate import _task

from workbench.core.backends.base import BackendSettings
from workbench.core.backends.pool import BackendPool
from workbench.core.backends.registry import ModelCatalog, embedded_spec
from workbench.core.flows.methods import (
    MethodsFinished,
    TrainingDone,
    format_table,
    plan_methods,
    run_methods,
    train_methods,
)
from workbench.core.graduation import ensure_split
from workbench.core.library import Library
from workbench.core.models import Prompt, TestSet
from workbench.core.tuning import StepEvent


def step_ratios(
    prompt: Prompt, test_set: TestSet, settings: BackendSettings, repeats: int = 3
) -> None:
    """A training step ÷ a forward-only pass on the same batch, for the soft prompt and
    for LoRA, with the Graduate defaults. The step is the product's own: the real
    `train_soft_prompt` / `train_lora` run `repeats + 1` steps on one batch (the first
    training batch's rows, so every step sees them), and a step's time is the gap
    between consecutive StepEvents (forward, backward, optimiser step and the snapshot
    the loop takes; the first step, with its warm-up, is left out). The forward-only
    pass calls the very module that loop trains (caught as the loop starts) on the same
    rows (`tuning.batch_arguments`) under `torch.inference_mode`, the adapter's dropout
    off; medians of `repeats`."""
    import itertools
    import statistics

    import torch

    from workbench.core import lora, tuning
    from workbench.core.graduation import model_folder, train_config

    torch.set_num_threads(settings.threads)
    config = train_config({})
    device = tuning.pick_device(config.device)
    folder = model_folder(embedded_spec())
    base, tokenizer = tuning.load_base_model(
        folder, device, tuning.pick_precision(device, config.precision)
    )
    train, _ = tuning.training_data(prompt, test_set)
    text = tuning.init_text(prompt)
    loop_name = "run_training_loop"
    real = tuning.run_training_loop
    caught: list[tuning.TrainingLoop] = []

    def catching(loop: tuning.TrainingLoop, *args: object) -> object:
        caught.append(loop)
        return real(loop, *args)  # type: ignore[arg-type]

    for key in ("soft", "lora"):
        options = {"steps": repeats + 1, "early_stopping_patience": 0}
        if key == "soft":
            config = train_config(options).model_copy(update={"init_text": text})
        else:
            config = lora.lora_train_config(options)
        batch = train[: config.batch_size]
        caught.clear()
        for owner in (tuning, lora):  # both call the loop by this name
            setattr(owner, loop_name, catching)
        try:
            events = (
                tuning.train_soft_prompt(base, tokenizer, batch, [], config, init_from=text)
                if key == "soft"
                else lora.train_lora(base, tokenizer, batch, [], config)
            )
            stamps: list[float] = []
            forward: list[float] = []
            width = 0
            for event in events:
                if not isinstance(event, StepEvent):
                    continue
                stamps.append(time.perf_counter())
                if event.step < event.total_steps:
                    continue
                # the last step: the loop waits here, its module as it trained
                loop = caught[0]
                rows = torch.arange(loop.train_data.input_ids.shape[0], device=device)
                arguments = tuning.batch_arguments(loop.train_data, rows)
                width = int(arguments[0].shape[1])
                if loop.train_mode is not None:
                    loop.train_mode(False)
                for _ in range(repeats + 1):  # the first pass warms up
                    started = time.perf_counter()
                    with torch.inference_mode(), loop.accelerator.autocast():
                        loop.module(*arguments)
                    forward.append(time.perf_counter() - started)
        finally:
            for owner in (tuning, lora):
                setattr(owner, loop_name, real)
        step_s = statistics.median(b - a for a, b in itertools.pairwise(stamps))
        forward_s = statistics.median(forward[1:])
        print(
            f"  {key}: step {step_s:.3f} s, forward-only {forward_s:.3f} s, "
            f"step ÷ forward-only {step_s / forward_s:.1f} "
            f"(batch {len(batch)} rows × {width} tokens, medians of {repeats})",
            flush=True,
        )


def run(
    name: str,
    settings: BackendSettings,
    limit: int | None,
    steps: int | None,
    methods: str | None,
    backend: str | None,
    ratio_only: bool = False,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        prompt, test_set = _task(name, library)
        test_set = ensure_split(library, test_set)
        assert test_set is not None
        if ratio_only:
            print(f"{name}: training step ÷ forward-only on the same batch", flush=True)
            step_ratios(prompt, test_set, settings)
            return
        plan = plan_methods(library, prompt, test_set, methods, limit)
        cancel = threading.Event()
        spec = embedded_spec()
        started = time.perf_counter()
        options = {"steps": steps} if steps else None
        step_rates: dict[str, float] = {}
        current = ""
        for event in train_methods(library, plan, spec, None, cancel, settings, options):
            if type(event).__name__ == "TrainingStarted":
                current = event.key
            elif isinstance(event, StepEvent) and event.steps_per_s:
                step_rates[current] = event.steps_per_s
            elif isinstance(event, TrainingDone):
                print(f"  trained {event.key} in {event.seconds:.1f} s", flush=True)
        trained = time.perf_counter()
        plan = plan_methods(library, prompt, test_set, methods, limit)
        finished = None
        with BackendPool(ModelCatalog(), settings, spec, backend) as pool:
            for item in run_methods(library, plan, pool, cancel):
                if isinstance(item, MethodsFinished):
                    finished = item
        ended = time.perf_counter()
    assert finished is not None
    print(
        f"{name}: training {trained - started:.0f} s, comparison {ended - trained:.0f} s "
        f"({plan.describe()})"
    )
    for key, rate in step_rates.items():
        print(f"  {key}: {1 / rate:.2f} s per training step (last measured)")
    print(format_table(finished.table), flush=True)
    print(f"{name}: training step ÷ forward-only on the same batch", flush=True)
    step_ratios(prompt, test_set, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="sample", help="sample,tickets,headlines,aspects")
    parser.add_argument("--limit", type=int, help="only the first N held-out rows")
    parser.add_argument("--steps", type=int, help="training steps (default: the Graduate tab's)")
    parser.add_argument("--methods", help="comma-separated method keys (default: all)")
    parser.add_argument("--backend", help="the model's backend (default: transformers when LoRA)")
    parser.add_argument(
        "--ratio-only", action="store_true", help="only the step ÷ forward-only ratios"
    )
    args = parser.parse_args()
    threads = int(os.environ.get("BENCH_THREADS", "0")) or BackendSettings().threads
    settings = BackendSettings(threads=threads)
    print(
        f"method table, {threads} threads, limit {args.limit or 'none'}, "
        f"steps {args.steps or 'default'}",
        flush=True,
    )
    for name in args.tasks.split(","):
        run(name, settings, args.limit, args.steps, args.methods, args.backend, args.ratio_only)


if __name__ == "__main__":
    main()
