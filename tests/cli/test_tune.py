"""The pieces of `workbench tune` that need no model: options to a TrainConfig (through
the same `graduation.train_config` as the Graduate panel), the plan line, failures."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.cli import build_parser, main
from workbench.cli.tune import train_config
from workbench.core.library import Library
from workbench.core.models import SoftPromptPlacement, TrainConfig


def tune_args(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(["tune", "P", *options])


def test_placement_reaches_the_train_config() -> None:
    for placement in typing.get_args(SoftPromptPlacement):
        assert train_config(tune_args("--placement", placement)).placement == placement
    # not given: the TrainConfig default (the virtual tokens replace the instruction)
    assert train_config(tune_args()).placement == TrainConfig().placement == "replace"


def test_placement_choices_come_from_the_model_type(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    tune = action.choices["tune"]
    option = next(a for a in tune._actions if "--placement" in a.option_strings)
    assert list(option.choices or []) == list(typing.get_args(SoftPromptPlacement))
    with pytest.raises(SystemExit) as exited:
        tune_args("--placement", "middle")
    assert exited.value.code == 2
    assert "invalid choice: 'middle'" in capsys.readouterr().err


def test_options_given_override_the_defaults_and_patience_0_never_stops() -> None:
    config = train_config(
        tune_args("--tokens", "4", "--epochs", "2.5", "--lr", "0.1", "--patience", "0")
    )
    assert (config.num_virtual_tokens, config.epochs, config.learning_rate) == (4, 2.5, 0.1)
    assert config.early_stopping_patience is None
    assert config.batch_size == TrainConfig().batch_size  # not given: the default
    assert train_config(tune_args("--patience", "2")).early_stopping_patience == 2


def test_a_bad_option_is_a_clean_error(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Library(library_dir).new_prompt("P", user_template="{{ x }}")
    assert main(["--library", str(library_dir), "tune", "P", "--tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "num_virtual_tokens" in err


def _fake_graduate(exc: BaseException | None) -> Any:
    def graduate(*args: Any, **kwargs: Any) -> Iterator[Any]:
        if exc is not None:
            raise exc
        yield from ()

    return graduate


def test_the_plan_line_is_the_graduation_flow_s(
    library_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.core import graduation
    from workbench.core.backends.registry import ModelCatalog

    prompt = Library(library_dir).new_prompt("P", user_template="{{ x }}")
    monkeypatch.setattr(graduation, "graduate", _fake_graduate(None))
    assert main(["--library", str(library_dir), "tune", "P", "--steps", "7"]) == 1  # nothing saved
    library = Library(library_dir)
    plan = graduation.prepare(library, prompt, None)
    config = TrainConfig(steps=7)
    expected = graduation.describe_plan(prompt, ModelCatalog().get(None), plan, config)
    assert capsys.readouterr().err.splitlines()[0] == expected


def test_a_training_failure_says_what_to_change(
    library_dir: Path,
    log_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench.core import graduation
    from workbench.core.tuning import TrainingError

    Library(library_dir).new_prompt("P", user_template="{{ x }}")
    failures = {
        TrainingError("no training examples: add few-shot examples"): (
            "error: no training examples: add few-shot examples"
        ),
        RuntimeError("CUDA out of memory"): "try a smaller batch size or fewer virtual tokens",
    }
    for exc, message in failures.items():
        monkeypatch.setattr(graduation, "graduate", _fake_graduate(exc))
        assert main(["--library", str(library_dir), "tune", "P", "--json"]) == 1
        assert message in capsys.readouterr().err
    logged = (log_dir / "workbench.log").read_text("utf-8")
    assert "training 'P'" in logged and "Traceback" in logged
