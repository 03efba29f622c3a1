"""Running a prompt on a backend: one call, or every step of a chain, as one event stream.

The GUI's run panel and `workbench generate` both consume `run_prompt`, so a chain
behaves the same everywhere: each step's output becomes a variable of later steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.core.backends.base import Backend, Finished, TokenEvent
from workbench.core.models import CoTMode, GenerationParams, Message, Prompt, RunRecord, RunStats
from workbench.core.templates import (
    TemplateError,
    prompt_variables,
    render_chain_step,
    render_messages,
    resolve_values,
)


@dataclass(frozen=True)
class StepStarted:
    name: str  # "" for a single (non-chain) call
    messages: list[Message]


@dataclass(frozen=True)
class StepFinished:
    name: str
    result: Finished


@dataclass(frozen=True)
class RunFinished:
    record: RunRecord


RunEvent = StepStarted | TokenEvent | StepFinished | RunFinished


def missing_variables(prompt: Prompt, values: dict[str, str]) -> list[str]:
    merged = resolve_values(prompt, values)
    return [name for name in prompt_variables(prompt) if name not in merged]


def run_prompt(
    backend: Backend,
    prompt: Prompt,
    values: dict[str, str],
    params: GenerationParams | None = None,
    cancel: threading.Event | None = None,
    model_id: str | None = None,
    soft_prompt: Any = None,
    soft_prompt_id: str | None = None,
) -> Iterator[RunEvent]:
    """Run a prompt (every step, for a chain) and end with a RunFinished carrying the record.
    `soft_prompt` (`placement.VirtualTokens`, or a bare numpy [N, d] array placed before
    the whole prompt) is fed as virtual tokens into each call."""
    params = params or prompt.params
    cancel = cancel or threading.Event()
    missing = missing_variables(prompt, values)
    if missing:
        raise TemplateError(
            f"no value for variable {', '.join(repr(m) for m in missing)}", field="variables"
        )
    outputs: dict[str, str] = {}
    first_messages: list[Message] = []
    final: Finished | None = None
    total_prompt_tokens = 0
    total_tokens = 0
    chain = prompt.cot.mode is CoTMode.CHAIN
    steps = [s.name for s in prompt.cot.steps] if chain else [""]
    for index, name in enumerate(steps):
        if chain:
            messages = render_chain_step(prompt, values, index, outputs)
        else:
            messages = render_messages(prompt, values)
        if not first_messages:
            first_messages = messages
        yield StepStarted(name, messages)
        stream = (
            backend.stream(messages, params, cancel)
            if soft_prompt is None
            else backend.stream(messages, params, cancel, soft_prompt=soft_prompt)
        )
        for event in stream:
            if isinstance(event, Finished):
                final = event
            else:
                yield event
        assert final is not None
        total_prompt_tokens += final.stats.prompt_tokens or 0
        total_tokens += final.stats.completion_tokens or 0
        yield StepFinished(name, final)
        if name:
            outputs[name] = final.text
        if final.stats.finish_reason == "cancelled":
            break
    assert final is not None
    stats = final.stats
    if chain:
        stats = RunStats(
            prompt_tokens=total_prompt_tokens,
            completion_tokens=total_tokens,
            time_to_first_token_s=stats.time_to_first_token_s,
            tokens_per_s=stats.tokens_per_s,
            total_s=stats.total_s,
            finish_reason=stats.finish_reason,
        )
    record = RunRecord(
        prompt_id=prompt.id,
        prompt_version=prompt.version,
        model=model_id or backend.spec.id,
        backend=backend.name,
        params=params,
        variables=dict(values),
        messages=first_messages,
        soft_prompt_id=soft_prompt_id,
        output=final.text,
        step_outputs=outputs,
        stats=stats,
    )
    yield RunFinished(record)
