"""`workbench lora list|import|export` through the CLI's main(), on a tiny random Llama:
a PEFT folder in, the same folder out, bad input refused in one line with nothing
changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.library import Library

pytestmark = pytest.mark.integration


@pytest.fixture
def peft_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(tmp_path / "peft"))
    return tmp_path / "peft"


def test_import_list_and_export_an_adapter(
    library_dir: Path,
    tiny_model_dir: Path,
    peft_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library = Library(library_dir)
    library.new_prompt("YN", user_template="{{ text }}")
    lib = ["--library", str(library_dir)]
    model = ["--model", str(tiny_model_dir)]
    assert main([*lib, "lora", "import", str(peft_folder), *model, "--prompt", "YN"]) == 0
    assert "imported LoRA adapter" in capsys.readouterr().out
    [adapter] = Library(library_dir).lora_adapters.values()
    assert adapter.name == "peft (PEFT LoRA adapter)" and adapter.lora.rank == 2

    assert main([*lib, "lora", "list"]) == 0
    listed = capsys.readouterr().out
    assert adapter.id in listed and "rank 2 on q_proj, v_proj" in listed and "'YN'" in listed
    assert main([*lib, "lora", "list", "--prompt", "YN"]) == 0
    assert adapter.id in capsys.readouterr().out

    out = tmp_path / "out"
    assert main([*lib, "lora", "export", adapter.id, "--out", str(out)]) == 0
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / name).read_bytes() == (peft_folder / name).read_bytes()
    assert main([*lib, "lora", "export", adapter.name, "--out", str(out)]) == 2
    assert "exists and is not an empty folder (--overwrite" in capsys.readouterr().err
    assert main([*lib, "lora", "export", adapter.name, "--out", str(out), "--overwrite"]) == 0

    # llama.cpp needs the GGUF model: the tiny folder is none
    assert main([*lib, "lora", "export", adapter.id, "--gguf", str(tmp_path / "a.gguf")]) == 2
    assert "no model 'tiny" in capsys.readouterr().err
    gguf_args = ["lora", "export", adapter.id, "--gguf", str(tmp_path / "a.gguf"), *model]
    assert main([*lib, *gguf_args]) == 2
    assert "is not a GGUF file" in capsys.readouterr().err
    assert main([*lib, "lora", "export", adapter.id]) == 2
    assert "give either --out DIR" in capsys.readouterr().err
    assert not (tmp_path / "a.gguf").exists()


def test_bad_folders_are_refused_with_nothing_added(
    library_dir: Path,
    tiny_model_dir: Path,
    peft_folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lib = ["--library", str(library_dir), "lora", "import"]
    model = ["--model", str(tiny_model_dir)]
    weights = peft_folder / "adapter_model.safetensors"
    weights.rename(peft_folder / "adapter_model.bin")
    assert main([*lib, str(peft_folder), *model]) == 2
    assert "pickle file" in capsys.readouterr().err
    assert main([*lib, str(peft_folder.parent / "missing"), *model]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main([*lib, str(peft_folder), *model, "--prompt", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert Library(library_dir).lora_adapters == {}
