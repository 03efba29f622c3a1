"""The command line: --version, --help, render, library list/show/history/seed, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import __version__
from workbench.cli import main
from workbench.core.library import Library


def run_cli(*args: str, env_library: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if env_library is not None:
        env["WORKBENCH_LIBRARY"] = str(env_library)
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_version_and_help() -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"workbench {__version__}"
    helped = run_cli("--help")
    assert helped.returncode == 0
    for command in ("gui", "render", "library"):
        assert command in helped.stdout


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


def test_unknown_prompt_is_a_clean_error(library_dir: Path) -> None:
    result = run_cli("--library", str(library_dir), "render", "nope")
    assert result.returncode == 2
    assert "no prompt named 'nope'" in result.stderr


def test_library_seed_list_show_history(
    library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = ["--library", str(library_dir)]
    assert main([*lib, "library", "seed"]) == 0
    assert "added to" in capsys.readouterr().out
    assert main([*lib, "library", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) >= 3
    name = listed[0]["name"]
    assert main([*lib, "library", "show", name]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == name
    assert main([*lib, "library", "list", "--tag", "sample", "--search", "sentiment"]) == 0
    assert "Review sentiment" in capsys.readouterr().out
    library = Library(library_dir)
    prompt = library.find_prompt(name)
    library.save_prompt(prompt.model_copy(update={"description": "edited"}))
    assert main([*lib, "library", "history", name]) == 0
    assert "v2" in capsys.readouterr().out
    assert main([*lib, "library", "history", name, "--diff", "1"]) == 0
    assert '+  "description": "edited"' in capsys.readouterr().out


def test_library_export_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = ["--library", str(tmp_path / "a")]
    target = ["--library", str(tmp_path / "b")]
    assert main([*source, "library", "seed"]) == 0
    bundle = tmp_path / "all.zip"
    assert main([*source, "library", "export", "--out", str(bundle)]) == 0
    assert f"wrote {bundle}" in capsys.readouterr().out

    assert main([*target, "library", "import", str(bundle), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Review sentiment: add" in out and "nothing written" in out
    assert not (tmp_path / "b" / "prompts").exists() or not any(
        (tmp_path / "b" / "prompts").iterdir()
    )
    assert main([*target, "library", "import", str(bundle)]) == 0
    assert "8 added" in capsys.readouterr().out
    assert main([*target, "library", "import", str(bundle)]) == 0
    assert "8 unchanged" in capsys.readouterr().out

    pf = tmp_path / "sentiment.yaml"
    assert main([*source, "library", "export", "Review sentiment", "--out", str(pf)]) == 0
    err = capsys.readouterr().err
    assert "does not carry" in err and "history" in err
    assert main([*target, "library", "import", str(pf), "--on-clash", "skip"]) == 0
    assert "Review sentiment: skip" in capsys.readouterr().out


def test_library_import_errors_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = ["--library", str(tmp_path / "lib")]
    bad = tmp_path / "bad.prompty"
    bad.write_text("---\nname: [unclosed\n---\nuser:\nhi\n")
    assert main([*lib, "library", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "error: cannot import" in err and "bad.prompty:2" in err and "Traceback" not in err
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    assert main([*lib, "library", "import", str(odd)]) == 2
    assert "--format" in capsys.readouterr().err
    assert main([*lib, "library", "export", "--out", str(tmp_path / "x.zip")]) == 2
    assert "nothing to export" in capsys.readouterr().err


def test_library_schema_matches_the_published_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["library", "schema"]) == 0
    published = Path(__file__).resolve().parents[2] / "docs" / "schema" / "bundle.schema.json"
    assert capsys.readouterr().out == published.read_text()
