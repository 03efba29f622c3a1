"""What to tell someone before a run starts: settings that waste it, and a prompt with
nothing to send.

`parameter_warnings` is cheap (no rendering) and is shown beside Run as the settings
change; the run still starts. `empty_user_turn` renders the prompt once, when Run is
pressed, and stops the run: a model answering an empty user message says nothing about
the prompt being designed. A template error is not reported here; the run reports it
with its field and position.
"""

from __future__ import annotations

from collections.abc import Mapping

from workbench.core.flows.report import count
from workbench.core.models import CoTMode, GenerationParams, Prompt
from workbench.core.templates import (
    TemplateError,
    render_chain_step,
    render_template,
    resolve_values,
)

__all__ = ["MIN_REASONING_TOKENS", "empty_user_turn", "parameter_warnings"]

MIN_REASONING_TOKENS = 64
"""Below this many new tokens a chain of thought is cut before it reaches an answer
(even a short worked answer of a small model takes about a hundred)."""


def parameter_warnings(prompt: Prompt | None, params: GenerationParams) -> list[str]:
    """Warnings, as sentences, for settings that cut a chain of thought short."""
    if prompt is None or prompt.cot.mode is CoTMode.OFF:
        return []
    warnings = []
    limit = params.max_new_tokens
    if limit < MIN_REASONING_TOKENS:
        warnings.append(
            f"Chain of thought with Max new tokens {limit}: the reasoning stops after "
            f"{count(limit, 'token')}, before any answer. Allow at least "
            f"{MIN_REASONING_TOKENS} (a few hundred is usual)."
        )
    if any("\n" in stop for stop in params.stop):
        warnings.append(
            "Chain of thought with a line break as a stop string (\\n): the run ends "
            "at the first line of the reasoning, before the answer. Remove that stop "
            "string, or stop on the answer's own marker instead."
        )
    return warnings


def empty_user_turn(prompt: Prompt, values: Mapping[str, str]) -> str | None:
    """Why the user turn the model would see is empty (a sentence), or None when it is
    not. For a chain: a step with an empty template, or a first step that renders empty.
    For other prompts: the user template as rendered (without examples or the reasoning
    trigger around it)."""
    try:
        if prompt.cot.mode is CoTMode.CHAIN:
            for step in prompt.cot.steps:
                if not step.template.strip():
                    return (
                        f"Step {step.name!r} of the chain has an empty template: write it "
                        "in the Chain of thought tab before running."
                    )
            if not prompt.cot.steps:
                return None  # the run says the chain has no steps
            messages = render_chain_step(prompt, values, 0, {})
            first = messages[-1].content if messages else ""
            if not first.strip():
                name = prompt.cot.steps[0].name
                return (
                    f"The first step ({name!r}) renders an empty message: give its "
                    "variables values in the Prompt tab before running."
                )
            return None
        merged = resolve_values(prompt, values)
        user = render_template(prompt.user_template, merged, "user_template")
    except TemplateError:
        return None  # the run reports it, with the field and the position
    if user.strip():
        return None
    if not prompt.user_template.strip():
        return (
            "Nothing to send: the user template is empty. Write what the user says in "
            "the Prompt tab before running."
        )
    return (
        "Nothing to send: the user message renders empty. Give the template's "
        "variables values in the Prompt tab before running."
    )
