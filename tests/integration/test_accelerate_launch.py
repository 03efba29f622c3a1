"""`workbench tune --device cpu` under `accelerate launch --multi_gpu --num_processes 2`
(two CPU processes over gloo), for both methods, on the tiny random Llama: each process
trains on its own half of every batch, the gradients are averaged, and the run follows
a single process with the same global batch step for step; only the main process saves.

Why the losses can be compared: with batch size B per process the schedule has 2·B rows
a step, process r takes rows [r·B, (r+1)·B), and each process's loss is the mean over
its rows' target tokens. Every row's target here has the same number of tokens, so the
mean of the two processes' losses is the single process's loss over all 2·B rows, and
averaging gradients (DDP) gives the single process's update. Dropout is off, so both
runs compute the same thing: the losses agree to float rounding at every step — at the
later steps only if the two processes really trained one shared model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.library import Library
from workbench.core.models import TestRow, TestSet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEPS = 4
PER_PROCESS = 2


@pytest.fixture
def yes_no(library_dir: Path) -> Library:
    library = Library(library_dir)
    prompt = library.new_prompt("YN", system="Answer yes or no.", user_template="{{ text }}")
    words = ["apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "chair"]
    rows = [
        TestRow(vars={"text": f"say {w}"}, expected=["yes", "no"][i % 2], split="train")
        for i, w in enumerate(words)
    ]
    rows += [TestRow(vars={"text": "say pear"}, expected="yes", split="validation")]
    library.save_test_set(TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"]))
    return library


def tune_args(library: Library, model: Path, method: str, batch: int) -> list[str]:
    args = ["--library", str(library.root), "tune", "YN", "--method", method]
    args += ["--model", str(model), "--steps", str(STEPS), "--batch-size", str(batch)]
    args += ["--eval-every", str(STEPS), "--patience", "0", "--device", "cpu", "--seed", "3"]
    args += ["--threads", "1", "--json", "--name", f"{method}-run"]
    if method == "lora":
        args += ["--dropout", "0", "--lr", "0.05"]
    else:
        args += ["--tokens", "4", "--no-compare"]
    return args


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(args: list[str]) -> subprocess.CompletedProcess[str]:
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--cpu` with several processes on one machine expects mpirun in accelerate 1.x and
    # otherwise starts one process; `--multi_gpu` starts them through torchrun, and
    # `tune --device cpu` makes the Accelerator a CPU one: two processes over gloo
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port())]
    command += ["-m", "workbench", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("method", ["lora", "soft"])
def test_two_processes_train_like_one_with_the_same_global_batch(
    method: str,
    yes_no: Library,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    single_root = tmp_path / "single"
    shutil.copytree(yes_no.root, single_root)
    single_library = Library(single_root)
    assert main(tune_args(single_library, tiny_model_dir, method, 2 * PER_PROCESS)) == 0
    single = [e["loss"] for e in events(capsys.readouterr().out) if e["event"] == "step"]
    assert len(single) == STEPS

    done = launch(tune_args(yes_no, tiny_model_dir, method, PER_PROCESS))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = events(done.stdout)
    steps = [e for e in lines if e["event"] == "step"]
    by_process = {rank: [e["loss"] for e in steps if e["process"] == rank] for rank in (0, 1)}
    assert all(len(losses) == STEPS for losses in by_process.values()), steps
    # each process trained on its own rows (different losses), and together they made the
    # single process's steps
    assert by_process[0][0] != pytest.approx(by_process[1][0], abs=1e-3)
    mean = [(a + b) / 2 for a, b in zip(by_process[0], by_process[1], strict=True)]
    assert mean == pytest.approx(single, abs=1e-4)
    assert single[-1] != pytest.approx(single[0], abs=1e-3)  # it did train

    # exactly one result was saved, by the main process
    saved = [e for e in lines if e["event"] == "saved"]
    library = Library(yes_no.root)
    if method == "lora":
        assert len(saved) == 1 and list(library.lora_adapters) == [saved[0]["adapter"]]
        assert library.soft_prompts == {}
    else:
        assert len(saved) == 1 and list(library.soft_prompts) == [saved[0]["soft_prompt"]]
        assert library.lora_adapters == {}
