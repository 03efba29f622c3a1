"""The data model: validation names the field, round-trips, migration of older versions."""

from __future__ import annotations

import json

import pytest

from workbench.core.models import (
    SCHEMA_VERSION,
    ChainOfThought,
    CoTMode,
    FewShot,
    FewShotExample,
    Prompt,
    RunRecord,
    SchemaError,
    SoftPrompt,
    TestRow,
    TestSet,
    load_document,
)


def full_prompt() -> Prompt:
    return Prompt(
        name="Sentiment",
        description="classify reviews",
        tags=["classification"],
        labels=["production"],
        system="You classify reviews.",
        user_template="Review: {{ review }}",
        few_shot=FewShot(
            examples=[FewShotExample(vars={"review": "great"}, output="positive")], count=1
        ),
        cot=ChainOfThought(mode=CoTMode.ZERO_SHOT),
    )


@pytest.mark.parametrize(
    "document",
    [
        full_prompt(),
        TestSet(
            name="t", rows=[TestRow(vars={"a": "1"}, expected="x", group="g")], labels=["x", "y"]
        ),
        SoftPrompt(
            name="s",
            base_model="smollm2",
            base_model_hash="abc",
            num_virtual_tokens=20,
            tensor_file="s.safetensors",
        ),
        RunRecord(model="smollm2", backend="llama.cpp", output="hello"),
    ],
)
def test_every_document_round_trips_through_json(document) -> None:
    text = document.model_dump_json()
    again = load_document(json.loads(text))
    assert again == document
    assert again.schema_version == SCHEMA_VERSION


def test_validation_error_names_the_field() -> None:
    data = json.loads(full_prompt().model_dump_json())
    data["few_shot"]["count"] = -3
    with pytest.raises(SchemaError) as info:
        load_document(data, "p.json")
    locations = [loc for loc, _ in info.value.problems]
    assert "few_shot.count" in locations
    assert "p.json" in str(info.value)


def test_unknown_fields_are_refused() -> None:
    data = json.loads(full_prompt().model_dump_json())
    data["sytem"] = "typo"
    with pytest.raises(SchemaError) as info:
        load_document(data)
    assert info.value.problems[0][0] == "sytem"


def test_unsafe_ids_are_refused() -> None:
    with pytest.raises(ValueError):
        Prompt(id="../../etc/passwd", name="x")


def test_invalid_variable_and_step_names_are_refused() -> None:
    with pytest.raises(ValueError, match="valid variable name"):
        Prompt.model_validate({"name": "x", "variables": [{"name": "not ok"}]})
    with pytest.raises(ValueError, match="duplicate step"):
        ChainOfThought.model_validate(
            {
                "mode": "chain",
                "steps": [{"name": "a", "template": "x"}, {"name": "a", "template": "y"}],
            }
        )


def test_bad_answer_regex_is_refused() -> None:
    with pytest.raises(ValueError, match="regular expression"):
        ChainOfThought(answer_pattern="(unclosed")


def test_version_1_prompt_is_migrated() -> None:
    old = {
        "kind": "prompt",
        "schema_version": 1,
        "id": "old1",
        "name": "Legacy",
        "template": "Q: {{ q }}",
        "examples": [{"input": "1+1", "output": "2"}],
        "cot": "Let's think step by step.",
    }
    prompt = load_document(old)
    assert isinstance(prompt, Prompt)
    assert prompt.schema_version == SCHEMA_VERSION
    assert prompt.user_template == "Q: {{ q }}"
    assert prompt.few_shot.examples[0].output == "2"
    assert prompt.cot.mode is CoTMode.ZERO_SHOT
    assert prompt.cot.trigger == "Let's think step by step."


def test_newer_schema_is_refused_clearly() -> None:
    data = json.loads(full_prompt().model_dump_json())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match="newer release"):
        load_document(data)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(SchemaError, match="unknown document kind"):
        load_document({"kind": "spaceship"})


def test_content_equal_ignores_bookkeeping() -> None:
    a = full_prompt()
    b = a.model_copy(update={"version": 7})
    assert a.content_equal(b)
    assert not a.content_equal(a.model_copy(update={"system": "changed"}))


def test_train_length_in_steps_or_epochs() -> None:
    from workbench.core.models import TrainConfig

    assert TrainConfig(steps=30).total_steps(100) == 30
    assert TrainConfig(epochs=2, batch_size=8).total_steps(100) == 25
    assert TrainConfig(epochs=1, batch_size=8).total_steps(100, processes=2) == 7  # 100 / 16
    assert TrainConfig(epochs=0.01, batch_size=8).total_steps(10) == 1  # at least one
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)
