"""A prompt as chat turns, for the formats that store chat messages (promptfoo, Prompty,
OpenAI JSONL): system template, few-shot turns, final user template — and back.

Export renders nothing but our own few-shot examples that are written as variable values
(their user turn is the prompt's template filled with them). Import never renders:
templates stay templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workbench.core.models import (
    ChainOfThought,
    CoTMode,
    FewShot,
    FewShotExample,
    FewShotStyle,
    Message,
    Prompt,
)
from workbench.core.templates import TemplateError, example_user_text, select_examples

_USER_SLOT = re.compile(r"\{\{-?\s*user\s*-?\}\}")


@dataclass
class ChatForm:
    system: str
    turns: list[tuple[str, str]]  # few-shot (user, assistant) pairs
    user: str  # the final user turn: a template
    notes: list[str] = field(default_factory=list)

    def messages(self) -> list[Message]:
        out = [Message(role="system", content=self.system)] if self.system else []
        for user, assistant in self.turns:
            out.append(Message(role="user", content=user))
            out.append(Message(role="assistant", content=assistant))
        out.append(Message(role="user", content=self.user))
        return out


def to_chat(prompt: Prompt) -> ChatForm:
    """The prompt as chat turns; `notes` says what did not fit."""
    notes: list[str] = []
    turns: list[tuple[str, str]] = []
    few_shot = prompt.few_shot
    for i in select_examples(few_shot):
        try:
            user = example_user_text(prompt, i)
        except TemplateError as exc:
            raise ValueError(f"prompt {prompt.name!r}: few-shot example {i + 1}: {exc}") from None
        turns.append((user, few_shot.examples[i].output))
    if turns and few_shot.style is FewShotStyle.INLINE:
        notes.append("inline few-shot examples are written as chat turns")
    if len(turns) < len(few_shot.examples):
        notes.append("only the few-shot examples in use (count, order) are written")
    if any(e.vars for e in few_shot.examples):
        notes.append("few-shot examples given as variables are written as their rendered text")
    user = prompt.user_template
    cot = prompt.cot
    if cot.mode is CoTMode.ZERO_SHOT:
        user = f"{user}\n\n{cot.trigger}" if user else cot.trigger
        notes.append("the zero-shot reasoning trigger is appended to the user template")
    elif cot.mode is CoTMode.SCAFFOLD:
        if _USER_SLOT.search(cot.scaffold):
            user = _USER_SLOT.sub(lambda _: prompt.user_template, cot.scaffold)
            notes.append("the reasoning scaffold is merged into the user template")
        else:
            notes.append("the reasoning scaffold (it has no {{ user }} slot) is not written")
    elif cot.mode is CoTMode.CHAIN:
        notes.append("multi-step chains are not written (only the base prompt)")
    if cot.mode is not CoTMode.OFF and cot.answer_pattern:
        notes.append("the answer pattern of chain of thought is not written")
    return ChatForm(prompt.system, turns, user, notes)


def from_chat(
    name: str, system: str, turns: list[tuple[str, str]], user: str, **fields: object
) -> Prompt:
    """A prompt from chat turns: earlier user/assistant pairs become few-shot examples."""
    few_shot = FewShot(
        examples=[FewShotExample(input=u, output=a) for u, a in turns], style=FewShotStyle.CHAT
    )
    return Prompt.model_validate(
        {
            "name": name,
            "system": system,
            "user_template": user,
            "few_shot": few_shot.model_dump(),
            "cot": ChainOfThought().model_dump(),
            **fields,
        }
    )


def split_messages(messages: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]], str]:
    """(role, content) pairs → (system, few-shot pairs, final user). Raises ValueError
    naming the first message that does not fit the system? (user assistant)* user shape."""
    system_parts: list[str] = []
    i = 0
    while i < len(messages) and messages[i][0] == "system":
        system_parts.append(messages[i][1])
        i += 1
    rest = messages[i:]
    if not rest or rest[-1][0] != "user":
        raise ValueError("the last message must be the user's")
    turns: list[tuple[str, str]] = []
    for j in range(0, len(rest) - 1, 2):
        pair = rest[j : j + 2]
        if [r for r, _ in pair] != ["user", "assistant"]:
            raise ValueError(f"message {i + j + 1}: expected a user turn, then an assistant turn")
        turns.append((pair[0][1], pair[1][1]))
    return "\n\n".join(system_parts), turns, rest[-1][1]
