"""Where a soft prompt's virtual tokens sit in what the model sees.

A soft prompt is N embeddings fed between two pieces of rendered text: the *head* (before
the virtual tokens) and the *tail* (after them). Training, generation and scoring on both
backends split the text here, the same way, so a soft prompt sees at run time exactly
the layout it was trained in:

- `replace` — the system message is dropped and the virtual tokens take its place
  inside the chat template's system turn (`<|im_start|>system\\n` · virtual ·
  `<|im_end|>\\n<|im_start|>user…`). Giving the template an explicit system turn also
  keeps templates that insert a default system message when none is given from adding
  one;
- `add` — the virtual tokens follow the system message's text, inside its turn;
- `start` — before the whole text (soft prompts made before placements existed).

The head is the same for every case of a task (it holds no variables unless the system
message does), so its key/value cache can be computed once and reused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.models import Message, SoftPromptPlacement

# a marker no prompt contains: the rendered text is split where it lands
MARKER = "\u2063\u2063workbench-virtual-tokens\u2063\u2063"

PLACEMENT_LABELS: dict[str, str] = {
    "replace": "replace the instruction",
    "add": "add to the prompt",
    "start": "before the whole prompt",
}


@dataclass(frozen=True)
class VirtualTokens:
    """A soft prompt ready to run: its [N, d] embeddings and where they go."""

    embeddings: Any  # numpy float32 [N, d]
    placement: SoftPromptPlacement = "start"

    @property
    def count(self) -> int:
        return int(self.embeddings.shape[0])


def as_virtual_tokens(soft_prompt: Any) -> VirtualTokens | None:
    """`VirtualTokens` as given, a bare array as a `start` soft prompt, None as None."""
    if soft_prompt is None or isinstance(soft_prompt, VirtualTokens):
        return soft_prompt
    return VirtualTokens(soft_prompt, "start")


def placed_messages(messages: Sequence[Message], placement: SoftPromptPlacement) -> list[Message]:
    """The messages to render, with the marker where the virtual tokens go (`start`: as
    given, no marker)."""
    if placement == "start":
        return list(messages)
    system = next((m.content for m in messages if m.role == "system"), "")
    rest = [m for m in messages if m.role != "system"]
    content = MARKER if placement == "replace" else system + MARKER
    return [Message(role="system", content=content), *rest]


def split_text(
    messages: Sequence[Message] | str,
    placement: SoftPromptPlacement,
    render: Callable[[Sequence[Message]], str],
) -> tuple[str, str]:
    """(head, tail): the rendered text before and after the virtual tokens. Raw text and
    `start` put them before everything; a chat template that drops the system turn (so
    the marker vanishes) gets them before the rendered rest, without the instruction when
    it was to be replaced."""
    if isinstance(messages, str):
        return "", messages
    if placement == "start":
        return "", render(messages)
    text = render(placed_messages(messages, placement))
    if text.count(MARKER) != 1:
        kept = [m for m in messages if placement == "add" or m.role != "system"]
        return "", render(kept)
    head, tail = text.split(MARKER)
    return head, tail


def token_pieces(
    head: str,
    tail: str,
    tokenize_start: Callable[[str], list[int]],
    tokenize_more: Callable[[str], list[int]],
) -> tuple[list[int], list[int]]:
    """Token ids before and after the virtual tokens. With nothing before them the tail
    is tokenised as the start of the text (BOS and all, as soft prompts always were);
    otherwise the head starts the text and the tail continues it."""
    if not head:
        return [], tokenize_start(tail)
    return tokenize_start(head), tokenize_more(tail)
