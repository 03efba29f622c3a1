"""`workbench tune --method lora` and `workbench generate --adapter` through the CLI's
main(), on a tiny random-weight Llama (and the embedded model on llama.cpp, which
refuses one made for another model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.library import Library
from workbench.core.models import TestRow, TestSet

pytestmark = pytest.mark.integration


@pytest.fixture
def yes_no(library_dir: Path) -> Library:
    library = Library(library_dir)
    prompt = library.new_prompt("YN", system="Answer yes or no.", user_template="{{ text }}")
    rows = [
        TestRow(vars={"text": f"say {word} {i}"}, expected=word)
        for i, word in enumerate(["yes", "no"] * 4)
    ]
    library.save_test_set(TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"]))
    return library


def tune(library: Library, model: Path, *extra: str) -> int:
    return main(
        [
            "--library",
            str(library.root),
            "tune",
            "YN",
            "--method",
            "lora",
            "--model",
            str(model),
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--eval-every",
            "2",
            "--device",
            "cpu",
            "--threads",
            "2",
            *extra,
        ]
    )


def generate(library: Library, model: Path, *extra: str) -> int:
    return main(
        [
            "--library",
            str(library.root),
            "generate",
            "YN",
            "--var",
            "text=say yes",
            "--model",
            str(model),
            "--backend",
            "transformers",
            "--max-tokens",
            "3",
            "--temperature",
            "0",
            "--logprobs",
            "1",
            "--threads",
            "2",
            "--json",
            *extra,
        ]
    )


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_tune_lora_saves_an_adapter_that_generate_runs_with(
    yes_no: Library, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune(yes_no, tiny_model_dir, "--lr", "0.05", "--rank", "4", "--name", "yn-lora") == 0
    captured = capsys.readouterr()
    assert "with LoRA" in captured.err and "rank 4" in captured.err
    assert "learning rate 0.05" in captured.err
    assert "saved LoRA adapter" in captured.err
    library = Library(yes_no.root)
    prompt = library.find_prompt("YN")
    [adapter] = library.lora_adapters_for(prompt.id)
    assert adapter.name == "yn-lora" and adapter.lora.rank == 4
    assert adapter.train_config is not None and adapter.train_config.learning_rate == 0.05
    assert adapter.metrics["steps"] == 4.0
    # the test set was split for training, and the split saved
    assert {row.split for row in library.test_sets_for(prompt.id)[0].rows} >= {"train"}

    assert generate(library, tiny_model_dir, "--no-save") == 0
    plain = json_lines(capsys.readouterr().out)
    assert generate(library, tiny_model_dir, "--adapter", "yn-lora") == 0
    adapted = json_lines(capsys.readouterr().out)
    assert adapted[-1]["event"] == "done" and plain[-1]["event"] == "done"
    first = [e["logprob"] for e in plain if e["event"] == "token"][:1]
    first_adapted = [e["logprob"] for e in adapted if e["event"] == "token"][:1]
    assert first and first_adapted and first != first_adapted  # the adapter is applied
    [run] = Library(yes_no.root).runs_for(prompt.id)
    assert run.adapter_id == adapter.id  # the run record says what it ran with


def test_eval_compares_a_variant_with_a_lora_adapter_by_name(
    yes_no: Library, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune(yes_no, tiny_model_dir, "--lr", "0.05", "--name", "yn lora", "--no-compare") == 0
    capsys.readouterr()
    argv = ["--library", str(yes_no.root), "eval", "YN", "--model", str(tiny_model_dir)]
    argv += ["--backend", "transformers", "--split", "all", "--limit", "4", "--threads", "2"]
    variants = ["--variant", "plain:few_shot=0", "--variant", "tuned:few_shot=0,adapter=yn lora"]
    assert main([*argv, *variants, "--json"]) == 0
    lines = json_lines(capsys.readouterr().out)
    cases = [line for line in lines if line["event"] == "case"]
    [summary] = [line for line in lines if line["event"] == "summary"]
    assert [s["name"] for s in summary["summaries"]] == ["plain", "tuned"]
    assert summary["complete"] and len(cases) == 8
    scores = {
        name: [c["label_scores"] for c in cases if c["variant"] == name]
        for name in ("plain", "tuned")
    }
    assert scores["plain"] != scores["tuned"]  # the adapter ran for its variant
    library = Library(yes_no.root)
    [adapter] = library.lora_adapters.values()
    [run] = library.eval_runs_for(library.find_prompt("YN").id)
    assert [v.adapter_id for v in run.variants] == [None, adapter.id]
    # a name the library does not know is said before any model loads
    assert main([*argv, "--variant", "gone:adapter=nope"]) != 0
    assert "no single LoRA adapter 'nope'" in capsys.readouterr().err


def test_tune_lora_json_lines_and_bad_options(
    yes_no: Library, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune(yes_no, tiny_model_dir, "--lr", "0.01", "--json") == 0
    lines = json_lines(capsys.readouterr().out)
    assert [e["step"] for e in lines if e["event"] == "step"] == [1, 2, 3, 4]
    assert [e["step"] for e in lines if e["event"] == "validation"] == [2, 4]
    saved = [e for e in lines if e["event"] == "saved"]
    assert len(saved) == 1 and saved[0]["adapter"] in Library(yes_no.root).lora_adapters
    # a layer the model does not have: one clear line, nothing saved
    assert tune(yes_no, tiny_model_dir, "--target-modules", "query,value") == 1
    err = capsys.readouterr().err
    assert "no linear layers named 'query', 'value'" in err and "q_proj" in err
    assert len(Library(yes_no.root).lora_adapters) == 1


def test_generate_refuses_an_adapter_it_cannot_run(
    yes_no: Library,
    tiny_model_dir: Path,
    embedded_spec,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workbench.core.lora_io import import_lora_adapter
    from workbench.core.models import ModelSpec

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(
        str(tmp_path / "peft")
    )
    spec = ModelSpec(id="tiny", name="tiny", source="hf", path=str(tiny_model_dir))
    import_lora_adapter(yes_no, tmp_path / "peft", spec, name="tiny-adapter")

    assert generate(yes_no, tiny_model_dir, "--adapter", "nope") == 2
    assert "no single LoRA adapter 'nope'" in capsys.readouterr().err
    # the embedded model on either backend: made for another model
    args = ["--library", str(yes_no.root), "generate", "--text", "hi", "--max-tokens", "1"]
    for backend in ("llama.cpp", "transformers"):
        assert main([*args, "--backend", backend, "--adapter", "tiny-adapter"]) == 2
        err = capsys.readouterr().err
        assert "was made for model 'tiny'" in err and embedded_spec.name in err
    assert Library(yes_no.root).runs_for(yes_no.find_prompt("YN").id) == []


def test_tune_lora_ends_with_the_held_out_comparison_as_soft_does(
    yes_no: Library, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same flow as after a soft prompt (`graduation.compare_on_held_out`): the hard
    prompt vs the adapter on the held-out rows, printed as a table (a JSON line with
    --json) and saved as an evaluation run; --no-compare skips it."""
    from workbench.core.graduation import LORA_VARIANT

    assert tune(yes_no, tiny_model_dir, "--lr", "0.05") == 0
    captured = capsys.readouterr()
    assert "held-out rows" in captured.err.splitlines()[0]  # the plan says what is compared
    assert f"comparing zero-shot, {LORA_VARIANT} on 2 held-out rows" in captured.err
    header, *table = captured.out.splitlines()
    assert header.split() == ["zero-shot", LORA_VARIANT]
    prompt = Library(yes_no.root).find_prompt("YN")
    [run] = Library(yes_no.root).eval_runs_for(prompt.id)
    assert [s.name for s in run.summaries] == ["zero-shot", LORA_VARIANT]
    assert [line.split()[0] for line in table[: len(run.metrics)]] == list(run.metrics)
    assert run.split == "test" and all(s.cases == 2 for s in run.summaries)

    assert tune(yes_no, tiny_model_dir, "--lr", "0.05", "--json") == 0
    lines = json_lines(capsys.readouterr().out)
    kinds = [e["event"] for e in lines]
    assert kinds.index("saved") < kinds.index("comparison") == len(kinds) - 1
    summaries = lines[-1]["summaries"]
    assert [s["name"] for s in summaries] == ["zero-shot", LORA_VARIANT]
    newest = max(Library(yes_no.root).eval_runs_for(prompt.id), key=lambda r: r.created)
    assert [s["metrics"]["label"] for s in summaries] == [
        s.metrics["label"] for s in newest.summaries
    ]

    assert tune(yes_no, tiny_model_dir, "--no-compare") == 0
    captured = capsys.readouterr()
    assert "comparing" not in captured.err and captured.out == ""
    assert len(Library(yes_no.root).eval_runs_for(prompt.id)) == 2


@pytest.mark.parametrize(
    ("method", "advice"), [("lora", "a lower rank"), ("soft", "fewer virtual tokens")]
)
def test_out_of_memory_loading_the_model_is_told_in_the_method_s_terms(
    yes_no: Library,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    advice: str,
) -> None:
    """Fault injection: the base model runs out of memory as it is loaded for training."""
    import torch

    from workbench.core import graduation, tuning

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tuning, "load_base_model", out_of_memory)
    monkeypatch.setattr(graduation, "load_base_model", out_of_memory)
    # `tune` asks for --method lora; a later --method wins
    args = ["--lr", "0.01"] if method == "lora" else ["--method", "soft", "--tokens", "2"]
    assert tune(yes_no, tiny_model_dir, *args) == 1
    [line] = [e for e in capsys.readouterr().err.splitlines() if e.startswith("error:")]
    assert line.startswith("error: out of memory (CUDA out of memory.")
    assert line.endswith(f"try a smaller batch size or {advice}")
    if method == "lora":
        assert "virtual tokens" not in line
    library = Library(yes_no.root)
    assert library.lora_adapters == {} and library.soft_prompts == {}
