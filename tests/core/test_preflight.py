"""What is said before a run: settings that cut a chain of thought short, and a prompt
that would send an empty user message."""

from __future__ import annotations

from workbench.core.flows.preflight import (
    MIN_REASONING_TOKENS,
    empty_user_turn,
    parameter_warnings,
)
from workbench.core.models import ChainOfThought, ChainStep, CoTMode, GenerationParams, Prompt


def _prompt(mode: CoTMode = CoTMode.OFF, **kwargs) -> Prompt:
    fields = {"name": "p", "user_template": "Review: {{ text }}"} | kwargs
    return Prompt(cot=ChainOfThought(mode=mode), **fields)


def test_no_warnings_without_chain_of_thought() -> None:
    params = GenerationParams(max_new_tokens=4, stop=["\n"])
    assert parameter_warnings(_prompt(), params) == []
    assert parameter_warnings(None, params) == []


def test_chain_of_thought_with_few_new_tokens_is_warned() -> None:
    warnings = parameter_warnings(_prompt(CoTMode.ZERO_SHOT), GenerationParams(max_new_tokens=4))
    assert len(warnings) == 1
    assert "Max new tokens 4" in warnings[0] and "4 tokens" in warnings[0]
    assert str(MIN_REASONING_TOKENS) in warnings[0]
    enough = GenerationParams(max_new_tokens=MIN_REASONING_TOKENS)
    assert parameter_warnings(_prompt(CoTMode.ZERO_SHOT), enough) == []


def test_chain_of_thought_with_a_line_break_stop_is_warned() -> None:
    params = GenerationParams(max_new_tokens=256, stop=["\n", "END"])
    warnings = parameter_warnings(_prompt(CoTMode.SCAFFOLD), params)
    assert len(warnings) == 1 and "line break" in warnings[0]
    assert parameter_warnings(_prompt(CoTMode.SCAFFOLD), GenerationParams(stop=["END"])) == []


def test_an_empty_user_template_is_named() -> None:
    reason = empty_user_turn(_prompt(user_template=""), {})
    assert reason is not None and "user template is empty" in reason


def test_a_user_turn_that_renders_empty_is_named() -> None:
    reason = empty_user_turn(_prompt(user_template="{{ text }}"), {"text": "  "})
    assert reason is not None and "renders empty" in reason
    assert empty_user_turn(_prompt(user_template="{{ text }}"), {"text": "great"}) is None


def test_a_template_error_is_left_to_the_run() -> None:
    assert empty_user_turn(_prompt(user_template="{{ text "), {"text": "x"}) is None


def test_a_chain_with_an_empty_step_is_named() -> None:
    steps = [ChainStep(name="think", template="{{ text }}"), ChainStep(name="answer", template="")]
    prompt = Prompt(name="p", user_template="", cot=ChainOfThought(mode=CoTMode.CHAIN, steps=steps))
    reason = empty_user_turn(prompt, {"text": "x"})
    assert reason is not None and "'answer'" in reason
    fine = [ChainStep(name="think", template="{{ text }}"), ChainStep(name="answer", template="A")]
    prompt = Prompt(name="p", user_template="", cot=ChainOfThought(mode=CoTMode.CHAIN, steps=fine))
    assert empty_user_turn(prompt, {"text": "x"}) is None
    reason = empty_user_turn(prompt, {"text": ""})
    assert reason is not None and "'think'" in reason
