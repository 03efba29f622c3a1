"""`workbench library`: seed, list, show, history, export, import and schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.library import Library


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
    listed = capsys.readouterr().out.splitlines()
    assert "v1" in listed[0] and "created" in listed[0]
    assert "v2" in listed[1] and "edited" in listed[1] and "(current)" in listed[1]
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
