"""What the baseline library reaches on the same data: PEFT prompt tuning outside the
product, as a reference for bench_graduate.py's accuracy figures.

The sample "Review sentiment" prompt (or a generated task: BENCH_TASK), split the way
Graduate splits it (50/25/25, seed 0). PEFT `PromptTuningConfig` with text init from the
system message, N=20, AdamW lr BENCH_LR (3e-2), batch 8, BENCH_STEPS (225) steps, trained
on the few-shot examples + the train split in PEFT's only layout: the virtual tokens before
the whole input, with no system message (the setting measured outside the product when
the product was planned). The trained embeddings are then scored on the held-out split by
the product's label-scoring path (the transformers backend; its logits match PEFT's), and
by the best validation accuracy every 25 steps, as Graduate keeps its best step.

Prints the held-out label accuracy at the best validation step and at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_graduate import _task

from workbench.core.backends.base import BackendSettings
from workbench.core.backends.registry import embedded_spec, load_backend
from workbench.core.evaluation import EvalFinished, evaluate
from workbench.core.graduation import ensure_split, model_folder
from workbench.core.library import Library
from workbench.core.models import VariantSpec
from workbench.core.placement import VirtualTokens
from workbench.core.testsets_io import rows_in_split
from workbench.core.tuning import load_base_model, training_data, zero_shot
from workbench.core.tuning_data import TrainingExample


def main() -> None:
    import numpy as np
    import torch
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    steps = int(os.environ.get("BENCH_STEPS", "225"))
    lr = float(os.environ.get("BENCH_LR", "3e-2"))
    name = os.environ.get("BENCH_TASK", "sample")
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        prompt, test_set = _task(name, library)
        test_set = ensure_split(library, test_set, 0)
        assert test_set is not None
        # no system message: PEFT can only put the virtual tokens before everything
        bare = zero_shot(prompt).model_copy(update={"system": ""})
        train, _ = training_data(bare, test_set)
        spec = embedded_spec()
        base, tokenizer = load_base_model(model_folder(spec), "cpu", "fp32")
        model = get_peft_model(
            base,
            PromptTuningConfig(
                task_type=TaskType.CAUSAL_LM,
                num_virtual_tokens=20,
                prompt_tuning_init=PromptTuningInit.TEXT,
                prompt_tuning_init_text=prompt.system,
                tokenizer_name_or_path=str(model_folder(spec)),
            ),
        )

        def encoded(examples: list[TrainingExample]) -> list[tuple[list[int], int]]:
            out = []
            for example in examples:
                text = tokenizer.apply_chat_template(
                    [m.model_dump() for m in example.messages],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                ids = tokenizer(text)["input_ids"]
                target = tokenizer(example.target + tokenizer.eos_token, add_special_tokens=False)
                out.append((ids + target["input_ids"], len(ids)))
            return out

        rows = encoded(train)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
        )
        rng = np.random.default_rng(0)
        held_out = rows_in_split(test_set, "test")
        val_rows = rows_in_split(test_set, "validation")
        backend = load_backend(spec, "transformers", BackendSettings(threads=threads))

        def accuracy(embeddings: np.ndarray, which: list[int]) -> float:
            soft = VirtualTokens(embeddings, "start")
            run = None
            for event in evaluate(
                [(VariantSpec(name="peft", soft_prompt_id="x", few_shot_count=0), bare)],
                test_set,
                which,
                lambda _v: backend,
                soft_prompt_for=lambda _id: soft,
            ):
                if isinstance(event, EvalFinished):
                    run = event.run
            assert run is not None
            return float(run.summaries[0].metrics["label"])

        def embeddings_now() -> np.ndarray:
            return model.get_prompt_embedding_to_save("default").detach().float().numpy().copy()

        started = time.perf_counter()
        best = (-1.0, 0, embeddings_now())
        order: list[int] = []
        model.train()
        for step in range(1, steps + 1):
            if not order:
                order = list(rng.permutation(len(rows)))
            batch = [rows[order.pop()] for _ in range(min(8, len(order)))]
            width = max(len(ids) for ids, _ in batch)
            pad = tokenizer.pad_token_id or 0
            ids = torch.full((len(batch), width), pad)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100)
            for i, (seq, prompt_len) in enumerate(batch):
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
                labels[i, prompt_len : len(seq)] = torch.tensor(seq[prompt_len:])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % 25 == 0 or step == steps:
                model.eval()
                val = accuracy(embeddings_now(), val_rows)
                model.train()
                print(
                    f"step {step}: loss {float(loss):.4f}, validation {val * 100:.1f} %", flush=True
                )
                if val > best[0]:
                    best = (val, step, embeddings_now())
        train_s = time.perf_counter() - started
        last = accuracy(embeddings_now(), held_out)
        kept = accuracy(best[2], held_out)
        backend.close()
    print(
        f"PEFT reference on {name} ({len(rows)} training rows, {steps} steps, lr {lr:g}, "
        f"{train_s:.0f} s): held-out ({len(held_out)} rows) {kept * 100:.1f} % at the best "
        f"validation step {best[1]}, {last * 100:.1f} % at the end"
    )


if __name__ == "__main__":
    main()
