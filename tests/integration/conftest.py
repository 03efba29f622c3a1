"""Fixtures with real models: the embedded SmolLM2 on both local backends, a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.backends.base import BackendSettings


@pytest.fixture(scope="session")
def embedded_spec():
    from workbench.core.backends.registry import embedded_model_path, embedded_spec

    embedded_model_path()  # fails loudly if the embedded model is not installed
    return embedded_spec()


@pytest.fixture(scope="session")
def llama_backend(embedded_spec):
    from workbench.core.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(embedded_spec, BackendSettings(n_ctx=2048))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf_backend(embedded_spec):
    from workbench.core.backends.hf import TransformersBackend

    backend = TransformersBackend(embedded_spec, BackendSettings(device="cpu"))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, hf_backend) -> Path:
    """A random-weight 2-layer Llama with SmolLM2's tokenizer, saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = hf_backend.tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
