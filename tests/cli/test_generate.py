"""`workbench render` and the pieces of `workbench generate` that need no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli_helpers import run_cli
from workbench.cli import main
from workbench.core.library import Library


def test_render_prints_the_messages(library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Library(library_dir).new_prompt("Greet", system="Be brief.", user_template="Hi {{ name }}")
    assert main(["--library", str(library_dir), "render", "greet", "--var", "name=Ada"]) == 0
    out = capsys.readouterr().out
    assert out == "--- system ---\nBe brief.\n--- user ---\nHi Ada\n"
    assert (
        main(["--library", str(library_dir), "render", "Greet", "--var", "name=Bo", "--json"]) == 0
    )
    line = json.loads(capsys.readouterr().out)
    assert line["messages"][-1] == {"role": "user", "content": "Hi Bo"}


def test_render_a_prompt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.core.models import Prompt

    path = tmp_path / "p.json"
    path.write_text(Prompt(name="file", user_template="{{ x }}!").model_dump_json())
    assert main(["--library", str(tmp_path / "lib"), "render", str(path), "--var", "x=1"]) == 0
    assert capsys.readouterr().out.endswith("1!\n")


def test_render_missing_variable_is_a_clean_error(library_dir: Path) -> None:
    Library(library_dir).new_prompt("Greet", user_template="Hi {{ name }}")
    result = run_cli("render", "Greet", env_library=library_dir)
    assert result.returncode == 2
    assert "needs values for: name" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_template_error_is_a_clean_error(library_dir: Path) -> None:
    Library(library_dir).new_prompt("Broken", user_template="Hi {{ name ")
    result = run_cli("--library", str(library_dir), "render", "Broken", "--var", "name=x")
    assert result.returncode == 2
    assert "user_template, line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_var_is_a_clean_error(library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Library(library_dir).new_prompt("Greet", user_template="Hi {{ name }}")
    assert main(["--library", str(library_dir), "render", "Greet", "--var", "name"]) == 2
    assert "--var expects NAME=VALUE, got 'name'" in capsys.readouterr().err


def test_generation_flags_override_the_prompts_parameters(tmp_path: Path) -> None:
    from workbench.cli import build_parser
    from workbench.cli.generate import generation_params
    from workbench.core.models import GenerationParams

    grammar = tmp_path / "g.gbnf"
    grammar.write_bytes(b'root ::= "yes" | "no"\r\n')
    flags = ["--max-tokens", "7", "--logprobs", "2", "--grammar", str(grammar), "--stop", "END"]
    args = build_parser().parse_args(["generate", "--text", "hi", *flags])
    params = generation_params(args, GenerationParams(temperature=0.5))
    assert params.max_new_tokens == 7 and params.temperature == 0.5
    assert params.logprobs and params.top_logprobs == 2 and params.stop == ["END"]
    assert params.grammar == 'root ::= "yes" | "no"\n'
