"""Training data for prompt tuning, tokenised once and laid out for a cheap step.

Each example is rendered the way the soft prompt will run (`core/placement.py`): the
text before the virtual tokens (the *head*), N virtual slots, the text after them, then
the target. When every example has the same head — the usual case: the system message
or the template's system-turn opening — the head is kept apart (`Encoded.head`) so the
training loop can compute its key/value cache once; rows then hold only the virtual
slots, the example and its target. Otherwise each row carries its own head and its
virtual slots start at `virtual_at`.

Batches are bucketed by length (`batch_schedule`): each epoch is shuffled, cut into
groups of a few batches, sorted by length inside a group, and the batches shuffled
again, so padding stays small while the order stays random. torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.models import Message, SoftPromptPlacement
from workbench.core.placement import split_text, token_pieces
from workbench.core.prefix_cache import virtual_items

BUCKET_BATCHES = 8  # batches per group sorted by length


class EmptyTargetError(ValueError):
    """An example's expected output has no tokens."""


class SequenceTooLongError(ValueError):
    """An example cannot fit `max_length` even with its question cut."""


@dataclass(frozen=True)
class TrainingExample:
    messages: list[Message]
    target: str


@dataclass
class Encoded:
    """A dataset tokenised, padded and placed on the device once."""

    head: list[int]  # token ids every row starts with (empty: rows carry their own)
    input_ids: Any  # [n, T] long, after the head; virtual slots hold a pad id
    attention_mask: Any  # [n, T] long
    virtual_at: Any  # [n] long: where the N virtual slots start in each row
    target_pos: Any  # [n, L] long: positions (in the row) predicting targets
    target_ids: Any  # [n, L] long
    target_mask: Any  # [n, L] bool
    prompt_len: list[int]  # row length before the target
    lengths: list[int]  # row length with the target
    n_virtual: int

    def prompt_items(self, index: int) -> list[int]:
        """Row `index` before its target as prefix-cache items (head included; virtual
        slots as virtual items)."""
        row = self.input_ids[index, : self.prompt_len[index]].tolist()
        at = int(self.virtual_at[index])
        row[at : at + self.n_virtual] = virtual_items(self.n_virtual)
        return [*self.head, *row]

    def target(self, index: int) -> list[int]:
        return [int(t) for t in self.target_ids[index][self.target_mask[index]].tolist()]


def render_for_tokenizer(tokenizer: Any, messages: Sequence[Message]) -> str:
    """What the model sees for these messages (its chat template, or plain lines)."""
    if getattr(tokenizer, "chat_template", None):
        return str(
            tokenizer.apply_chat_template(
                [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
            )
        )
    return "\n".join(m.content for m in messages) + "\n"


def encode(
    tokenizer: Any,
    examples: Sequence[TrainingExample],
    n_virtual: int,
    placement: SoftPromptPlacement,
    max_length: int,
    device: str,
) -> Encoded:
    import torch

    def start(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=True)["input_ids"])

    def more(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    heads: list[list[int]] = []
    tails: list[list[int]] = []
    targets: list[list[int]] = []
    eos = tokenizer.eos_token or ""
    for example in examples:
        head, tail = split_text(
            example.messages, placement, lambda m: render_for_tokenizer(tokenizer, m)
        )
        before, after = token_pieces(head, tail, start, more)
        target_ids = more(example.target + eos)
        if not target_ids:
            raise EmptyTargetError(
                f"an example has an empty target: {example.messages[-1].content!r}"
            )
        room = max_length - len(before) - n_virtual - len(target_ids)
        if room < 1:
            raise SequenceTooLongError(
                f"an example's text before the virtual tokens, the {n_virtual} virtual "
                f"tokens and its target already take {max_length - room} of the "
                f"{max_length} tokens allowed (max_length): shorten them or raise it"
            )
        if len(after) > room:
            after = after[-room:]  # keep the question's end
        heads.append(before)
        tails.append(after)
        targets.append(target_ids)
    shared = heads[0] if heads and all(h == heads[0] for h in heads) else []
    rows: list[list[int]] = []
    virtual_at: list[int] = []
    prompt_len: list[int] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for before, after, target in zip(heads, tails, targets, strict=True):
        own = [] if shared else before
        row = [*own, *([pad] * n_virtual), *after]
        virtual_at.append(len(own))
        prompt_len.append(len(row))
        rows.append(row + target)
    width = max(len(r) for r in rows)
    label_width = max(len(t) for t in targets)
    n = len(rows)
    input_ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    target_pos = torch.zeros((n, label_width), dtype=torch.long)
    target_tok = torch.zeros((n, label_width), dtype=torch.long)
    target_mask = torch.zeros((n, label_width), dtype=torch.bool)
    for i, (row, target, plen) in enumerate(zip(rows, targets, prompt_len, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        for k, token in enumerate(target):
            target_pos[i, k] = plen + k - 1
            target_tok[i, k] = token
            target_mask[i, k] = True
    return Encoded(
        head=list(shared),
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        virtual_at=torch.tensor(virtual_at, dtype=torch.long).to(device),
        target_pos=target_pos.to(device),
        target_ids=target_tok.to(device),
        target_mask=target_mask.to(device),
        prompt_len=prompt_len,
        lengths=[len(r) for r in rows],
        n_virtual=n_virtual,
    )


def batch_schedule(
    lengths: Sequence[int], per_step: int, steps: int, seed: int, first: int = 0
) -> list[list[int]]:
    """Row indices of each step's batch (steps `first`…`steps - 1`), bucketed by length.
    Deterministic for a seed, so a resumed run sees the batches an uninterrupted one would."""
    import torch

    n = len(lengths)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    per_step = max(1, min(per_step, n))
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = torch.randperm(n, generator=generator).tolist()
        group = per_step * BUCKET_BATCHES
        epoch: list[list[int]] = []
        for g in range(0, n, group):
            chunk = sorted(order[g : g + group], key=lambda i: lengths[i])
            epoch += [chunk[b : b + per_step] for b in range(0, len(chunk), per_step)]
        full = [b for b in epoch if len(b) == per_step]
        short = [b for b in epoch if len(b) < per_step]
        if short:  # top the last, short batch up from the front of the epoch
            leftover = short[0]
            extra = [i for i in order if i not in leftover][: per_step - len(leftover)]
            full.append(leftover + extra)
        shuffled = torch.randperm(len(full), generator=generator).tolist()
        batches += [full[i] for i in shuffled]
    return batches[first:steps]
