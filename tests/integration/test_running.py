"""Running prompts and chains on the embedded model through core.running."""

from __future__ import annotations

import pytest

from workbench.core.models import ChainOfThought, ChainStep, CoTMode, GenerationParams, Prompt
from workbench.core.running import RunFinished, StepFinished, StepStarted, run_prompt
from workbench.core.templates import TemplateError

pytestmark = pytest.mark.integration


def test_a_chain_feeds_each_step_the_output_of_the_last(llama_backend) -> None:
    prompt = Prompt(
        name="chain",
        cot=ChainOfThought(
            mode=CoTMode.CHAIN,
            steps=[
                ChainStep(name="facts", template="List two facts about {{ topic }}."),
                ChainStep(name="summary", template="Summarise in one sentence:\n{{ facts }}"),
            ],
        ),
        params=GenerationParams(max_new_tokens=20, temperature=0.0),
    )
    events = list(run_prompt(llama_backend, prompt, {"topic": "the Moon"}))
    started = [e for e in events if isinstance(e, StepStarted)]
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert [s.name for s in started] == ["facts", "summary"]
    first_output = finished[0].result.text
    assert first_output.strip()
    assert first_output in started[1].messages[-1].content
    record = events[-1].record if isinstance(events[-1], RunFinished) else None
    assert record is not None
    assert record.step_outputs == {"facts": first_output, "summary": finished[1].result.text}
    assert record.output == finished[1].result.text
    assert record.stats.completion_tokens == sum(len(f.result.token_ids) for f in finished)


def test_missing_variables_are_refused_before_the_model_runs(llama_backend) -> None:
    prompt = Prompt(name="p", user_template="Hello {{ name }}")
    with pytest.raises(TemplateError, match="name"):
        list(run_prompt(llama_backend, prompt, {}))
