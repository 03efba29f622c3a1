"""The prefix key/value cache changes nothing but the cost: a training step over a cached
head gives the loss and gradients of the step over the whole rows, and shared-prefix
label scoring gives the scores of a full forward pass per case (tiny random model)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from workbench.core.prefix_cache import (  # noqa: E402
    PrefixCache,
    common_length,
    embed_items,
    score_continuations,
    virtual_items,
)
from workbench.core.tuning import _make_module  # noqa: E402
from workbench.core.tuning_data import batch_schedule  # noqa: E402

VOCAB, HIDDEN, N = 64, 16, 3


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    base = transformers.LlamaForCausalLM(config).eval()
    base.requires_grad_(False)
    return base


def full_logprob(model, items, continuation, virtual):
    """The reference: one forward pass over the whole sequence, no cache."""
    sequence = [*items, *continuation[:-1]]
    embeds = embed_items(model, sequence, virtual).unsqueeze(0)
    with torch.no_grad():
        logits = model(inputs_embeds=embeds).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[len(items) - 1 + k, t]) for k, t in enumerate(continuation))


def test_shared_prefix_scoring_equals_a_full_pass_per_case(model) -> None:
    virtual = torch.randn(N, HIDDEN)
    head = [5, 6, 7]
    cases = [
        [*head, *virtual_items(N), 8, 9, 10, 11],
        [*head, *virtual_items(N), 8, 9, 12],
        [*head, *virtual_items(N), 8, 13, 14, 15, 16],
    ]
    labels = [[1], [2, 3], [4, 5, 6]]
    assert common_length(cases) == len(head) + N + 1
    got = list(score_continuations(model, cases, [labels] * len(cases), virtual))
    for case, scores in zip(cases, got, strict=True):
        for label, score in zip(labels, scores, strict=True):
            assert score == pytest.approx(full_logprob(model, case, label, virtual), abs=1e-5)


def test_scoring_without_a_soft_prompt_and_a_single_case(model) -> None:
    case = [3, 4, 5, 6]
    (scores,) = score_continuations(model, [case], [[[7], [8, 9]]])
    assert scores[0] == pytest.approx(full_logprob(model, case, [7], None), abs=1e-5)
    assert scores[1] == pytest.approx(full_logprob(model, case, [8, 9], None), abs=1e-5)


def _step(module, ids, mask, virtual_at, targets):
    """One loss and the gradient of the prompt for rows predicting `targets` at their
    last positions."""
    rows = torch.arange(ids.shape[0])
    positions = mask.sum(dim=1) - 1
    module.prompt.grad = None
    loss = module(ids, mask, virtual_at, rows, positions, targets)
    loss.backward()
    return float(loss.detach()), module.prompt.grad.clone()


def test_a_cached_head_gives_the_same_loss_and_gradients(model) -> None:
    torch.manual_seed(1)
    init = torch.randn(N, HIDDEN)
    head = [5, 6, 7, 8]
    tails = [[9, 10, 11, 12], [13, 14]]
    targets = torch.tensor([20, 21])
    pad = 0

    def rows(with_head: bool):
        built = [[*(head if with_head else []), *([pad] * N), *tail] for tail in tails]
        width = max(len(r) for r in built)
        ids = torch.full((len(built), width), pad)
        mask = torch.zeros((len(built), width), dtype=torch.long)
        for i, row in enumerate(built):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        at = torch.full((len(built),), len(head) if with_head else 0)
        return ids, mask, at

    uncached = _make_module(model, init)
    loss_a, grad_a = _step(uncached, *rows(with_head=True), targets)
    cached = _make_module(model, init, PrefixCache(model, head))
    loss_b, grad_b = _step(cached, *rows(with_head=False), targets)
    assert loss_b == pytest.approx(loss_a, abs=1e-5)
    assert torch.allclose(grad_a, grad_b, atol=1e-5)
    assert float(grad_a.abs().sum()) > 0  # the gradient reaches the virtual tokens


def test_batches_are_bucketed_by_length_and_fixed_by_the_seed() -> None:
    lengths = [10, 200, 12, 190, 11, 210, 13, 205] * 4
    schedule = batch_schedule(lengths, per_step=4, steps=16, seed=3)
    assert len(schedule) == 16 and all(len(b) == 4 for b in schedule)
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in schedule]
    assert sum(spread) / len(spread) < 50  # random batches would mix 10s and 200s
    assert batch_schedule(lengths, 4, 16, seed=3) == schedule
    assert batch_schedule(lengths, 4, 16, seed=3, first=5) == schedule[5:]
    seen = sorted(i for b in schedule[:8] for i in b)
    assert seen == list(range(32))  # an epoch shows every row once


def test_batches_and_a_teacher_forced_continuation_give_the_same_scores(model) -> None:
    virtual = torch.randn(N, HIDDEN)
    cases = [
        [4, *virtual_items(N), 8, 9, 10, 11],
        [4, *virtual_items(N), 8, 12],
        [4, *virtual_items(N), 13, 14, 15, 16, 17],
        [4, *virtual_items(N), 8, 9],
    ]
    targets = [[1, 2], [2, 3, 4], [5], [1, 2]]
    options = [[[1], [2, 3], [6, 7], target] for target in targets]
    one_by_one = list(score_continuations(model, cases, options, virtual, batch_size=1))
    batched = list(score_continuations(model, cases, options, virtual, batch_size=3))
    forced = list(
        score_continuations(model, cases, options, virtual, teacher=targets, batch_size=8)
    )
    for a, b, c, case, opts in zip(one_by_one, batched, forced, cases, options, strict=True):
        assert b == pytest.approx(a, abs=1e-5) and c == pytest.approx(a, abs=1e-5)
        for score, option in zip(a, opts, strict=True):
            assert score == pytest.approx(full_logprob(model, case, option, virtual), abs=1e-5)
