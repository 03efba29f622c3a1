"""Soft prompts at inference on both local backends (the embedded SmolLM2-135M).

llama.cpp runs the Q4_1 GGUF (its matmuls quantise activations to 8 bits) while
transformers runs the same weights dequantised to fp32, so the two never agree
exactly: the tolerances below sit a little above the gap measured without a soft
prompt (top-20 log-probabilities of the first step differ by up to ~0.3 there).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.core.backends.base import ContextOverflowError, Finished, TokenEvent
from workbench.core.fsutil import file_sha256
from workbench.core.models import GenerationParams, Message, SoftPrompt
from workbench.core.softprompt import (
    SOFT_PROMPT_KEY,
    SoftPromptError,
    SoftPromptMismatchError,
    check_compatible,
    load_soft_prompt_tensor,
    model_hash_for_spec,
    save_soft_prompt_tensor,
    soft_prompt_bytes,
)

pytestmark = pytest.mark.integration

N_VIRTUAL = 8
HI = [Message(role="user", content="Hi!")]
STORY = [Message(role="user", content="Tell me a short story.")]
QUESTION = [Message(role="user", content="What is the capital of France? Answer in one sentence.")]
FIRST_STEP = GenerationParams(temperature=0.0, max_new_tokens=1, logprobs=True, top_logprobs=20)
GREEDY = GenerationParams(temperature=0.0, max_new_tokens=12)

# measured gap between the backends (see the module docstring), plus headroom
TOP20_MAX_TOL = 0.5
TOP20_MEAN_TOL = 0.2


def embedding_matrix(hf_backend) -> np.ndarray:
    return hf_backend.model.get_input_embeddings().weight.detach().float().cpu().numpy()


@pytest.fixture(scope="module")
def soft_prompt(hf_backend) -> np.ndarray:
    """N rows of the model's own token embeddings plus small noise: the scale of a real
    soft prompt (text-initialised, then trained)."""
    weights = embedding_matrix(hf_backend)
    rng = np.random.default_rng(1)
    rows = rng.choice(weights.shape[0], N_VIRTUAL, replace=False)
    noise = rng.normal(0.0, 0.01, (N_VIRTUAL, weights.shape[1]))
    return (weights[rows] + noise).astype(np.float32)


def first_step(backend, prompt, soft) -> tuple[int, dict[str, float]]:
    """The greedy first token and the top-20 next-token log-probabilities by text."""
    events = [
        e
        for e in backend.stream(prompt, FIRST_STEP, soft_prompt=soft)
        if isinstance(e, TokenEvent) and e.token_id is not None
    ]
    assert len(events) == 1 and events[0].top is not None
    texts = [text for text, _ in events[0].top]
    unique = {t for t in texts if texts.count(t) == 1 and "\ufffd" not in t}
    return events[0].token_id, {t: lp for t, lp in events[0].top if t in unique}


def gap(a: dict[str, float], b: dict[str, float]) -> tuple[float, float, int]:
    """(max, mean) absolute difference over the tokens both top-20 lists hold, and how many."""
    common = sorted(set(a) & set(b))
    diffs = [abs(a[t] - b[t]) for t in common]
    return max(diffs), sum(diffs) / len(diffs), len(common)


def greedy_ids(backend, prompt, soft, params=GREEDY) -> tuple[int, ...]:
    return backend.generate(prompt, params, soft_prompt=soft).token_ids


# -- tensors on disk ---------------------------------------------------------------


def test_tensor_save_load_round_trip(tmp_path, soft_prompt) -> None:
    path = tmp_path / "sp" / "tensor.safetensors"
    save_soft_prompt_tensor(soft_prompt, path)
    loaded = load_soft_prompt_tensor(path)
    assert loaded.dtype == np.float32 and loaded.shape == soft_prompt.shape
    assert np.array_equal(loaded, soft_prompt)
    assert path.read_bytes() == soft_prompt_bytes(soft_prompt)
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files left

    from safetensors.numpy import save

    other = tmp_path / "other.safetensors"
    other.write_bytes(save({"something_else": soft_prompt}))
    with pytest.raises(SoftPromptError, match=SOFT_PROMPT_KEY):
        load_soft_prompt_tensor(other)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a tensor")
    with pytest.raises(SoftPromptError, match="not a valid safetensors"):
        load_soft_prompt_tensor(garbage)
    with pytest.raises(SoftPromptError, match="2-D"):
        soft_prompt_bytes(soft_prompt[0])


# -- matching the base model -------------------------------------------------------


def test_model_hash_is_the_gguf_sha256_on_both_backends(llama_backend, hf_backend) -> None:
    expected = file_sha256(Path(str(llama_backend.spec.path)))
    assert llama_backend.model_hash == hf_backend.model_hash == expected
    assert llama_backend.hidden_size == hf_backend.hidden_size == 576


def test_hf_folder_hash_covers_config_and_weight_files(tiny_model_dir) -> None:
    from workbench.core.backends.registry import spec_for

    spec = spec_for(str(tiny_model_dir))
    first = model_hash_for_spec(spec)
    assert first == model_hash_for_spec(spec) and len(first) == 64
    config = tiny_model_dir / "config.json"
    original = config.read_text()
    try:
        config.write_text(original.replace("{", '{"note": 1, ', 1))
        assert model_hash_for_spec(spec) != first
    finally:
        config.write_text(original)


def test_mismatched_model_or_hidden_size_is_refused(llama_backend, hf_backend, soft_prompt) -> None:
    def meta(**changes) -> SoftPrompt:
        fields = {
            "name": "french",
            "base_model": "SmolLM2 135M",
            "base_model_hash": llama_backend.model_hash,
            "num_virtual_tokens": N_VIRTUAL,
            "hidden_size": 576,
            "tensor_file": "french.safetensors",
        }
        return SoftPrompt(**{**fields, **changes})

    for backend in (llama_backend, hf_backend):
        check_compatible(meta(), backend, soft_prompt)  # the right model: accepted
        wrong = meta(base_model="Qwen2.5 0.5B", base_model_hash="0" * 64)
        with pytest.raises(SoftPromptMismatchError) as caught:
            check_compatible(wrong, backend)
        assert "Qwen2.5 0.5B" in str(caught.value)
        assert backend.spec.name in str(caught.value)
        with pytest.raises(SoftPromptMismatchError, match="hidden size of 896"):
            check_compatible(meta(hidden_size=896), backend)
        with pytest.raises(SoftPromptMismatchError, match="should have 4 virtual tokens"):
            check_compatible(meta(num_virtual_tokens=4), backend, soft_prompt)
        narrow = np.zeros((N_VIRTUAL, 512), dtype=np.float32)
        with pytest.raises(SoftPromptMismatchError, match="512 wide"):
            backend.generate(HI, GREEDY, soft_prompt=narrow)
        with pytest.raises(SoftPromptMismatchError, match="512 wide"):
            backend.score_continuations(HI, ["Hello"], soft_prompt=narrow)


def test_virtual_tokens_count_towards_the_context(llama_backend, hf_backend) -> None:
    for backend in (llama_backend, hf_backend):
        prompt_tokens = backend.count_tokens(backend.apply_chat_template(HI))
        too_many = backend.context_length - prompt_tokens
        huge = np.zeros((too_many, backend.hidden_size), dtype=np.float32)
        with pytest.raises(ContextOverflowError, match="context of"):
            backend.generate(HI, GREEDY, soft_prompt=huge)
        # one virtual token fewer fits; stats count the virtual tokens as prompt tokens
        small = np.zeros((3, backend.hidden_size), dtype=np.float32)
        final = backend.generate(HI, GenerationParams(max_new_tokens=2), soft_prompt=small)
        assert final.stats.prompt_tokens == prompt_tokens + 3


# -- the soft prompt is really used, the same way on both backends ----------------------


def test_backends_agree_on_the_next_token_distribution(
    llama_backend, hf_backend, soft_prompt
) -> None:
    report = []
    for prompt in (HI, STORY, QUESTION):
        base_ll, base_rows_ll = first_step(llama_backend, prompt, None)
        base_hf, base_rows_hf = first_step(hf_backend, prompt, None)
        soft_ll, rows_ll = first_step(llama_backend, prompt, soft_prompt)
        soft_hf, rows_hf = first_step(hf_backend, prompt, soft_prompt)
        baseline = gap(base_rows_ll, base_rows_hf)
        soft = gap(rows_ll, rows_hf)
        effect = gap(base_rows_hf, rows_hf)  # what the soft prompt changes on one backend
        report.append((prompt[0].content, baseline, soft, effect))
        assert base_ll == base_hf and soft_ll == soft_hf
        assert soft[2] >= 15, "the two top-20 lists should mostly hold the same tokens"
        assert soft[0] < TOP20_MAX_TOL and soft[1] < TOP20_MEAN_TOL
        assert soft[0] < baseline[0] + 0.25  # no worse than the quantisation gap, roughly
    for content, baseline, soft, effect in report:
        print(
            f"{content[:24]!r}: top-20 |llama.cpp - transformers| max/mean "
            f"without soft prompt {baseline[0]:.3f}/{baseline[1]:.3f}, "
            f"with {soft[0]:.3f}/{soft[1]:.3f} ({soft[2]} shared tokens); "
            f"soft prompt effect on transformers max {effect[0]:.3f}"
        )
    # the soft prompt moves the distribution far more than the backends differ
    assert max(effect[0] for *_, effect in report) > 1.0


def test_soft_prompt_changes_greedy_output_the_same_way_on_both_backends(
    llama_backend, hf_backend, soft_prompt
) -> None:
    plain_ll = greedy_ids(llama_backend, HI, None)
    plain_hf = greedy_ids(hf_backend, HI, None)
    soft_ll = greedy_ids(llama_backend, HI, soft_prompt)
    soft_hf = greedy_ids(hf_backend, HI, soft_prompt)
    assert soft_ll[:4] != plain_ll[:4]
    assert soft_hf[:4] != plain_hf[:4]
    assert soft_ll[:4] == soft_hf[:4]
    # generation keeps using the prefix after the first token (the PEFT pitfall): the
    # continuation differs from greedy decoding of the same tokens without the prefix
    forced = hf_backend.tokenizer.decode(list(soft_hf[:2]))
    text = hf_backend.apply_chat_template(HI) + forced
    without_prefix = greedy_ids(hf_backend, text, None, GenerationParams(max_new_tokens=3))
    assert without_prefix != soft_hf[2:5]


def test_text_embeddings_as_soft_prompt_act_like_the_text(llama_backend, hf_backend) -> None:
    """Virtual tokens equal to the embeddings of "You answer in French." before the
    chat-templated prompt behave like that text placed there (same positions)."""
    prefix = "You answer in French."
    weights = embedding_matrix(hf_backend)
    ids = hf_backend.tokenize(prefix)
    soft = weights[ids]
    params = GenerationParams(temperature=0.0, max_new_tokens=12, logprobs=True, top_logprobs=20)
    for backend in (hf_backend, llama_backend):
        text = backend.apply_chat_template(STORY)
        assert backend.tokenize(prefix + text) == ids + backend.tokenize(text)
        with_text = [e for e in backend.stream(prefix + text, params) if isinstance(e, TokenEvent)]
        with_soft = [
            e for e in backend.stream(text, params, soft_prompt=soft) if isinstance(e, TokenEvent)
        ]
        plain = backend.generate(text, params)
        assert [e.token_id for e in with_soft] == [e.token_id for e in with_text]
        assert "".join(e.text for e in with_soft) != plain.text
        for a, b in zip(with_text, with_soft, strict=True):
            if a.top is not None:
                assert gap(dict(a.top), dict(b.top))[0] < 1e-3


def test_scores_after_a_soft_prompt_agree_across_backends(
    llama_backend, hf_backend, soft_prompt
) -> None:
    labels = ["Hello", "Hi there", "Goodbye"]
    soft_ll = llama_backend.score_continuations(HI, labels, soft_prompt=soft_prompt)
    soft_hf = hf_backend.score_continuations(HI, labels, soft_prompt=soft_prompt)
    plain_hf = hf_backend.score_continuations(HI, labels)
    assert soft_ll == pytest.approx(soft_hf, abs=0.3)
    assert max(abs(a - b) for a, b in zip(soft_hf, plain_hf, strict=True)) > 0.3
    # transformers: scoring agrees with the log-probabilities of generation
    first = hf_backend.tokenizer("Hello", add_special_tokens=False)["input_ids"]
    assert len(first) == 1
    _, rows = first_step(hf_backend, HI, soft_prompt)
    assert soft_hf[0] == pytest.approx(rows["Hello"], abs=1e-3)


def test_empty_prompt_after_a_soft_prompt(llama_backend, hf_backend, soft_prompt) -> None:
    """With nothing after the virtual tokens the first token comes from their last one."""
    params = GenerationParams(temperature=0.0, max_new_tokens=3)
    ll = llama_backend.generate("", params, soft_prompt=soft_prompt)
    hf = hf_backend.generate("", params, soft_prompt=soft_prompt)
    assert ll.token_ids and hf.token_ids
    assert ll.token_ids[0] == hf.token_ids[0]
    assert ll.stats.prompt_tokens == hf.stats.prompt_tokens == N_VIRTUAL


@pytest.mark.parametrize("which", ["llama_backend", "hf_backend"])
def test_seeds_stops_logprobs_and_cancel_work_with_a_soft_prompt(
    which, request, soft_prompt
) -> None:
    backend = request.getfixturevalue(which)
    sampled = GenerationParams(temperature=1.0, top_p=0.95, top_k=50, max_new_tokens=16, seed=7)
    first = backend.generate(STORY, sampled, soft_prompt=soft_prompt).text
    assert backend.generate(STORY, sampled, soft_prompt=soft_prompt).text == first

    full = backend.generate(STORY, GREEDY, soft_prompt=soft_prompt).text
    stop = full.split()[2]
    cut = backend.generate(
        STORY, GREEDY.model_copy(update={"stop": [stop]}), soft_prompt=soft_prompt
    )
    assert cut.stats.finish_reason == "stop" and cut.text == full[: full.index(stop)]

    params = GenerationParams(temperature=0.0, max_new_tokens=200, logprobs=True)
    cancel = threading.Event()
    final = None
    for seen, event in enumerate(backend.stream(STORY, params, cancel, soft_prompt), start=1):
        if isinstance(event, Finished):
            final = event
            break
        assert event.logprob is None or event.logprob <= 0.0
        if seen == 3:
            cancel.set()
    assert final is not None and final.stats.finish_reason == "cancelled"
    assert len(final.token_ids) <= 5


def test_llama_state_is_clean_after_soft_prompts(llama_backend, soft_prompt) -> None:
    before = llama_backend.generate(QUESTION, GREEDY)
    scores_before = llama_backend.score_continuations(HI, ["Hello", "Goodbye"])
    llama_backend.generate(HI, GREEDY, soft_prompt=soft_prompt)
    for event in llama_backend.stream(HI, GREEDY, soft_prompt=soft_prompt):
        if isinstance(event, TokenEvent):
            break  # an abandoned stream
    llama_backend.score_continuations(HI, ["Hello", "Goodbye"], soft_prompt=soft_prompt)
    after = llama_backend.generate(QUESTION, GREEDY)
    assert after.token_ids == before.token_ids and after.text == before.text
    scores_after = llama_backend.score_continuations(HI, ["Hello", "Goodbye"])
    assert scores_after == pytest.approx(scores_before, abs=1e-3)


# -- placements ---------------------------------------------------------------------

INSTRUCTED = [
    Message(role="system", content="You are a pirate. Answer like one."),
    Message(role="user", content="Where is the treasure?"),
]


@pytest.mark.parametrize("placement", ["replace", "add"])
def test_both_backends_agree_with_the_soft_prompt_in_either_place(
    llama_backend, hf_backend, soft_prompt, placement
) -> None:
    from workbench.core.placement import VirtualTokens

    placed = VirtualTokens(soft_prompt, placement)
    token_ll, rows_ll = first_step(llama_backend, INSTRUCTED, placed)
    token_hf, rows_hf = first_step(hf_backend, INSTRUCTED, placed)
    assert token_ll == token_hf
    soft = gap(rows_ll, rows_hf)
    assert soft[2] >= 15 and soft[0] < TOP20_MAX_TOL and soft[1] < TOP20_MEAN_TOL
    # each placement is its own layout: not the soft prompt before everything
    _, rows_start = first_step(hf_backend, INSTRUCTED, soft_prompt)
    assert gap(rows_hf, rows_start)[0] > 0.1
    labels = ["Arr", "Yes", "The"]
    scores_ll = llama_backend.score_continuations(INSTRUCTED, labels, soft_prompt=placed)
    scores_hf = hf_backend.score_continuations(INSTRUCTED, labels, soft_prompt=placed)
    assert scores_ll == pytest.approx(scores_hf, abs=0.3)


def test_replace_drops_the_instruction_and_add_keeps_it(llama_backend, hf_backend) -> None:
    """Virtual tokens equal to the system message's own token embeddings, placed 'add'
    with an empty system message, act like the system message itself; 'replace' sends
    neither the system message nor a default one the template might insert."""
    from workbench.core.placement import VirtualTokens, split_text

    system = INSTRUCTED[0].content
    user_only = [INSTRUCTED[1]]
    for backend in (hf_backend, llama_backend):
        head, tail = split_text(INSTRUCTED, "replace", backend.apply_chat_template)
        assert system not in head + tail and "helpful" not in head + tail
        head_add, tail_add = split_text(INSTRUCTED, "add", backend.apply_chat_template)
        assert head_add.endswith(system) and tail_add == tail
        n = 4
        zeros = np.zeros((n, backend.hidden_size), dtype=np.float32)
        plain = backend.context_tokens(INSTRUCTED)
        assert backend.context_tokens(INSTRUCTED, VirtualTokens(zeros, "add")) == plain + n
        replaced = backend.context_tokens(INSTRUCTED, VirtualTokens(zeros, "replace"))
        assert replaced < plain  # the instruction's tokens are not sent
    weights = embedding_matrix(hf_backend)
    ids = hf_backend.tokenize_tail(system)
    as_text = VirtualTokens(weights[ids], "add")
    empty_system = [Message(role="system", content=""), *user_only]
    _, with_soft = first_step(hf_backend, empty_system, as_text)
    _, with_text = first_step(hf_backend, INSTRUCTED, None)
    assert gap(with_soft, with_text)[0] < 1e-3


def test_a_soft_prompt_records_its_placement_and_old_ones_load_as_start(tmp_path) -> None:
    from workbench.core.library import Library
    from workbench.core.models import load_document

    old = {
        "schema_version": 2,
        "kind": "soft_prompt",
        "name": "made before placements",
        "base_model": "embedded",
        "base_model_hash": "x",
        "num_virtual_tokens": 4,
        "tensor_file": "a.safetensors",
    }
    assert load_document(old, "old").placement == "start"
    library = Library(tmp_path)
    soft = SoftPrompt(
        name="new",
        base_model="embedded",
        base_model_hash="x",
        num_virtual_tokens=4,
        tensor_file="b.safetensors",
        placement="replace",
    )
    library.save_soft_prompt(soft, soft_prompt_bytes(np.zeros((4, 8), dtype=np.float32)))
    assert Library(tmp_path).soft_prompts[soft.id].placement == "replace"
