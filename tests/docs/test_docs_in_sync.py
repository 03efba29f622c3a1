"""The documentation stays true: the generated library reference matches the models,
every relative link and image points at a file (and heading) that exists, and every
`workbench <subcommand>` the docs mention is one the CLI parser knows."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python scripts/gen_docs.py` and commit the result"


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_docs() -> ModuleType:
    return _gen_docs()


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# ---------------------------------------------------------------------------
# The generated library reference


def test_library_reference_and_schemas_match_the_models(gen_docs: ModuleType) -> None:
    generated = gen_docs.render_all()
    assert Path("docs/library-format.md") in generated
    for path, text in generated.items():
        committed = ROOT / path
        assert committed.is_file(), f"{path} is missing: {REGENERATE}"
        assert committed.read_text("utf-8") == text, f"{path} is out of date: {REGENERATE}"


def test_no_schema_file_is_left_over_from_an_old_kind(gen_docs: ModuleType) -> None:
    generated = {p.name for p in gen_docs.render_all() if p.parent == Path("docs/schema")}
    on_disk = {p.name for p in (ROOT / "docs" / "schema").glob("*.schema.json")}
    assert on_disk == generated, REGENERATE


def test_each_schema_file_describes_its_kind_and_validates_real_documents(
    gen_docs: ModuleType,
) -> None:
    from workbench.core.library import read_document

    sample = ROOT / "resources" / "sample_library"
    for kind, model in gen_docs.document_models().items():
        schema = json.loads((ROOT / "docs" / "schema" / f"{kind}.schema.json").read_text())
        assert schema["properties"]["kind"]["const"] == kind
        assert schema["additionalProperties"] is False
        assert set(schema.get("required", [])) == {
            name for name, field in model.model_fields.items() if field.is_required()
        }
    # the documented fields are exactly what real library files carry
    prompt_schema = json.loads((ROOT / "docs/schema/prompt.schema.json").read_text())
    for path in sorted((sample / "prompts").glob("*.json")):
        document = read_document(path)
        assert set(json.loads(path.read_text())) <= set(prompt_schema["properties"]), path
        assert document.kind == "prompt"


def test_the_reference_documents_every_field_of_every_kind(gen_docs: ModuleType) -> None:
    text = (ROOT / "docs" / "library-format.md").read_text("utf-8")
    for model in gen_docs.document_models().values():
        assert f"### {model.__name__}" in text
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} is not documented"
    from workbench.core.models import SCHEMA_VERSION

    assert f"Schema version: **{SCHEMA_VERSION}**" in text
    assert "`template` instead of `user_template`" in text  # the v1 → v2 migration


def test_check_mode_reports_a_stale_file_and_write_mode_fixes_it(
    gen_docs: ModuleType, tmp_path: Path
) -> None:
    assert set(gen_docs.write_all(tmp_path)) == set(gen_docs.render_all())
    assert gen_docs.stale_files(tmp_path) == []
    reference = tmp_path / "docs" / "library-format.md"
    reference.write_text(reference.read_text() + "edited by hand\n")
    (tmp_path / "docs" / "schema" / "gone.schema.json").write_text("{}")
    problems = gen_docs.stale_files(tmp_path)
    assert "docs/library-format.md is out of date" in problems
    assert "docs/schema/gone.schema.json is not generated any more" in problems
    gen_docs.write_all(tmp_path)
    assert gen_docs.stale_files(tmp_path) == []
    assert not (tmp_path / "docs" / "schema" / "gone.schema.json").exists()


# ---------------------------------------------------------------------------
# Links and images

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """Markdown without code (links inside code are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def links(path: Path) -> Iterator[str]:
    yield from _LINK.findall(_prose(path.read_text("utf-8")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text("utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)}


def test_every_relative_link_and_image_points_at_an_existing_file() -> None:
    checked = 0
    broken = []
    for path in markdown_files():
        for target in links(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http(s), mailto: and anchors within the page
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve()
            checked += 1
            where = f"{path.relative_to(ROOT)} → {target}"
            if not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif not resolved.is_relative_to(ROOT):
                broken.append(f"{where} (outside the repository)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
    assert checked >= 30  # the guide pages link to each other and to screenshots


def test_anchors_within_a_page_point_at_its_headings() -> None:
    broken = []
    for path in markdown_files():
        own = anchors(path)
        for target in links(path):
            if target.startswith("#") and target[1:] not in own:
                broken.append(f"{path.relative_to(ROOT)} → {target}")
    assert not broken, "broken anchors:\n" + "\n".join(broken)


def test_link_finder_sees_links_and_images_but_not_code() -> None:
    text = 'See [a](x.md) and ![img](img/a.png "t").\n```\n[no](code.md)\n```\n`[no](y.md)`'
    assert _LINK.findall(_prose(text)) == ["x.md", "img/a.png"]
    assert slug("How to add a backend") == "how-to-add-a-backend"
    assert slug("`workbench eval` in CI") == "workbench-eval-in-ci"


# ---------------------------------------------------------------------------
# Command lines in the docs


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _code(text: str) -> Iterator[str]:
    """Fenced blocks and inline code spans: where command lines are written."""
    for match in _FENCE.finditer(text):
        yield match.group(0)
    yield from (m[1:-1] for m in _INLINE_CODE.findall(_FENCE.sub("", text)))


_COMMAND = re.compile(r"(?:^|[\s/`(])workbench((?:[ \t]+[^\s|;&#]+)*)", re.MULTILINE)
_GLOBAL_WITH_VALUE = {"--library"}


def mentioned_commands(text: str) -> Iterator[list[str]]:
    """The words after each `workbench` in code: [subcommand, action?] (options skipped)."""
    for code in _code(text):
        for match in _COMMAND.finditer(code):
            words = match.group(1).split()
            skip = False
            found: list[str] = []
            for word in words:
                if skip:
                    skip = False
                    continue
                if word.startswith("-"):
                    skip = word in _GLOBAL_WITH_VALUE
                    if found:
                        break  # the subcommand's own options: its action came before them
                    continue
                if re.fullmatch(r"[a-z][a-z-]*", word):
                    found.append(word)
                    if len(found) == 2:
                        break
                    continue
                break
            if found:
                yield found


def test_every_workbench_subcommand_in_the_docs_exists() -> None:
    from workbench.cli import build_parser

    commands = _subparsers(build_parser())
    seen: set[tuple[str, ...]] = set()
    unknown = []
    for path in markdown_files():
        for words in mentioned_commands(path.read_text("utf-8")):
            name = words[0]
            where = f"{path.relative_to(ROOT)}: workbench {' '.join(words)}"
            if name not in commands:
                unknown.append(f"{where} (no subcommand {name!r})")
                continue
            actions = _subparsers(commands[name])
            if actions and len(words) > 1:
                if words[1] not in actions:
                    unknown.append(f"{where} (no action {words[1]!r} of {name!r})")
                    continue
                seen.add((name, words[1]))
            seen.add((name,))
    assert not unknown, "commands the CLI does not have:\n" + "\n".join(unknown)
    # the docs cover the whole command line
    assert {(name,) for name in commands} <= seen, sorted({(n,) for n in commands} - seen)


def test_command_finder_reads_command_lines() -> None:
    text = (
        "```sh\n.venv/bin/workbench library list [--search TEXT]\n"
        "workbench --library DIR models add x.gguf\nworkbench   # the app\n```\n"
        "Run `workbench eval PROMPT --min-accuracy 0.8`, or `python -m workbench tune P`."
    )
    assert list(mentioned_commands(text)) == [
        ["library", "list"],
        ["models", "add"],
        ["eval"],
        ["tune"],
    ]
