"""Prompt-tuning step: ours vs PEFT PromptTuning, same model, N, batch, sequence length
(the sample "Review sentiment" prompt's real rows) and threads, one run. Each measurement
runs in its own process so peak memory is its own.

Prints, for the embedded SmolLM2 and a tiny random model:
  our step / PEFT's for the same work (virtual tokens before the whole prompt, PEFT's
  layout; target <= 0.6), our step / a forward-only pass (limit 2.2), peak memory ours /
  PEFT (<= 1.0; RSS growth over the loaded model), and our step with the text before the
  virtual tokens cached (placements "add": the system message, and "replace": no system
  message) / the uncached step.
The whole click — training and comparison — is measured by bench_graduate.py.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_VIRTUAL = 20
BATCH = 8
STEPS = int(os.environ.get("BENCH_STEPS", "6"))
WARMUP = 2


def _batch(tokenizer, placement: str = "start", device: str = "cpu"):
    """8 sentiment rows laid out as training lays them out: the same token ids for
    both implementations."""
    from workbench.core.library import Library, seed_library
    from workbench.core.resources import resource_path
    from workbench.core.tuning import TrainingExample, example_messages
    from workbench.core.tuning_data import encode

    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        seed_library(library, resource_path("sample_library"))
        prompt = library.find_prompt("Review sentiment")
        rows = library.test_sets_for(prompt.id)[0].rows[:BATCH]
    examples = [TrainingExample(example_messages(prompt, r), r.expected) for r in rows]
    return encode(tokenizer, examples, N_VIRTUAL, placement, 512, device)


def _model(which: str):
    import torch

    from workbench.core.tuning import load_base_model

    if which == "embedded":
        from workbench.core.backends.hf import gguf_as_hf_folder
        from workbench.core.backends.registry import embedded_model_path

        return load_base_model(gguf_as_hf_folder(embedded_model_path()), "cpu", "fp32")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from workbench.core.backends.hf import gguf_as_hf_folder
    from workbench.core.backends.registry import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_as_hf_folder(embedded_model_path())))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.requires_grad_(False)
    return model, tokenizer


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, which: str) -> dict[str, float]:
    """kind: peft | ours | forward (virtual tokens first, uncached) | add | replace
    (ours in that placement, with the head before the virtual tokens cached)."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    base, tokenizer = _model(which)
    placement = kind if kind in ("add", "replace") else "start"
    data = _batch(tokenizer, placement)
    baseline = _rss_mb()
    ids, mask = data.input_ids, data.attention_mask
    tmask = data.target_mask
    rows = torch.arange(ids.shape[0]).unsqueeze(1).expand_as(tmask)
    times = []
    tokens = float(len(data.head) + ids.shape[1])
    if kind != "peft":
        from workbench.core.prefix_cache import PrefixCache
        from workbench.core.tuning import _make_module

        init = base.get_input_embeddings().weight[:N_VIRTUAL].detach().float().clone()
        head = PrefixCache(base, data.head) if data.head else None
        module = _make_module(base, init, head)
        optimizer = torch.optim.AdamW([module.prompt], lr=3e-2)
        args = (
            ids,
            mask,
            data.virtual_at,
            rows[tmask],
            data.target_pos[tmask],
            data.target_ids[tmask],
        )
        for i in range(WARMUP + STEPS):
            start = time.perf_counter()
            if kind == "forward":
                with torch.no_grad():
                    module(*args)
            else:
                loss = module(*args)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    else:
        from peft import PromptTuningConfig, TaskType, get_peft_model

        model = get_peft_model(
            base, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=N_VIRTUAL)
        )
        # PEFT adds the virtual tokens itself: the rows without their placeholder slots
        ids, mask = ids[:, N_VIRTUAL:], mask[:, N_VIRTUAL:]
        labels = torch.full_like(ids, -100)
        for b in range(ids.shape[0]):
            for k in range(tmask.shape[1]):
                if tmask[b, k]:
                    position = int(data.target_pos[b, k]) + 1 - N_VIRTUAL  # the token itself
                    labels[b, position] = ids[b, position]
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
        model.train()
        for i in range(WARMUP + STEPS):
            start = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
    return {
        "step_s": statistics.median(times),
        "peak_mb": _rss_mb() - baseline,
        "seq": tokens,
        "cached": float(len(data.head)),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
        return
    threads = os.environ.get("BENCH_THREADS", "2")
    print(f"N={N_VIRTUAL} virtual tokens, batch {BATCH}, {STEPS} timed steps, {threads} threads")
    for which in ("embedded", "tiny"):
        results = {}
        for kind in ("peft", "ours", "forward", "add", "replace"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", kind, which],
                capture_output=True,
                text=True,
                check=True,
            )
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        ours, peft, fwd = results["ours"], results["peft"], results["forward"]
        print(f"{which} model (rows of up to {ours['seq']:.0f} tokens incl. {N_VIRTUAL} virtual):")
        print(
            f"  step  PEFT {peft['step_s'] * 1000:7.1f} ms  ours {ours['step_s'] * 1000:7.1f} ms"
            f"  ratio {ours['step_s'] / peft['step_s']:.2f}  (same work; target <= 0.6)"
        )
        print(
            f"  ours / forward-only ({fwd['step_s'] * 1000:.1f} ms): "
            f"{ours['step_s'] / fwd['step_s']:.2f}  (limit 2.2)"
        )
        ratio = ours["peak_mb"] / peft["peak_mb"] if peft["peak_mb"] > 0 else float("nan")
        print(
            f"  peak memory growth  PEFT {peft['peak_mb']:.0f} MB  ours {ours['peak_mb']:.0f} MB"
            f"  ratio {ratio:.2f}  (target <= 1.0)"
        )
        for kind in ("add", "replace"):
            r = results[kind]
            print(
                f"  placement {kind:<7} {r['step_s'] * 1000:7.1f} ms ({r['cached']:.0f} tokens "
                f"cached, rows of {r['seq'] - r['cached']:.0f}): "
                f"{r['step_s'] / ours['step_s']:.2f} of the uncached step"
            )


if __name__ == "__main__":
    main()
