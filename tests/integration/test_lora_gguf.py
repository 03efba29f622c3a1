"""LoRA adapters on llama.cpp: a PEFT folder written as a GGUF LoRA adapter
(`workbench.core.lora_gguf`), set on the loaded llama.cpp model, and the two backends
agreeing with it applied.

The mechanics run on a tiny random Llama and a GGUF "model" holding only the metadata
and tensor shapes the converter reads. The agreement runs on the embedded SmolLM2-135M:
llama.cpp runs its Q4_1 GGUF (the matmuls quantise activations to 8 bits) while
transformers runs the same weights dequantised to fp32, so the two differ by a
quantisation gap even without an adapter. That gap is measured in the test, on the same
prompts and tokens, and is the tolerance: with the adapter applied, the backends must
agree as closely as they do without it, while the adapter moves the log-probabilities
by several times that gap, the same way on both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.core.lora_io import LoraAdapterError, LoraAdapterMismatchError
from workbench.core.models import LoraSettings, Message, ModelSpec, TestRow, TestSet, TrainConfig

pytestmark = pytest.mark.integration

ALL_LAYERS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# -- mechanics on a tiny model --------------------------------------------------------


def fake_base_gguf(path: Path, config, arch: str = "llama") -> Path:
    """A GGUF with the tiny model's architecture metadata and weight shapes (zeros):
    what the converter reads from a base model."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = hidden // config.num_attention_heads * config.num_key_value_heads
    shapes = {  # numpy order [out, in]
        "attn_q": (hidden, hidden),
        "attn_k": (kv, hidden),
        "attn_v": (kv, hidden),
        "attn_output": (hidden, hidden),
        "ffn_gate": (inter, hidden),
        "ffn_up": (inter, hidden),
        "ffn_down": (hidden, inter),
    }
    writer.add_tensor("token_embd.weight", np.zeros((config.vocab_size, hidden), np.float32))
    for block in range(config.num_hidden_layers):
        for name, shape in shapes.items():
            writer.add_tensor(f"blk.{block}.{name}.weight", np.zeros(shape, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_adapter(tiny_model_dir: Path, tmp_path: Path):
    """A PEFT adapter on every linear layer of the tiny Llama with random lora_B (PEFT
    starts it at zero), and the fake base GGUF."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=ALL_LAYERS, task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    peft_model.save_pretrained(str(tmp_path / "peft"))
    base = fake_base_gguf(tmp_path / "tiny.gguf", model.config)
    return tmp_path / "peft", base, model.config


def read_gguf(path: Path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = {key: field.contents() for key, field in reader.fields.items()}
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    return fields, tensors


def test_the_gguf_adapter_has_llama_cpp_s_names_metadata_and_row_order(tiny_adapter) -> None:
    from safetensors.torch import load_file
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from workbench.core.lora_gguf import SOURCE_KEY, convert_adapter, source_tag

    folder, base, config = tiny_adapter
    out = convert_adapter(folder, base, folder.parent / "adapter.gguf")
    fields, tensors = read_gguf(out)
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(8.0)
    assert fields[SOURCE_KEY] == source_tag(folder)
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
    names |= {"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    expected = {
        f"blk.{block}.{gguf_name}.weight.lora_{part}"
        for block in range(config.num_hidden_layers)
        for gguf_name in names.values()
        for part in "ab"
    }
    assert set(tensors) == expected

    peft = {k: v.numpy() for k, v in load_file(str(folder / "adapter_model.safetensors")).items()}
    # transformers un-permutes a llama GGUF's q/k rows when it reads one: undoing that on
    # lora_b must give PEFT's lora_B back; every other tensor is PEFT's as it is
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    processor = LlamaTensorProcessor(config={})
    for block in range(config.num_hidden_layers):
        for hf_name, gguf_name in names.items():
            part = "self_attn" if hf_name.endswith("_proj") and hf_name[0] in "qkvo" else "mlp"
            key = f"base_model.model.model.layers.{block}.{part}.{hf_name}"
            a = tensors[f"blk.{block}.{gguf_name}.weight.lora_a"]
            b = tensors[f"blk.{block}.{gguf_name}.weight.lora_b"]
            np.testing.assert_array_equal(a, peft[f"{key}.lora_A.weight"])
            if hf_name in ("q_proj", "k_proj"):
                assert not np.array_equal(b, peft[f"{key}.lora_B.weight"])
                n = heads if hf_name == "q_proj" else kv_heads
                b = processor._reverse_permute_weights(b, n, n)
            np.testing.assert_array_equal(b, peft[f"{key}.lora_B.weight"])


def test_peft_scalings_llama_cpp_lacks_are_folded_into_lora_b(tiny_adapter) -> None:
    import json

    from workbench.core.lora_gguf import convert_adapter

    folder, base, _config = tiny_adapter
    plain = read_gguf(convert_adapter(folder, base, folder.parent / "plain.gguf"))[1]
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config.update(use_rslora=True, alpha_pattern={"down_proj": 2})
    config_file.write_text(json.dumps(config))
    scaled = read_gguf(convert_adapter(folder, base, folder.parent / "scaled.gguf"))[1]
    # llama.cpp multiplies by alpha / r = 8 / 4; rsLoRA means 8 / sqrt(4), and down_proj's
    # own alpha 2 / sqrt(4)
    v, down = "blk.1.attn_v.weight.lora_b", "blk.1.ffn_down.weight.lora_b"
    np.testing.assert_allclose(scaled[v], plain[v] * 2.0, rtol=1e-6)
    np.testing.assert_allclose(scaled[down], plain[down] * 0.5, rtol=1e-6)
    a = "blk.1.attn_v.weight.lora_a"
    np.testing.assert_array_equal(scaled[a], plain[a])


def test_an_adapter_for_another_model_is_refused_and_nothing_written(
    tiny_adapter, tmp_path: Path
) -> None:
    from transformers import LlamaConfig

    from workbench.core.lora_gguf import convert_adapter

    folder, _base, config = tiny_adapter
    wider = LlamaConfig(**{**config.to_dict(), "intermediate_size": 96})
    other = fake_base_gguf(tmp_path / "other.gguf", wider)
    out = tmp_path / "out.gguf"
    with pytest.raises(
        LoraAdapterMismatchError,
        match=r"down_proj' maps 64 → 32 .* maps 96 → 32: it was made for another",
    ):
        convert_adapter(folder, other, out)
    fewer = LlamaConfig(**{**config.to_dict(), "num_hidden_layers": 1})
    with pytest.raises(LoraAdapterMismatchError, match=r"layers\.1\..*has no tensor for"):
        convert_adapter(folder, fake_base_gguf(tmp_path / "fewer.gguf", fewer), out)
    with pytest.raises(LoraAdapterError, match="'gpt2' models cannot be converted"):
        convert_adapter(folder, fake_base_gguf(tmp_path / "g.gguf", config, "gpt2"), out)
    (tmp_path / "junk.gguf").write_bytes(b"GGUF not really")
    with pytest.raises(LoraAdapterError, match="not a readable GGUF model"):
        convert_adapter(folder, tmp_path / "junk.gguf", out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_conversion_is_kept_beside_the_adapter_and_redone_when_it_changes(
    tiny_adapter, tiny_model_dir: Path, library
) -> None:
    from workbench.core.lora_gguf import GGUF_FILE, gguf_adapter
    from workbench.core.lora_io import import_lora_adapter

    folder, base, _config = tiny_adapter
    from safetensors.torch import load_file, save_file

    # imported as made for the tiny folder (the fake GGUF has nothing transformers reads)
    spec = ModelSpec(id="tiny", name="tiny", source="hf", path=str(tiny_model_dir))
    adapter = import_lora_adapter(library, folder, spec, name="tiny")
    first = gguf_adapter(library, adapter, base)
    assert first == library.lora_adapter_path(adapter) / GGUF_FILE
    before = read_gguf(first)[1]
    stamp = first.stat().st_mtime_ns
    assert gguf_adapter(library, adapter, base).stat().st_mtime_ns == stamp  # kept
    weights = library.lora_adapter_path(adapter) / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    key = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"
    tensors[key] = tensors[key] * 3
    save_file(tensors, str(weights), metadata={"format": "pt"})
    changed = read_gguf(gguf_adapter(library, adapter, base))[1]
    name = "blk.0.attn_v.weight.lora_b"
    np.testing.assert_allclose(changed[name], before[name] * 3, rtol=1e-6)


# -- the embedded model: both backends agree with the adapter applied ----------------------

QUESTIONS = ["Is a chair a fruit?", "Is a banana a fruit?", "Name a colour."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, embedded_spec):
    """A LoRA on every linear layer of the embedded model, a few steps at a high learning
    rate: its effect on the next token is large (always answering "no")."""
    from workbench.core.library import Library
    from workbench.core.lora import LoraAdapterSaved, graduate_lora

    library = Library(tmp_path_factory.mktemp("lora-gguf-library"))
    prompt = library.new_prompt("Fruit", system="Answer yes or no.", user_template="{{ q }}")
    rows = [
        TestRow(vars={"q": f"Is {w} a fruit?"}, expected="no", split="train")
        for w in ("a stone", "a car")
    ]
    test_set = TestSet(name="fruit", prompt_id=prompt.id, rows=rows)
    library.save_test_set(test_set)
    config = TrainConfig(steps=4, batch_size=2, learning_rate=1e-2, device="cpu", eval_every=4)
    settings = LoraSettings(rank=8, alpha=16, target_modules=ALL_LAYERS)
    events = list(graduate_lora(library, prompt, test_set, embedded_spec, config, settings))
    saved = [e for e in events if isinstance(e, LoraAdapterSaved)]
    assert len(saved) == 1
    return library, saved[0].adapter


def candidates(hf_backend, messages) -> list[str]:
    """Tokens to compare: transformers' top-10 next tokens (with and without the adapter),
    less the chat template's special tokens, which the two backends' scorers read
    differently as label text (llama.cpp spells "<|im_end|>" out, transformers does not)."""
    from workbench.core.backends.base import TokenEvent
    from workbench.core.models import GenerationParams

    params = GenerationParams(max_new_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10)
    events = [e for e in hf_backend.stream(messages, params) if isinstance(e, TokenEvent)]
    return [t for t, _ in events[0].top or () if not (t.startswith("<|") and t.endswith("|>"))]


@pytest.mark.slow
def test_transformers_and_llama_cpp_agree_with_the_lora_applied(
    trained, llama_backend, hf_backend
) -> None:
    from workbench.core.lora_io import apply_adapter

    library, adapter = trained
    prompts = [
        [Message(role="system", content="Answer yes or no."), Message(role="user", content=q)]
        for q in QUESTIONS
    ]
    words = [candidates(hf_backend, p) for p in prompts]
    applied = apply_adapter(library, adapter, hf_backend)
    try:
        for prompt, found in zip(prompts, words, strict=True):
            found += [w for w in candidates(hf_backend, prompt) if w not in found]
    finally:
        applied.remove()

    def scores(backend) -> np.ndarray:
        """Each prompt's candidates' log-probabilities, all prompts in one row."""
        pairs = zip(prompts, words, strict=True)
        return np.concatenate([backend.score_continuations(p, w) for p, w in pairs])

    base_hf, base_ll = scores(hf_backend), scores(llama_backend)
    both = [apply_adapter(library, adapter, b) for b in (hf_backend, llama_backend)]
    try:
        lora_hf, lora_ll = scores(hf_backend), scores(llama_backend)
    finally:
        for one in both:
            one.remove()
    # the adapter is taken out again on both backends
    assert np.abs(scores(hf_backend) - base_hf).max() < 1e-3
    assert np.abs(scores(llama_backend) - base_ll).max() < 1e-3

    gap = np.abs(base_hf - base_ll).max()  # the quantisation gap, without an adapter
    shift_hf, shift_ll = lora_hf - base_hf, lora_ll - base_ll
    print(
        f"max |llama.cpp - transformers|: {gap:.3f} without the adapter, "
        f"{np.abs(lora_hf - lora_ll).max():.3f} with it; the adapter moves transformers by "
        f"up to {np.abs(shift_hf).max():.3f}, llama.cpp by {np.abs(shift_ll).max():.3f}"
    )
    assert np.abs(shift_hf).max() > 4 * gap  # the adapter's effect is clearly visible
    assert np.abs(lora_hf - lora_ll).max() < 1.5 * gap + 0.05  # agree as closely as without
    assert np.abs(lora_hf - base_ll).max() > 3 * gap  # llama.cpp without it is far off
    moved = np.abs(shift_hf) > 2 * gap
    assert moved.sum() >= 5 and (np.sign(shift_hf[moved]) == np.sign(shift_ll[moved])).all()
    # the conversion is cached beside the adapter
    from workbench.core.lora_gguf import GGUF_FILE

    assert (library.lora_adapter_path(adapter) / GGUF_FILE).is_file()


@pytest.mark.slow
def test_generate_runs_with_the_adapter_on_llama_cpp(
    trained, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from workbench.cli import main

    library, adapter = trained
    args = ["--library", str(library.root), "generate", "Fruit", "--var", "q=Is a pear a fruit?"]
    args += ["--backend", "llama.cpp", "--max-tokens", "1", "--temperature", "0"]
    args += ["--logprobs", "1", "--threads", "2", "--json"]

    def first_token(*extra: str) -> dict:
        assert main([*args, *extra]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
        return next(e for e in lines if e["event"] == "token")

    plain = first_token("--no-save")
    adapted = first_token("--adapter", adapter.name)
    assert adapted["text"].strip().lower() == "no"  # what the adapter was trained to say
    assert adapted["logprob"] > plain["logprob"] or adapted["text"] != plain["text"]
    [run] = [r for r in library.runs_for(library.find_prompt("Fruit").id)]
    assert run.adapter_id == adapter.id


@pytest.mark.slow
def test_lora_export_gguf_writes_what_llama_s_lora_path_loads(
    trained, embedded_spec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import llama_cpp

    from workbench.cli import main

    library, adapter = trained
    out = tmp_path / "adapter.gguf"
    args = ["--library", str(library.root), "lora", "export", adapter.name, "--gguf", str(out)]
    assert main(args) == 0
    assert f"to {out}" in capsys.readouterr().out
    assert main(args) == 2  # not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err

    def next_token_logits(**extra) -> np.ndarray:
        llm = llama_cpp.Llama(
            model_path=str(embedded_spec.path), n_ctx=128, n_threads=2, verbose=False, **extra
        )
        try:
            llm.eval(llm.tokenize(b"Is a pear a fruit? Answer:", add_bos=False))
            pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()
        finally:
            llm.close()

    plain, adapted = next_token_logits(), next_token_logits(lora_path=str(out))
    assert np.abs(adapted - plain).max() > 1.0  # llama.cpp applies it
