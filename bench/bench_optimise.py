"""The hard-prompt search (`workbench optimise`) end to end: on the sample "Review
sentiment" prompt and the graduation benchmark's generated tasks (`bench/tasks.py`), the
product's own flow with its defaults — plan (split 50/25/25), search on the validation
split, compare the prompt as written with the winner on the held-out test split.

Prints per task: candidates evaluated, wall time (search, comparison), validation score
of the prompt as written and of the winner, the spread of the candidates' scores (best −
worst on the same rows, and their standard deviation), and held-out accuracy of both
with 95 % Wilson intervals and the paired test.

Environment: BENCH_TASKS (default "sample,tickets,headlines,aspects"), BENCH_BUDGET (the
default budget), BENCH_BACKEND (the model's default backend), BENCH_THREADS.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_graduate import _task

from workbench.core.analysis import analyse
from workbench.core.backends.base import BackendSettings
from workbench.core.backends.pool import BackendPool
from workbench.core.backends.registry import ModelCatalog, embedded_spec
from workbench.core.evaluation import EvalFinished
from workbench.core.flows.optimise import (
    DEFAULT_BUDGET,
    OPTIMISED,
    compare_held_out,
    plan_optimisation,
    run_optimisation,
)
from workbench.core.flows.report import format_percent
from workbench.core.library import Library
from workbench.core.optimise import SearchFinished


def run(name: str, budget: int, settings: BackendSettings, backend: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        prompt, test_set = _task(name, library)
        plan = plan_optimisation(library, prompt, test_set, budget)
        cancel = threading.Event()
        started = time.perf_counter()
        result = None
        with BackendPool(ModelCatalog(), settings, embedded_spec(), backend) as pool:
            for event in run_optimisation(plan, pool, cancel):
                if isinstance(event, SearchFinished):
                    result = event.result
            searched = time.perf_counter()
            assert result is not None
            comparison = None
            for step in compare_held_out(plan, result, pool, cancel):
                if isinstance(step, EvalFinished):
                    comparison = step.run
        ended = time.perf_counter()
    assert comparison is not None
    analysis = analyse(comparison, plan.test_set)
    best, score = result.best
    written, optimised = analysis.variant("few-shot"), analysis.variant(OPTIMISED)
    pair = analysis.pairs[0]
    current = result.current_score if result.current_score is not None else float("nan")
    print(
        f"{name}: {len(result.sample_scores)} candidates, search {searched - started:.0f} s, "
        f"comparison {ended - searched:.0f} s ({plan.describe()})"
    )
    print(
        f"  validation ({len(result.validation_rows)} rows): as written {current * 100:.1f} %, "
        f"winner {score * 100:.1f} % ({best.describe(result.space)}); spread of the "
        f"candidates on {len(result.sample_rows)} rows: {result.spread * 100:.1f} points "
        f"(sd {result.spread_sd * 100:.1f})"
    )
    print(
        f"  held-out ({written.primary.cases} rows): as written "
        f"{format_percent(written.primary.value, written.primary.interval)}, optimised "
        f"{format_percent(optimised.primary.value, optimised.primary.interval)}; {pair.verdict}",
        flush=True,
    )


def main() -> None:
    tasks = os.environ.get("BENCH_TASKS", "sample,tickets,headlines,aspects").split(",")
    budget = int(os.environ.get("BENCH_BUDGET", str(DEFAULT_BUDGET)))
    threads = int(os.environ.get("BENCH_THREADS", "0")) or BackendSettings().threads
    backend = os.environ.get("BENCH_BACKEND") or None
    print(f"hard-prompt search, budget {budget}, {threads} threads", flush=True)
    for name in tasks:
        run(name, budget, BackendSettings(threads=threads), backend)


if __name__ == "__main__":
    main()
