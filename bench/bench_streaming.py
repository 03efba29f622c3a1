"""Streaming overhead per backend: our stream() vs the raw library call, same model,
prompt and settings, in one run (target: tokens/s ratio >= 0.97).

- llama.cpp: `Llama.create_completion` (no stream) for throughput, `stream=True` for the
  raw time to first token; ours: LlamaCppBackend.stream().
- transformers: `model.generate` without a streamer; ours: TransformersBackend.stream().

Runs alternate (raw, ours, raw, ours, ...) and the medians are compared.
"""

from __future__ import annotations

import os
import statistics
import time

from workbench.core.backends.base import BackendSettings, Finished
from workbench.core.backends.registry import embedded_spec
from workbench.core.models import GenerationParams, Message

TOKENS = int(os.environ.get("BENCH_TOKENS", "128"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PROMPT = [
    Message(
        role="user",
        content="Write a detailed story about a lighthouse keeper who finds a message in a bottle.",
    )
]
PARAMS = GenerationParams(temperature=0.0, max_new_tokens=TOKENS)


def ours(backend) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    final = None
    for event in backend.stream(PROMPT, PARAMS):
        if first is None:
            first = time.perf_counter() - start
        if isinstance(event, Finished):
            final = event
    total = time.perf_counter() - start
    n = len(final.token_ids)
    return n / total, first or total, n


def bench_llama(settings: BackendSettings) -> None:
    from workbench.core.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(embedded_spec(), settings)
    llm = backend.llm
    text = backend.apply_chat_template(PROMPT)
    tokens = backend.tokenize(text)

    def raw() -> tuple[float, float, int]:
        # both sides evaluate the prompt afresh (ours resets for seeded replay)
        llm.reset()
        start = time.perf_counter()
        out = llm.create_completion(
            tokens,
            max_tokens=TOKENS,
            temperature=0.0,
            top_k=0,
            top_p=1.0,
            min_p=0.0,
            repeat_penalty=1.0,
        )
        total = time.perf_counter() - start
        n = out["usage"]["completion_tokens"]
        llm.reset()
        start = time.perf_counter()
        for _ in llm.create_completion(tokens, max_tokens=1, temperature=0.0, stream=True):
            break
        ttft = time.perf_counter() - start
        return n / total, ttft, n

    report("llama.cpp", raw, lambda: ours(backend))
    backend.close()


def bench_hf(settings: BackendSettings) -> None:
    import torch

    from workbench.core.backends.hf import TransformersBackend

    backend = TransformersBackend(embedded_spec(), settings)
    ids = torch.tensor([backend.tokenize(backend.apply_chat_template(PROMPT))])

    def raw() -> tuple[float, float, int]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = backend.model.generate(ids, max_new_tokens=TOKENS, do_sample=False)
        total = time.perf_counter() - start
        n = out.shape[1] - ids.shape[1]
        start = time.perf_counter()
        with torch.inference_mode():
            backend.model.generate(ids, max_new_tokens=1, do_sample=False)
        ttft = time.perf_counter() - start
        return n / total, ttft, n

    report("transformers", raw, lambda: ours(backend))


def report(name: str, raw, mine) -> None:
    raw(), mine()  # warm-up (allocations, caches)
    raw_runs, our_runs = [], []
    for _ in range(ROUNDS):
        raw_runs.append(raw())
        our_runs.append(mine())
    raw_tps = statistics.median(r[0] for r in raw_runs)
    our_tps = statistics.median(r[0] for r in our_runs)
    raw_ttft = statistics.median(r[1] for r in raw_runs)
    our_ttft = statistics.median(r[1] for r in our_runs)
    print(f"{name}: {our_runs[0][2]} tokens (raw {raw_runs[0][2]})")
    print(
        f"  tokens/s   raw {raw_tps:7.1f}   ours {our_tps:7.1f}   ratio {our_tps / raw_tps:.3f}"
        "  (target >= 0.97)"
    )
    print(
        f"  first tok  raw {raw_ttft * 1000:6.0f} ms ours {our_ttft * 1000:6.0f} ms"
        f"  ratio {our_ttft / raw_ttft:.3f}"
    )


def main() -> None:
    settings = BackendSettings(device="cpu")
    print(f"threads: {settings.threads}, max_new_tokens {TOKENS}, rounds {ROUNDS}")
    bench_llama(settings)
    bench_hf(settings)


if __name__ == "__main__":
    main()
