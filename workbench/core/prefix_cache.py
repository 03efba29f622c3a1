"""Reusing the key/value cache of what many sequences share, on a transformers model.

Two users, one mechanism:
- **label scoring** (held-out comparison, the Evaluate panel, validation while
  training): the cases of a variant share the system message, the few-shot turns and
  the virtual tokens; `score_continuations` runs that shared prefix once and then each
  case's own tokens and its labels;
- **training**: the text before the virtual tokens (`placement`'s head) is the same for
  every example, so `PrefixCache` computes it once without gradients and every step
  runs only the virtual tokens, the example and its target over it.

A sequence here is a list of *items*: a token id (≥ 0) or a virtual token (`-1 - k` for
row k of the soft prompt), so sequences with the same soft prompt at the same place
compare equal item by item. torch is imported lazily.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

Items = list[int]


def virtual_items(count: int) -> Items:
    """The items standing for a soft prompt's `count` virtual tokens."""
    return [-1 - k for k in range(count)]


def cache_keyword(module: Any) -> str:
    """The forward() keyword of the key/value cache (transformers 5.24 renamed
    `past_key_values` to `cache`)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def embed_items(model: Any, items: Sequence[int], virtual: Any) -> Any:
    """[len, d] input embeddings of items: token embeddings, virtual rows from `virtual`
    ([N, d], any dtype; gradients flow through it when it requires them)."""
    import torch

    embed = model.get_input_embeddings()
    device = embed.weight.device
    ids = torch.tensor([max(i, 0) for i in items], dtype=torch.long, device=device)
    out = embed(ids)
    slots = [p for p, i in enumerate(items) if i < 0]
    if slots:
        rows = torch.tensor([-1 - items[p] for p in slots], device=device)
        where = torch.tensor(slots, device=device)
        out = out.index_put((where,), virtual.to(device=device, dtype=out.dtype)[rows])
    return out


class PrefixCache:
    """The per-layer keys and values of one prefix, computed once (no gradients), from
    which each forward pass gets a fresh cache expanded to its batch."""

    def __init__(self, model: Any, items: Sequence[int], virtual: Any = None) -> None:
        import torch
        from transformers import DynamicCache

        self.model = model
        self.decoder = model.get_decoder()
        self.keyword = cache_keyword(self.decoder)
        self.length = len(items)
        self._layers: list[tuple[Any, Any]] = []
        if not items:
            return
        with torch.no_grad():
            cache = DynamicCache(config=model.config)
            embeds = embed_items(model, items, virtual).unsqueeze(0)
            self.decoder(inputs_embeds=embeds, use_cache=True, **{self.keyword: cache})
        self._layers = _layers_of(cache)

    def fresh(self, batch: int) -> Any:
        """A new cache holding the prefix for `batch` rows (views: nothing is copied
        until a forward pass appends to it)."""
        return expanded_cache(self.model, self._layers, batch)

    def run(self, embeds: Any, attention_mask: Any) -> tuple[Any, Any]:
        """The decoder over `embeds` [B, T, d] after the prefix; `attention_mask` [B, T]
        covers the new positions only. Returns (last hidden states [B, T, d], cache)."""
        import torch

        batch = embeds.shape[0]
        cache = self.fresh(batch)
        if self.length:
            ones = attention_mask.new_ones((batch, self.length))
            attention_mask = torch.cat([ones, attention_mask], dim=1)
        out = self.decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            use_cache=True,
            **{self.keyword: cache},
        )
        return out.last_hidden_state, cache


def expanded_cache(model: Any, layers: Sequence[tuple[Any, Any]], batch: int) -> Any:
    """A new cache holding these keys and values (one row each) for `batch` rows: views,
    nothing is copied until a forward pass appends to it. No layers: an empty cache."""
    from transformers import DynamicCache

    if not layers:
        return DynamicCache(config=model.config)
    data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in layers]
    return DynamicCache(ddp_cache_data=data, config=model.config)


def _layers_of(cache: Any) -> list[tuple[Any, Any]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))  # transformers 4.x


def common_length(sequences: Sequence[Sequence[int]]) -> int:
    """Items every sequence starts with, keeping at least one item of each sequence its
    own (its last one's logits predict the continuations)."""
    if not sequences:
        return 0
    shortest = min(len(s) for s in sequences)
    first = sequences[0]
    length = 0
    while length < shortest - 1 and all(s[length] == first[length] for s in sequences):
        length += 1
    return length


def score_continuations(
    model: Any,
    cases: Sequence[Items],
    continuations: Sequence[Sequence[Sequence[int]]],
    virtual: Any = None,
    *,
    teacher: Sequence[Sequence[int]] | None = None,
    batch_size: int = 8,
) -> Iterator[list[float]]:
    """For each case (a sequence of items), the summed log-probability of each
    continuation (token ids) right after it. The prefix all cases share runs once; then
    `batch_size` cases at a time run their own items in one pass (right-padded), and a
    case's multi-token continuations run in one more batch over its cache.

    `continuations[i]` are case i's continuations. `teacher[i]` (optional) is a
    continuation run inside case i's own pass: every continuation that is a prefix of
    it is scored from that pass (validation teacher-forces each row's target so its
    loss costs no second pass). Yields one list of scores per case, in order, so a
    caller can stop between batches."""
    import torch

    if not cases:
        return
    shared = PrefixCache(model, cases[0][: common_length(cases)], virtual)
    head = model.get_output_embeddings()
    start = shared.length
    with torch.no_grad():
        for first in range(0, len(cases), max(1, batch_size)):
            chunk = range(first, min(len(cases), first + max(1, batch_size)))
            forced = [list(teacher[i]) if teacher is not None else [] for i in chunk]
            rows = [
                embed_items(model, [*cases[i][start:], *ext[:-1]], virtual)
                for i, ext in zip(chunk, forced, strict=True)
            ]
            lengths = [row.shape[0] for row in rows]
            embeds = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
            mask = torch.zeros(embeds.shape[:2], dtype=torch.long, device=embeds.device)
            for b, length in enumerate(lengths):
                mask[b, :length] = 1
            hidden, cache = shared.run(embeds, mask)
            layers = _layers_of(cache)
            for b, i in enumerate(chunk):
                ext = forced[b]
                own = len(cases[i]) - start  # the case's own items, without `ext`
                positions = [own - 1 + k for k in range(max(len(ext), 1))]
                logprobs = torch.log_softmax(head(hidden[b, positions]).float(), dim=-1)
                scores: list[float] = []
                longer: list[int] = []
                for j, ids in enumerate(continuations[i]):
                    if ids and list(ids) == ext[: len(ids)]:  # read off the forced pass
                        scores.append(sum(float(logprobs[k, t]) for k, t in enumerate(ids)))
                        continue
                    scores.append(float(logprobs[0, ids[0]]) if ids else 0.0)
                    if len(ids) > 1:
                        longer.append(j)
                if longer:
                    past = start + own
                    row_cache = [
                        (k[b : b + 1, :, :past], v[b : b + 1, :, :past]) for k, v in layers
                    ]
                    scores = _add_rest(model, row_cache, past, longer, continuations[i], scores)
                yield scores


def _add_rest(
    model: Any,
    layers: list[tuple[Any, Any]],
    past: int,
    longer: list[int],
    options: Sequence[Sequence[int]],
    scores: list[float],
) -> list[float]:
    """Add the log-probabilities of the 2nd… tokens of multi-token continuations: one
    batch (a row per continuation, right-padded) over the case's keys and values
    (`layers`, `past` positions long)."""
    import torch

    device = model.get_input_embeddings().weight.device
    width = max(len(options[j]) - 1 for j in longer)
    rows = len(longer)
    ids = torch.zeros((rows, width), dtype=torch.long, device=device)
    mask = torch.zeros((rows, width), dtype=torch.long, device=device)
    for r, j in enumerate(longer):
        tokens = list(options[j][:-1])
        ids[r, : len(tokens)] = torch.tensor(tokens, device=device)
        mask[r, : len(tokens)] = 1
    expanded = expanded_cache(model, layers, rows)
    decoder = model.get_decoder()
    full_mask = torch.cat([mask.new_ones((rows, past)), mask], dim=1)
    hidden = decoder(
        input_ids=ids,
        attention_mask=full_mask,
        use_cache=True,
        **{cache_keyword(decoder): expanded},
    ).last_hidden_state
    picks_r: list[int] = []
    picks_p: list[int] = []
    targets: list[int] = []
    for r, j in enumerate(longer):
        for k in range(1, len(options[j])):
            picks_r.append(r)
            picks_p.append(k - 1)
            targets.append(int(options[j][k]))
    picked = hidden[torch.tensor(picks_r, device=device), torch.tensor(picks_p, device=device)]
    logprobs = torch.log_softmax(model.get_output_embeddings()(picked).float(), dim=-1)
    wanted = torch.tensor(targets, device=device)
    chosen = logprobs[torch.arange(len(targets), device=device), wanted]
    out = list(scores)
    for value, r in zip(chosen.tolist(), picks_r, strict=True):
        out[longer[r]] += float(value)
    return out
