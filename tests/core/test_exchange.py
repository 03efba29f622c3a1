"""Exchange formats: real files written from each format's documentation, round trips,
import plans and their clash resolution, transactions, and hostile bundles."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.core.exchange_helpers import FIXTURES, rich_library, snapshot, tensor_bytes
from workbench.core import exchange
from workbench.core.exchange import (
    ExportFailed,
    ImportFailed,
    Resolution,
    bundle,
    export,
    plan_file,
    read_package,
)
from workbench.core.library import Library
from workbench.core.models import CoTMode, FewShotStyle, Prompt, SoftPrompt, TestRow, TestSet
from workbench.core.templates import render_messages

# -- the native bundle ---------------------------------------------------------------


def test_bundle_exported_imported_and_exported_again_is_identical(
    library: Library, tmp_path: Path
) -> None:
    prompt = rich_library(library)
    first = tmp_path / "first.zip"
    report = export(library, "bundle", first)
    assert report.paths == [first]

    other = Library(tmp_path / "other")
    plan = plan_file(other, first)
    assert {i.resolution for i in plan.items} == {Resolution.ADD}
    result = plan.apply()
    assert sorted(result.added) == ["Capital", "Greeting", "capital soft", "capitals"]

    again = Library(tmp_path / "other")  # from disk, not memory
    assert again.get_prompt(prompt.id) == library.get_prompt(prompt.id)
    assert [p.version for p in again.history(prompt.id)] == [1, 2, 3]
    assert again.history(prompt.id) == library.history(prompt.id)
    assert again.test_sets == library.test_sets
    assert again.soft_prompts == library.soft_prompts
    (soft,) = again.soft_prompts.values()
    assert again.soft_prompt_tensor_path(soft).read_bytes() == tensor_bytes()

    second = tmp_path / "second.zip"
    export(again, "bundle", second)
    assert second.read_bytes() == first.read_bytes()


def test_bundle_carries_a_manifest_and_its_json_schema(library: Library, tmp_path: Path) -> None:
    rich_library(library)
    out = tmp_path / "b.zip"
    export(library, "bundle", out)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        schema = json.loads(archive.read("bundle.schema.json"))
    assert manifest["format"] == "prompt-workbench-bundle"
    assert {e["path"] for e in manifest["contents"]} == set(names) - {"manifest.json"}
    assert schema == bundle.bundle_schema()
    assert {"Manifest", "Prompt", "TestSet", "SoftPrompt"} <= set(schema["$defs"])
    assert sum(n.startswith("history/") for n in names) == 2


def test_selection_exports_a_prompt_with_its_test_sets_and_soft_prompts(
    library: Library, tmp_path: Path
) -> None:
    prompt = rich_library(library)
    out = tmp_path / "one.zip"
    export(library, "bundle", out, [prompt.id])
    package = read_package(out)
    assert [p.prompt.name for p in package.prompts] == ["Capital"]
    assert len(package.test_sets) == 1 and len(package.soft_prompts) == 1


# -- hostile bundles -------------------------------------------------------------------


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def _valid_bundle(library: Library, tmp_path: Path) -> dict[str, bytes]:
    rich_library(library)
    out = tmp_path / "valid.zip"
    export(library, "bundle", out)
    with zipfile.ZipFile(out) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


@pytest.mark.parametrize(
    "evil",
    ["../escape.json", "/etc/passwd", "prompts/../../x.json", "prompts/a/../../b.json", "C:\\x"],
)
def test_zip_slip_paths_are_refused_and_nothing_is_written(
    evil: str, library: Library, tmp_path: Path
) -> None:
    entries = _valid_bundle(library, tmp_path)
    entries[evil] = b"{}"
    target = Library(tmp_path / "target")
    before = snapshot(tmp_path / "target")
    path = tmp_path / "evil.zip"
    path.write_bytes(_zip(entries))
    with pytest.raises(ImportFailed) as caught:
        plan_file(target, path)
    assert any(evil in p.where and "not a bundle path" in p.message for p in caught.value.problems)
    assert snapshot(tmp_path / "target") == before
    assert not (tmp_path / "escape.json").exists()


def test_a_symlink_entry_is_refused(library: Library, tmp_path: Path) -> None:
    entries = _valid_bundle(library, tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
        link = zipfile.ZipInfo("prompts/linked.json")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ImportFailed, match="not a plain file"):
        exchange.parse_bytes("bundle", buffer.getvalue(), "link.zip")


def test_a_zip_bomb_is_stopped_by_the_ratio_limit(tmp_path: Path) -> None:
    bomb = _zip({"prompts/bomb.json": b"0" * (64 << 20)})
    assert len(bomb) < 1 << 20
    with pytest.raises(ImportFailed, match="compressed more than"):
        exchange.parse_bytes("bundle", bomb, "bomb.zip")


def test_an_entry_larger_than_its_header_claims_stops_at_the_claim(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _valid_bundle(library, tmp_path)
    data = bytearray(_zip(entries))
    # shrink the declared size of the manifest in both headers: reading must stop there
    name = b"manifest.json"
    declared = len(entries["manifest.json"]).to_bytes(4, "little")
    smaller = (len(entries["manifest.json"]) // 2).to_bytes(4, "little")
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(header + b"", 0)
        while at != -1:
            name_at = at + (30 if header == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                assert data[at + offset : at + offset + 4] == declared
                data[at + offset : at + offset + 4] = smaller
            at = data.find(header, at + 4)
    with pytest.raises(ImportFailed) as caught:
        exchange.parse_bytes("bundle", bytes(data), "liar.zip")
    assert any("manifest.json" in p.where for p in caught.value.problems)


def test_size_and_count_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_ENTRIES", 3)
    many = _zip({f"prompts/p{i}.json": b"{}" for i in range(5)})
    with pytest.raises(ImportFailed, match="5 entries"):
        exchange.parse_bytes("bundle", many, "many.zip")
    monkeypatch.setattr(bundle, "MAX_ENTRIES", 100)
    monkeypatch.setattr(bundle, "MAX_TOTAL_BYTES", 1000)
    big = _zip({"prompts/a.json": b"x" * 800, "prompts/b.json": b"y" * 800})
    with pytest.raises(ImportFailed, match="uncompressed"):
        exchange.parse_bytes("bundle", big, "big.zip")


def test_tampered_and_damaged_entries_are_all_reported(library: Library, tmp_path: Path) -> None:
    entries = _valid_bundle(library, tmp_path)
    prompt_entry = next(
        n for n in entries if n.startswith("prompts/") and b'"Capital"' in entries[n]
    )
    tensor_entry = next(n for n in entries if n.endswith(".safetensors"))
    entries[prompt_entry] = entries[prompt_entry].replace(b'"Capital"', b'"Capitol"')
    entries[tensor_entry] = b"\x80\x04pickle"  # a pickle is never loaded
    with pytest.raises(ImportFailed) as caught:
        exchange.parse_bytes("bundle", _zip(entries), "tampered.zip")
    where = " ".join(p.where for p in caught.value.problems)
    assert prompt_entry in where and tensor_entry in where


def test_a_wrong_tensor_shape_is_refused(library: Library, tmp_path: Path) -> None:
    entries = _valid_bundle(library, tmp_path)
    tensor_entry = next(n for n in entries if n.endswith(".safetensors"))
    entries[tensor_entry] = tensor_bytes(tokens=5)
    manifest = json.loads(entries["manifest.json"])
    for entry in manifest["contents"]:
        if entry["path"] == tensor_entry:
            import hashlib

            entry["sha256"] = hashlib.sha256(entries[tensor_entry]).hexdigest()
            entry["size"] = len(entries[tensor_entry])
    entries["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(ImportFailed, match="does not match 4 tokens"):
        exchange.parse_bytes("bundle", _zip(entries), "shape.zip")


def test_not_a_zip_and_a_foreign_zip(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="not a zip archive"):
        exchange.parse_bytes("bundle", b"PK\x03\x04garbage", "x.zip")
    with pytest.raises(ImportFailed, match="not a bundle path"):
        exchange.parse_bytes("bundle", _zip({"word/document.xml": b"<x/>"}), "doc.zip")


# -- import plans ----------------------------------------------------------------------


def test_reimport_is_unchanged_and_clashes_resolve_as_chosen(
    library: Library, tmp_path: Path
) -> None:
    prompt = rich_library(library)
    out = tmp_path / "b.zip"
    export(library, "bundle", out)

    plan = plan_file(library, out)
    assert {i.resolution for i in plan.items} == {Resolution.UNCHANGED}
    before = snapshot(library.root)
    plan.apply()
    assert snapshot(library.root) == before

    edited = library.save_prompt(
        library.get_prompt(prompt.id).model_copy(update={"user_template": "Capital of {{ c }}?"})
    )
    copy_plan = plan_file(library, out)
    item = next(i for i in copy_plan.items if i.source_id == prompt.id)
    assert item.resolution is Resolution.COPY and "id is taken" in item.clash
    assert set(item.choices) == {Resolution.COPY, Resolution.REPLACE, Resolution.SKIP}
    preview = "\n".join(copy_plan.preview())
    assert "Capital: add as a copy" in preview
    result = copy_plan.apply()
    assert "Capital (2)" in result.added
    (copy_id,) = [s.id for s in library.search() if s.name == "Capital (2)"]
    assert copy_id in result.prompt_ids and copy_id != prompt.id
    # the copy took its own copies of the test set and soft prompt along
    assert len(library.test_sets_for(copy_id)) == 1
    assert len(library.soft_prompts_for(copy_id)) == 1
    assert library.get_prompt(prompt.id) == edited

    replace_plan = plan_file(library, out, on_clash=Resolution.REPLACE)
    replace_plan.apply()
    current = library.get_prompt(prompt.id)
    assert current.user_template == "What is the capital of {{ country }}?"
    assert current.version == edited.version + 1
    assert library.version(prompt.id, edited.version).user_template == "Capital of {{ c }}?"

    skip_plan = plan_file(library, out, on_clash=Resolution.SKIP)
    assert all(
        skip_plan.effective(i) in (Resolution.SKIP, Resolution.UNCHANGED)
        for i in range(len(skip_plan.items))
    )


def test_formats_without_ids_reimport_by_name(library: Library, tmp_path: Path) -> None:
    plan = plan_file(library, FIXTURES / "basic.prompty")
    plan.apply()
    (summary,) = library.search()
    same = plan_file(library, FIXTURES / "basic.prompty")
    assert [i.resolution for i in same.items] == [Resolution.UNCHANGED]
    edited = library.get_prompt(summary.id).model_copy(update={"user_template": "edited"})
    library.save_prompt(edited)
    again = plan_file(library, FIXTURES / "basic.prompty")
    (item,) = again.items
    assert item.clash == "a prompt with this name exists" and item.target_id == summary.id
    again.resolve(0, Resolution.REPLACE)
    result = again.apply()
    assert result.replaced == ["Basic Prompt"] and len(library.search()) == 1
    assert library.get_prompt(summary.id).user_template == "{{question}}"
    assert library.version(summary.id, 2).user_template == "edited"
    with pytest.raises(ValueError):
        again.resolve(0, Resolution.ADD)


def _apply_with_no_space_at_write(plan, failing: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Apply `plan` with the library's `failing`-th file write raising "no space left";
    the number of writes tried (the undo's included)."""
    import workbench.core.library as library_module

    real = library_module.atomic_write_bytes
    calls = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == failing:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(library_module, "atomic_write_bytes", write)
    with pytest.raises(OSError, match="No space"):
        plan.apply()
    monkeypatch.setattr(library_module, "atomic_write_bytes", real)
    return calls["n"]


def test_a_failed_apply_leaves_the_library_as_it_was(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rich_library(library)
    out = tmp_path / "b.zip"
    export(library, "bundle", out)
    target = Library(tmp_path / "target")
    target.new_prompt("Existing", user_template="x")
    before = snapshot(target.root)
    plan = plan_file(target, out)

    assert _apply_with_no_space_at_write(plan, 6, monkeypatch) >= 6
    assert snapshot(target.root) == before
    assert [s.name for s in target.search()] == ["Existing"]
    assert not target.test_sets and not target.soft_prompts


def _library_with_a_draft(tmp_path: Path) -> tuple[Library, Path, str]:
    """A library whose prompt has unsaved edits, and a bundle with another version of it."""
    mine = Library(tmp_path / "mine")
    prompt = mine.new_prompt("Beta", user_template="Mine {{ b }}")
    theirs = Library(tmp_path / "theirs")
    theirs.add_prompt_verbatim(prompt.model_copy(update={"user_template": "Theirs {{ b }}"}))
    out = tmp_path / "theirs.zip"
    export(theirs, "bundle", out)
    mine.save_draft(prompt.model_copy(update={"user_template": "Mine, edited {{ b }}"}))
    return mine, out, prompt.id


def test_a_replace_keeps_the_unsaved_edits_as_the_version_before_the_import(
    tmp_path: Path,
) -> None:
    mine, out, prompt_id = _library_with_a_draft(tmp_path)
    result = plan_file(mine, out, on_clash=Resolution.REPLACE).apply()

    assert result.replaced == ["Beta"] and result.drafts_kept == ["Beta"]
    assert "unsaved edits of Beta were saved as a version first" in result.summary()
    now = mine.get_prompt(prompt_id)
    assert (now.version, now.user_template) == (3, "Theirs {{ b }}")
    assert mine.draft(prompt_id) is None  # it would reopen over the import
    kept = [p for p in mine.history(prompt_id) if p.version == 2]
    assert [p.user_template for p in kept] == ["Mine, edited {{ b }}"]
    assert mine.version_notes(prompt_id) == {
        2: "unsaved edits, kept before an import",
        3: "imported",
    }


def test_a_failed_replace_keeps_the_draft_and_the_library_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, out, prompt_id = _library_with_a_draft(tmp_path)
    plan = plan_file(mine, out, on_clash=Resolution.REPLACE)
    before = snapshot(mine.root)

    # the draft's version lands (3 writes), then no space; the undo's writes count too
    assert _apply_with_no_space_at_write(plan, 4, monkeypatch) >= 4
    assert snapshot(mine.root) == before
    draft = mine.draft(prompt_id)
    assert draft is not None and draft.user_template == "Mine, edited {{ b }}"
    assert mine.get_prompt(prompt_id).version == 1


# -- promptfoo ---------------------------------------------------------------------------


def test_promptfoo_config_from_its_documentation() -> None:
    package = read_package(FIXTURES / "promptfooconfig.yaml")
    plain, chat = (p.prompt for p in package.prompts)
    assert plain.name == "Translate short phrases #1"
    assert plain.user_template == "Translate the following text to {{language}}: {{input}}"
    assert chat.name == "chat-translator"
    assert chat.system == "You are a careful translator."
    assert [(e.input, e.output) for e in chat.few_shot.examples] == [
        ("Translate to French: Good morning", "Bonjour")
    ]
    assert chat.user_template == "Translate to {{language}}: {{input}}"
    rows = package.test_sets[0].rows
    assert [r.expected for r in rows] == ["bonjour", "Wo ist die Bibliothek?", ""]
    assert rows[2].vars == {"language": "Spanish", "input": "3 apples", "count": "3"}
    assert rows[2].group == "numbers"
    assert len(package.test_sets) == 2  # each prompt gets the tests
    assert any("providers" in n for n in package.notes)


def test_promptfoo_export_reads_back(library: Library, tmp_path: Path) -> None:
    prompt = rich_library(library)
    out = tmp_path / "pf.yaml"
    report = export(library, "promptfoo", out, [prompt.id])
    assert any("soft prompts" in loss for loss in report.losses)
    package = read_package(out)
    (imported,) = package.prompts
    back = imported.prompt
    assert back.name == "Capital" and back.system == prompt.system
    # what the model sees is the same: few-shot turns, and the trigger in the template
    values = {"country": "Chile"}
    assert render_messages(back, values) == render_messages(prompt, values)
    (test_set,) = package.test_sets
    assert [(r.vars, r.expected, r.group, r.split) for r in test_set.rows] == [
        ({"country": "Chile"}, "Santiago", "americas", None),
        ({"country": "Kenya"}, "Nairobi", None, "test"),
    ]
    assert test_set.name == "capitals"


def test_promptfoo_problems_are_all_reported_with_their_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts:\n  - file://prompts/a.txt\n  - 42\ntests:\n  - vars: [1, 2]\n  - 7\n")
    with pytest.raises(ImportFailed) as caught:
        read_package(bad)
    where = [p.where.split(": ", 1)[1] for p in caught.value.problems]
    assert where == ["prompts[0]", "prompts[1]", "tests[0].vars", "tests[1]"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("prompts:\n  - 'a\n  b: [\n")
    with pytest.raises(ImportFailed, match=r"broken.yaml:\d+:\d+: not valid YAML"):
        read_package(broken)


def test_yaml_tags_that_construct_objects_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("prompts:\n  - !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ImportFailed, match="not valid YAML"):
        read_package(evil)
    assert not Path("pwned").exists()


# -- Prompty -----------------------------------------------------------------------------


def test_prompty_file_from_its_documentation() -> None:
    (imported,) = read_package(FIXTURES / "basic.prompty").prompts
    prompt = imported.prompt
    assert prompt.name == "Basic Prompt" and prompt.tags == ["geography"]
    assert prompt.system.startswith("You are an AI assistant who helps people")
    assert "You are helping {{firstName}}" in prompt.system
    assert prompt.user_template == "{{question}}"
    assert [(e.input, e.output) for e in prompt.few_shot.examples] == [
        ("What is the capital of Italy?", "Rome.")
    ]
    assert prompt.params.max_new_tokens == 128 and prompt.params.temperature == 0.2
    assert prompt.params.stop == ["\n\n"]
    assert [(v.name, v.default, v.description) for v in prompt.variables] == [
        ("firstName", "Jane", "the customer's first name"),
        ("question", None, ""),
    ]
    assert prompt.sample_values == {
        "firstName": "Seth",
        "question": "What is the capital of France?",
    }


def test_prompty_round_trip_keeps_what_prompty_holds(library: Library, tmp_path: Path) -> None:
    prompt = rich_library(library)
    out = tmp_path / "capital.prompty"
    export(library, "prompty", out, [prompt.id])
    text = out.read_text()
    assert text.startswith("---\nname: Capital\n")
    (imported,) = read_package(out).prompts
    back = imported.prompt
    assert (back.name, back.description, back.tags) == (
        prompt.name,
        prompt.description,
        prompt.tags,
    )
    assert back.variables == prompt.variables and back.sample_values == prompt.sample_values
    assert back.params.model_dump(include={"temperature", "max_new_tokens", "stop", "seed"}) == (
        prompt.params.model_dump(include={"temperature", "max_new_tokens", "stop", "seed"})
    )
    values = {"country": "Chile"}
    assert render_messages(back, values) == render_messages(prompt, values)


def test_prompty_refuses_a_message_that_reads_as_a_role_marker(
    library: Library, tmp_path: Path
) -> None:
    library.new_prompt("Tricky", system="Rules:\nuser:\nnever mind", user_template="hi")
    with pytest.raises(ExportFailed, match="role marker"):
        export(library, "prompty", tmp_path / "t.prompty")
    assert not (tmp_path / "t.prompty").exists()


def test_prompty_without_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "x.prompty"
    path.write_text("system:\nhello\n")
    with pytest.raises(ImportFailed, match="front matter"):
        read_package(path)


# -- OpenAI chat JSONL ----------------------------------------------------------------------


def test_openai_jsonl_from_the_fine_tuning_guide() -> None:
    package = read_package(FIXTURES / "marv.jsonl")
    (imported,) = package.prompts
    assert imported.prompt.system == "Marv is a factual chatbot that is also sarcastic."
    assert imported.prompt.user_template == "{{ input }}"
    (test_set,) = package.test_sets
    assert test_set.prompt_id == imported.prompt.id
    assert len(test_set.rows) == 3
    assert test_set.rows[0].vars == {"input": "What's the capital of France?"}
    assert test_set.rows[0].expected == "Paris, as if everyone doesn't know that already."


def test_openai_jsonl_export_renders_examples_and_rows(library: Library, tmp_path: Path) -> None:
    prompt = rich_library(library)
    out = tmp_path / "train.jsonl"
    export(library, "openai-jsonl", out, [prompt.id])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4  # 2 few-shot examples + 2 test rows
    assert lines[1]["messages"] == [
        {"role": "system", "content": "You are a geography tutor."},
        {"role": "user", "content": "What is the capital of Spain?"},
        {"role": "assistant", "content": "Madrid"},
    ]
    assert lines[3]["messages"][1]["content"] == "What is the capital of Kenya?"


def test_openai_jsonl_reports_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "yo"}]}\n'
        "not json\n"
        '{"messages": [{"role": "tool", "content": "x"}]}\n'
        '{"messages": [{"role": "user", "content": "no answer"}]}\n'
    )
    with pytest.raises(ImportFailed) as caught:
        read_package(path)
    assert [p.where.split(": ")[1] for p in caught.value.problems] == [
        "line 2",
        "line 3",
        "line 4",
    ]


# -- LangChain -------------------------------------------------------------------------------


def test_langchain_prompt_and_few_shot_files() -> None:
    (joke,) = read_package(FIXTURES / "joke_prompt.json").prompts
    assert joke.prompt.user_template == (
        "Tell me a {{ adjective }} joke about {{ content }}. Use {curly} braces if you like."
    )
    from workbench.core.templates import render_template

    rendered = render_template(joke.prompt.user_template, {"adjective": "dry", "content": "tax"})
    assert rendered == "Tell me a dry joke about tax. Use {curly} braces if you like."

    (few,) = read_package(FIXTURES / "few_shot_prompt.json").prompts
    prompt = few.prompt
    assert prompt.few_shot.style is FewShotStyle.INLINE
    assert prompt.few_shot.inline_header == "Write antonyms for the following words."
    messages = render_messages(prompt, {"adjective": "big"})
    assert messages[-1].content == (
        "Write antonyms for the following words.\n\nInput: happy\nOutput: sad\n\n"
        "Input: tall\nOutput: short\n\nInput: big\nOutput:"
    )
    (renamed,) = read_package(FIXTURES / "few_shot_word_antonym.json").prompts
    assert render_messages(renamed.prompt, {"adjective": "big"})[-1].content == (
        "Write antonyms for the following words.\n\nWord: happy\nAntonym: sad\n\n"
        "Word: tall\nAntonym: short\n\nWord: big\nAntonym:"
    )


def test_langchain_export_is_an_f_string_langchain_can_load(
    library: Library, tmp_path: Path
) -> None:
    prompt = library.new_prompt("Joke", user_template="A {{ kind }} joke, in {braces}.")
    out = tmp_path / "joke.json"
    export(library, "langchain", out, [prompt.id])
    data = json.loads(out.read_text())
    assert data["template"] == "A {kind} joke, in {{braces}}."
    assert data["template_format"] == "f-string" and data["input_variables"] == ["kind"]
    assert data["template"].format(kind="dry") == "A dry joke, in {braces}."
    (back,) = read_package(out).prompts
    assert back.prompt.user_template == "A {{ kind }} joke, in {braces}."

    logic = library.new_prompt("Logic", user_template="{% if x %}yes{% endif %}")
    export(library, "langchain", tmp_path / "logic.json", [logic.id])
    assert json.loads((tmp_path / "logic.json").read_text())["template_format"] == "jinja2"


def test_langchain_refuses_unsupported_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"_type": "prompt", "template": "{a.b} and {0} and {x!r}"}))
    with pytest.raises(ImportFailed, match="unsupported placeholder"):
        read_package(path)
    path.write_text(json.dumps({"_type": "chat", "messages": []}))
    with pytest.raises(ImportFailed, match="'chat' is not supported"):
        read_package(path)


# -- Markdown, folders, format choice -----------------------------------------------------


def test_markdown_export_for_review(library: Library, tmp_path: Path) -> None:
    rich_library(library)
    out = tmp_path / "prompts.md"
    export(library, "markdown", out)
    text = out.read_text()
    assert "## Capital" in text and "## Greeting" in text
    assert "```jinja\nWhat is the capital of {{ country }}?\n```" in text
    assert "| `country` | France | a country |" in text
    assert "### Chain of thought: zero shot" in text
    assert "| Chile | Santiago |" in text
    assert "Soft prompt **capital soft**: 4 virtual tokens" in text
    with pytest.raises(ImportFailed, match="cannot be imported"):
        exchange.parse_bytes("markdown", out.read_bytes(), str(out))


def test_one_prompt_per_file_formats_write_a_folder(library: Library, tmp_path: Path) -> None:
    rich_library(library)
    with pytest.raises(ExportFailed, match="choose a folder"):
        export(library, "prompty", tmp_path / "all.prompty")
    report = export(library, "prompty", tmp_path / "all")
    assert [p.name for p in report.paths] == ["Capital.prompty", "Greeting.prompty"]
    package = read_package(tmp_path / "all", "prompty")
    assert sorted(p.prompt.name for p in package.prompts) == ["Capital", "Greeting"]


def test_a_folder_import_is_all_or_nothing(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.prompty").write_bytes((FIXTURES / "basic.prompty").read_bytes())
    (folder / "bad.prompty").write_text("no front matter")
    with pytest.raises(ImportFailed) as caught:
        read_package(folder, "prompty")
    assert [Path(p.where.split(":")[0]).name for p in caught.value.problems] == ["bad.prompty"]


def test_format_guessing_and_unknown_formats(tmp_path: Path) -> None:
    assert exchange.guess_format(Path("x.prompty")) == "prompty"
    assert exchange.guess_format(Path("x.yml")) == "promptfoo"
    assert exchange.guess_format(Path("x.zip")) == "bundle"
    with pytest.raises(ValueError, match="--format"):
        exchange.guess_format(Path("x.txt"))
    with pytest.raises(ValueError, match="unknown format"):
        exchange.format_module("word")


def test_imported_prompts_are_valid_library_prompts(library: Library) -> None:
    for fixture in sorted(FIXTURES.iterdir()):
        plan = plan_file(library, fixture)
        plan.apply()
    names = [s.name for s in library.search()]
    assert "Basic Prompt" in names and "marv" in names and "chat-translator" in names
    reread = Library(library.root)
    assert not reread.problems
    for summary in reread.search():
        prompt: Prompt = reread.get_prompt(summary.id)
        assert prompt.cot.mode is CoTMode.OFF


def test_a_document_met_twice_in_one_import_is_imported_once(
    library: Library, tmp_path: Path
) -> None:
    rich_library(library)
    folder = tmp_path / "two copies"
    folder.mkdir()
    export(library, "bundle", folder / "a.zip")
    (folder / "b.zip").write_bytes((folder / "a.zip").read_bytes())
    target = Library(tmp_path / "target")
    plan = plan_file(target, folder, "bundle")
    repeated = [i for i in plan.items if "more than once" in i.clash]
    assert len(repeated) == 4 and {i.resolution for i in repeated} == {Resolution.SKIP}
    result = plan.apply()
    assert sorted(result.added) == ["Capital", "Greeting", "capital soft", "capitals"]
    assert len(Library(target.root).search()) == 2


def test_prompty_with_front_matter_only(tmp_path: Path) -> None:
    """Found by the fuzzer: no body at all is a clear error, not a crash."""
    path = tmp_path / "empty.prompty"
    path.write_text("---\nname: x\n---")
    with pytest.raises(ImportFailed, match="empty: no messages"):
        read_package(path)


# -- hostile and odd input found in review: each gives a clear error or is kept ---------


def test_prompty_role_markers_do_not_backtrack_over_blank_lines() -> None:
    data = b"---\nname: x\n---\n" + b" \n" * 3000 + b"user:\nhi\n"
    (imported,) = exchange.parse_bytes("prompty", data, "blank.prompty").prompts
    assert imported.prompt.user_template == "hi"


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        "a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n"
        "prompts: [hi]\ntests:\n  - vars: {x: *a1}\n"
    )
    with pytest.raises(ImportFailed, match="aliases"):
        read_package(laughs)


@pytest.mark.parametrize(
    ("fmt", "data", "expected"),
    [
        ("promptfoo", b"prompts: [hi]\ntests:\n  - vars: {d: 2020-01-02}\n", None),
        ("promptfoo", b"prompts: [hi]\ntests:\n  - vars: {n: " + b"9" * 5000 + b"}\n", "YAML"),
        ("langchain", b'{"_type": "prompt", "template": "x", "n": ' + b"9" * 5000 + b"}", "JSON"),
        ("openai-jsonl", b'{"messages": [], "n": ' + b"9" * 5000 + b"}\n", "JSON"),
        ("prompty", b"---\nsample: {d: 2020-01-02}\n---\nuser:\nhi\n", None),
    ],
)
def test_odd_scalars_are_text_or_clear_errors(fmt: str, data: bytes, expected: str | None) -> None:
    if expected is None:
        package = exchange.parse_bytes(fmt, data, "odd")
        values = [*(r.vars for t in package.test_sets for r in t.rows)]
        values += [p.prompt.sample_values for p in package.prompts if p.prompt.sample_values]
        assert {"d": "2020-01-02"} in values
    else:
        with pytest.raises(ImportFailed, match=expected):
            exchange.parse_bytes(fmt, data, "odd")


def _bundle_with(library: Library, tmp_path: Path, path: str, body: bytes) -> bytes:
    """A valid bundle with one more (or one replaced) entry, its manifest updated."""
    import hashlib

    entries = _valid_bundle(library, tmp_path)
    entries[path] = body
    manifest = json.loads(entries["manifest.json"])
    manifest["contents"] = [e for e in manifest["contents"] if e["path"] != path]
    manifest["contents"].append(
        {"path": path, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    )
    entries["manifest.json"] = json.dumps(manifest).encode()
    return _zip(entries)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"kind": [1]}, "unknown document kind"),
        (
            {"kind": "prompt", "schema_version": 1, "name": "x", "examples": [], "few_shot": "s"},
            "few_shot",
        ),
        (
            {"kind": "prompt", "name": "x", "cot": {"answer_pattern": "(" * 3000 + ")" * 3000}},
            "regular expression",
        ),
        (
            {"kind": "prompt", "name": "x", "cot": {"answer_pattern": "a{99999999999999999999}"}},
            "regular expression",
        ),
        ({"kind": "prompt", "name": "x\ud800"}, "not valid"),
    ],
)
def test_bundle_documents_that_break_the_schema_are_clear_errors(
    document: dict, expected: str, library: Library, tmp_path: Path
) -> None:
    document = {"id": "odd1", **document}
    body = json.dumps(document).encode()
    data = _bundle_with(library, tmp_path, "prompts/odd1.json", body)
    with pytest.raises(ImportFailed, match=expected) as caught:
        exchange.parse_bytes("bundle", data, "odd.zip")
    assert not any(p.message.startswith(exchange.UNEXPECTED) for p in caught.value.problems)


def test_a_damaged_zip_version_field_is_a_clear_error(library: Library, tmp_path: Path) -> None:
    data = bytearray(_zip(_valid_bundle(library, tmp_path)))
    at = data.find(b"PK\x01\x02")  # the central directory's "version needed to extract"
    data[at + 6 : at + 8] = (99).to_bytes(2, "little")
    with pytest.raises(ImportFailed):
        exchange.parse_bytes("bundle", bytes(data), "version.zip")


def test_a_tensor_of_another_hidden_size_is_refused(library: Library, tmp_path: Path) -> None:
    entries = _valid_bundle(library, tmp_path)
    tensor_entry = next(n for n in entries if n.endswith(".safetensors"))
    data = _bundle_with(library, tmp_path, tensor_entry, tensor_bytes(tokens=4, hidden=6))
    with pytest.raises(ImportFailed, match="hidden size 8"):
        exchange.parse_bytes("bundle", data, "hidden.zip")


def test_entry_names_with_a_trailing_newline_or_in_two_cases_are_refused(
    library: Library, tmp_path: Path
) -> None:
    entries = _valid_bundle(library, tmp_path)
    name = next(n for n in entries if n.startswith("prompts/"))
    with pytest.raises(ImportFailed, match="not a bundle path"):
        exchange.parse_bytes("bundle", _zip({**entries, name + "\n": b"{}"}), "nl.zip")
    upper = "prompts/" + name.removeprefix("prompts/").upper().replace(".JSON", ".json")
    with pytest.raises(ImportFailed, match="appears twice"):
        exchange.parse_bytes("bundle", _zip({**entries, upper: entries[name]}), "case.zip")


def test_ids_that_differ_only_in_case_are_imported_as_copies(
    library: Library, tmp_path: Path
) -> None:
    library.add_prompt_verbatim(Prompt(id="abc", name="Lower", user_template="x"))
    source = Library(tmp_path / "source")
    source.add_prompt_verbatim(Prompt(id="ABC", name="Upper", user_template="y"))
    out = tmp_path / "upper.zip"
    export(source, "bundle", out)
    plan = plan_file(library, out)
    (item,) = plan.items
    assert item.resolution is Resolution.COPY and "only in case" in item.clash
    plan.apply()
    assert library.get_prompt("abc").name == "Lower"
    assert sorted(s.name for s in library.search()) == ["Lower", "Upper"]


def test_a_soft_prompt_with_a_new_tensor_is_not_unchanged(library: Library, tmp_path: Path) -> None:
    rich_library(library)
    (soft,) = library.soft_prompts.values()
    out = tmp_path / "b.zip"
    export(library, "bundle", out)
    library.soft_prompt_tensor_path(soft).write_bytes(tensor_bytes(seed=5))
    plan = plan_file(library, out)
    item = next(i for i in plan.items if i.kind == "soft prompt")
    assert item.resolution is Resolution.COPY


def test_openai_jsonl_keeps_unicode_line_separators(library: Library, tmp_path: Path) -> None:
    prompt = library.new_prompt("Sep", user_template="{{ input }}")
    library.add_test_set_verbatim(
        TestSet(
            name="t",
            prompt_id=prompt.id,
            rows=[TestRow(vars={"input": "one\u2028two\x85three"}, expected="ok\u2029")],
        )
    )
    out = tmp_path / "sep.jsonl"
    export(library, "openai-jsonl", out, [prompt.id])
    (test_set,) = read_package(out).test_sets
    assert test_set.rows[0].vars == {"input": "one\u2028two\x85three"}
    assert test_set.rows[0].expected == "ok\u2029"


@pytest.mark.parametrize("template", ["[1, 2, 3]", '[{"role": "user", "content": "Say hi"}]'])
def test_promptfoo_templates_that_look_like_json_survive(
    template: str, library: Library, tmp_path: Path
) -> None:
    prompt = library.new_prompt("Listy", user_template=template)
    out = tmp_path / "listy.yaml"
    export(library, "promptfoo", out, [prompt.id])
    (back,) = read_package(out).prompts
    assert back.prompt.user_template == template


def test_nan_in_a_soft_prompt_round_trips_through_the_library(library: Library) -> None:
    import math

    soft = SoftPrompt(
        name="diverged",
        base_model="m",
        base_model_hash="0" * 64,
        num_virtual_tokens=4,
        tensor_file="nan1.safetensors",
        id="nan1",
        metrics={"loss": float("nan")},
        curves={"train_loss": [1.0, float("inf")]},
    )
    library.save_soft_prompt(soft, tensor_bytes())
    again = Library(library.root)
    assert not again.problems
    kept = again.soft_prompts["nan1"]
    assert math.isnan(kept.metrics["loss"]) and kept.curves["train_loss"][1] == float("inf")


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ImportFailed, match="not a regular file"):
        read_package(fifo)


def test_importing_a_promptfoo_config_twice_adds_nothing_the_second_time(
    library: Library,
) -> None:
    plan_file(library, FIXTURES / "promptfooconfig.yaml").apply()
    before = snapshot(library.root)
    again = plan_file(library, FIXTURES / "promptfooconfig.yaml")
    assert {i.resolution for i in again.items} == {Resolution.UNCHANGED}
    result = again.apply()
    assert result.added == [] and len(result.unchanged) == 4  # 2 prompts, 2 test sets
    assert snapshot(library.root) == before
