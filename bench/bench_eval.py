"""Label-scoring throughput on the embedded model (cases/s), same cases, same model, one
run: the evaluation path (`Backend.score_cases`: the key/value cache of the prefix the
cases share — system message, six few-shot turns — runs once) against the previous path
(each case's whole prompt, one at a time) and a padded batch; llama.cpp one at a time
(it reuses the KV cache of the prefix in its own cache). Target: shared prefix ÷ one at
a time >= 5x on transformers, same scores to 1e-3."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from workbench.core.backends.base import BackendSettings
from workbench.core.backends.registry import embedded_spec
from workbench.core.library import Library, seed_library
from workbench.core.resources import resource_path
from workbench.core.templates import render_messages

CASES = int(os.environ.get("BENCH_CASES", "60"))  # the held-out split of the sample
BATCH = int(os.environ.get("BENCH_BATCH", "8"))


def main() -> None:
    from workbench.core.backends.hf import TransformersBackend
    from workbench.core.backends.llamacpp import LlamaCppBackend

    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        seed_library(library, resource_path("sample_library"))
        prompt = library.find_prompt("Review sentiment")
        test_set = library.test_sets_for(prompt.id)[0]
    labels = list(test_set.labels or [])
    cases = [render_messages(prompt, row.vars) for row in test_set.rows[:CASES]]
    settings = BackendSettings(device="cpu")
    print(
        f"{CASES} cases x {len(labels)} labels, sentiment prompt with 6 few-shot examples, "
        f"threads {settings.threads}"
    )

    hf = TransformersBackend(embedded_spec(), settings)
    hf.score_continuations(cases[0], labels)  # warm-up
    start = time.perf_counter()
    single = [hf.score_continuations(c, labels) for c in cases]
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    shared = list(hf.score_cases(cases, labels))
    t_shared = time.perf_counter() - start
    same_shared = all(
        max(abs(a - b) for a, b in zip(x, y, strict=True)) < 1e-3
        for x, y in zip(single, shared, strict=True)
    )
    start = time.perf_counter()
    batched: list[list[float]] = []
    for i in range(0, len(cases), BATCH):
        batched += hf.score_batch([(c, labels) for c in cases[i : i + BATCH]])
    t_batched = time.perf_counter() - start
    same = all(
        max(abs(a - b) for a, b in zip(x, y, strict=True)) < 1e-3
        for x, y in zip(single, batched, strict=True)
    )
    hf.close()

    llama = LlamaCppBackend(embedded_spec(), settings)
    start = time.perf_counter()
    for c in cases:
        llama.score_continuations(c, labels)
    t_llama = time.perf_counter() - start
    llama.close()

    print(f"transformers one at a time: {CASES / t_single:6.2f} cases/s")
    print(
        f"transformers shared prefix: {CASES / t_shared:6.2f} cases/s"
        f"  ratio {t_single / t_shared:.2f}x  (target >= 5; same scores: {same_shared})"
    )
    print(
        f"transformers batched ({BATCH}):  {CASES / t_batched:6.2f} cases/s"
        f"  ratio {t_single / t_batched:.2f}x  (same scores: {same})"
    )
    print(f"llama.cpp one at a time:    {CASES / t_llama:6.2f} cases/s (prefix KV reused)")


if __name__ == "__main__":
    main()
