"""The method table (`workbench compare`) end to end on the embedded model: for the
sample "Review sentiment" prompt (and, with --tasks, the graduation benchmark's generated
tasks, `bench/tasks.py`), the product's own flow — split 50/25/25 if needed, train the
missing soft prompt and LoRA adapter with the Graduate defaults (or --steps), score every
method on the held-out test split — and print every column of the table, the verdict,
and the wall time of each phase.

    .venv/bin/python bench/bench_methods.py                      # the full sample table
    .venv/bin/python bench/bench_methods.py --limit 8 --steps 10 # a quick look

--limit scores only the first N held-out rows; --steps trains that many steps (the
defaults train for the Graduate tab's 225 steps with early stopping). BENCH_THREADS as
for the other benches.
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
from workbench.core.tuning import StepEvent


def run(
    name: str,
    settings: BackendSettings,
    limit: int | None,
    steps: int | None,
    methods: str | None,
    backend: str | None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        prompt, test_set = _task(name, library)
        test_set = ensure_split(library, test_set)
        assert test_set is not None
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="sample", help="sample,tickets,headlines,aspects")
    parser.add_argument("--limit", type=int, help="only the first N held-out rows")
    parser.add_argument("--steps", type=int, help="training steps (default: the Graduate tab's)")
    parser.add_argument("--methods", help="comma-separated method keys (default: all)")
    parser.add_argument("--backend", help="the model's backend (default: transformers when LoRA)")
    args = parser.parse_args()
    threads = int(os.environ.get("BENCH_THREADS", "0")) or BackendSettings().threads
    settings = BackendSettings(threads=threads)
    print(
        f"method table, {threads} threads, limit {args.limit or 'none'}, "
        f"steps {args.steps or 'default'}",
        flush=True,
    )
    for name in args.tasks.split(","):
        run(name, settings, args.limit, args.steps, args.methods, args.backend)


if __name__ == "__main__":
    main()
