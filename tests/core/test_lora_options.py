"""`workbench tune --method` and the LoRA options, without a model: what reaches the
TrainConfig and LoraSettings, the defaults the help states, and misplaced options
refused in one line with nothing written."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

import pytest

from workbench.cli import build_parser, main
from workbench.cli.tune import lora_settings, train_config
from workbench.core.library import Library
from workbench.core.lora import LORA_LEARNING_RATE, lora_train_config
from workbench.core.models import LoraSettings, TrainConfig, TuneMethod


def tune_args(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(["tune", "P", *options])


def tune_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices["tune"]


def test_soft_stays_the_default_method_and_the_choices_come_from_the_type() -> None:
    assert tune_args().method == "soft"
    option = next(a for a in tune_parser()._actions if "--method" in a.option_strings)
    assert list(option.choices or []) == list(typing.get_args(TuneMethod)) == ["soft", "lora"]


def test_the_learning_rate_help_states_the_real_defaults() -> None:
    option = next(a for a in tune_parser()._actions if "--lr" in a.option_strings)
    soft_default = TrainConfig().learning_rate
    assert f"default {soft_default:g} for a soft prompt" in (option.help or "")
    assert f"{LORA_LEARNING_RATE:g} for LoRA" in (option.help or "")
    # and they are what a run gets when --lr is not given
    assert train_config(tune_args()).learning_rate == soft_default
    assert train_config(tune_args("--method", "lora")).learning_rate == LORA_LEARNING_RATE
    assert train_config(tune_args("--method", "lora", "--lr", "0.003")).learning_rate == 0.003
    assert lora_train_config({"learning_rate": None}).learning_rate == LORA_LEARNING_RATE


def test_lora_options_reach_the_settings() -> None:
    args = tune_args(
        "--method", "lora", "--rank", "4", "--alpha", "8", "--dropout", "0.1",
        "--target-modules", "q_proj, k_proj,,v_proj",
    )  # fmt: skip
    assert lora_settings(args) == LoraSettings(
        rank=4, alpha=8, dropout=0.1, target_modules=["q_proj", "k_proj", "v_proj"]
    )
    defaults = lora_settings(tune_args("--method", "lora"))
    assert (defaults.rank, defaults.alpha, defaults.dropout) == (8, 16.0, 0.05)
    assert defaults.target_modules == []  # found from the model at training time


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rank", "4"], "--rank only apply to --method lora"),
        (["--method", "lora", "--tokens", "4"], "--tokens only apply to --method soft"),
        (["--method", "lora", "--rank", "0"], "rank"),
        (["--method", "lora", "--dropout", "1.5"], "dropout"),
    ],
)
def test_misplaced_or_bad_options_are_one_clean_line(
    library_dir: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    Library(library_dir).new_prompt("P", user_template="{{ x }}")
    assert main(["--library", str(library_dir), "tune", "P", *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert Library(library_dir).lora_adapters == {}
