"""`workbench compare` through main(): the method table on a tiny random-weight Llama
(training the missing soft prompt and LoRA adapter first) and on the embedded model with
llama.cpp; bad input is refused in one line with nothing saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.library import Library
from workbench.core.models import FewShotExample, Prompt, TestRow, TestSet

pytestmark = pytest.mark.integration


@pytest.fixture
def yes_no(library_dir: Path) -> Library:
    library = Library(library_dir)
    prompt = library.save_prompt(
        Prompt(
            name="YN",
            system="Answer yes or no.",
            user_template="{{ text }}",
            few_shot={"examples": [FewShotExample(vars={"text": "say yes"}, output="yes")]},
        )
    )
    rows = [
        TestRow(
            vars={"text": f"say {word} {i}"},
            expected=word,
            split="train" if i < 4 else ("validation" if i < 6 else "test"),
        )
        for i, word in enumerate(["yes", "no"] * 5)
    ]
    library.save_test_set(TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"]))
    return library


def compare(library: Library, *extra: str) -> int:
    return main(["--library", str(library.root), "compare", "YN", *extra])


def test_train_missing_then_every_column_on_a_tiny_model(
    yes_no: Library, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table.md"
    status = compare(
        yes_no,
        "--model",
        str(tiny_model_dir),
        "--train-missing",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--json",
        "--export",
        str(out),
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [x["method"] for x in lines if x["event"] == "training"] == ["soft prompt", "LoRA"]
    table = next(x for x in lines if x["event"] == "table")
    rows = {r["key"]: r for r in table["rows"]}
    library = Library(yes_no.root)
    prompt = library.find_prompt("YN")
    (soft,) = library.soft_prompts_for(prompt.id)
    (adapter,) = library.lora_adapters_for(prompt.id)
    assert [k for k, r in rows.items() if r["status"] == "evaluated"] == [
        "zero-shot",
        "few-shot",
        "soft",
        "lora",
    ]
    assert rows["cot"]["status"] == "not available"
    for key in ("zero-shot", "few-shot", "soft", "lora"):
        assert rows[key]["cases"] == 4 and rows[key]["interval"] is not None
        assert rows[key]["context_tokens"] > 0 and rows[key]["latency_s"] > 0
    assert rows["soft"]["trainable_parameters"] == soft.num_virtual_tokens * 32  # hidden 32
    assert rows["lora"]["trainable_parameters"] == adapter.trainable_parameters > 0
    for key, item in (("soft", soft), ("lora", adapter)):
        assert rows[key]["train_s"] == item.metrics["train_s"] > 0  # recorded by the training
        assert rows[key]["peak_memory_mb"] and rows[key]["peak_memory_mb"] > 0
        assert rows[key]["size_bytes"] > 0
    assert rows["soft"]["llama_cpp"] is True and rows["lora"]["llama_cpp"] is True
    assert table["verdict"].startswith("Best on 4 held-out rows:")
    (run,) = library.eval_runs_for(prompt.id)  # the run is kept, with its table
    assert run.method_table is not None and run.method_table["verdict"] == table["verdict"]
    assert run.id == table["run"]
    assert table["verdict"] in out.read_text()


def test_the_embedded_model_on_llama_cpp_and_bad_input(
    yes_no: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = compare(
        yes_no, "--methods", "zero-shot,few-shot,soft", "--backend", "llama.cpp", "--threads", "2"
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "held-out accuracy" in captured.out and "95 % interval" in captured.out
    assert "not trained" in captured.out  # the soft prompt row, untrained
    assert "Best on 4 held-out rows" in captured.out
    prompt_id = yes_no.find_prompt("YN").id
    assert len(Library(yes_no.root).eval_runs_for(prompt_id)) == 1

    assert compare(yes_no, "--methods", "zero-shot,prefix") == 2
    assert "unknown method 'prefix'" in capsys.readouterr().err
    assert compare(yes_no, "--export", str(tmp_path / "table.txt")) == 2
    assert ".csv, .json or .md" in capsys.readouterr().err
    assert compare(yes_no, "--methods", "soft,lora") == 2  # nothing trained to compare
    assert "nothing to compare" in capsys.readouterr().err
    assert len(Library(yes_no.root).eval_runs_for(prompt_id)) == 1  # nothing more saved
    assert not list(tmp_path.glob("table.*"))
