"""`workbench eval`'s own parsing: variants, thresholds and the split (the run itself is
the core's evaluation flow, tested end to end in tests/integration)."""

from __future__ import annotations

import pytest

from workbench.cli.common import CliError
from workbench.cli.evaluate import chosen_split, parse_minimums, parse_variant
from workbench.core.models import TestRow, TestSet


def test_a_variant_spec_names_its_overrides() -> None:
    spec = parse_variant("b:few_shot=0,cot=zero-shot,backend=transformers,soft=tiny soft")
    assert spec.name == "b" and spec.few_shot_count == 0 and spec.backend == "transformers"
    assert spec.cot_mode is not None and spec.cot_mode.value == "zero_shot"
    # a soft prompt's name is no id: the evaluation plan resolves it
    assert spec.soft_prompt_id == "tiny soft"
    assert parse_variant("l:adapter=yes no lora,few_shot=0").adapter_id == "yes no lora"
    assert parse_variant("plain").name == "plain"
    with pytest.raises(CliError, match="expected key=value"):
        parse_variant("x:colour=red")


def test_thresholds() -> None:
    assert parse_minimums(0.5, ["f1=0.25"]) == {"accuracy": 0.5, "f1": 0.25}
    with pytest.raises(CliError, match="--min expects METRIC=NUMBER"):
        parse_minimums(None, ["f1"])
    with pytest.raises(CliError, match="--max expects METRIC=NUMBER, got 'perplexity=high'"):
        parse_minimums(None, ["perplexity=high"], "--max")


def test_the_split_defaults_to_the_held_out_rows_when_there_are_splits() -> None:
    plain = TestSet(name="t", rows=[TestRow(vars={"x": "1"}, expected="1")])
    split = TestSet(name="t", rows=[TestRow(vars={"x": "1"}, expected="1", split="test")])
    assert chosen_split(None, plain) is None
    assert chosen_split(None, split) == "test"
    assert chosen_split("all", split) is None
    assert chosen_split("train", split) == "train"
