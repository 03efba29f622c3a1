"""Versions say what made them (edited, restored v1, imported, …), in a file beside the
history that older libraries lack, and two versions compare field by field as text."""

from __future__ import annotations

from pathlib import Path

from tests.core.exchange_helpers import rich_library
from workbench.core import exchange
from workbench.core.exchange.plan import Resolution
from workbench.core.library import Library
from workbench.core.models import FewShot, FewShotExample, GenerationParams
from workbench.core.prompt_diff import changes_text


def test_each_version_says_what_made_it_and_the_notes_survive_a_reopen(
    library: Library, library_dir: Path
) -> None:
    v1 = library.new_prompt("Doc", system="first")
    v2 = library.commit_draft(v1.model_copy(update={"system": "second"}))
    v3 = library.restore_version(v1.id, 1)
    v4 = library.rename_prompt(v1.id, "Document")
    copy = library.duplicate_prompt(v1.id)
    again = Library(library_dir)
    notes = [again.version_note(p) for p in again.history(v1.id)]
    assert notes == ["created", "edited", "restored v1", "renamed"]
    assert [v.version for v in (v2, v3, v4)] == [2, 3, 4]
    assert again.version_note(again.get_prompt(copy.id)) == "copied from 'Document'"
    assert (library_dir / "history" / v1.id / "notes.json").is_file()


def test_a_library_without_notes_reads_as_before_and_a_broken_notes_file_is_reported(
    library: Library, library_dir: Path
) -> None:
    v1 = library.new_prompt("Old", system="a")
    library.save_prompt(v1.model_copy(update={"system": "b"}))
    notes = library_dir / "history" / v1.id / "notes.json"
    assert not notes.exists()  # a plain save records nothing: files stay as they were
    assert [library.version_note(p) for p in library.history(v1.id)] == ["created", "edited"]
    notes.write_text("{not json")
    reopened = Library(library_dir)
    assert [reopened.version_note(p) for p in reopened.history(v1.id)] == ["created", "edited"]
    assert any("notes.json" in str(problem) for problem in reopened.problems)
    restored = reopened.restore_version(v1.id, 1)  # a new note replaces the broken file
    assert reopened.version_note(restored) == "restored v1"


def test_an_import_notes_the_versions_it_writes(library: Library, tmp_path: Path) -> None:
    source = Library(tmp_path / "source")
    prompt = rich_library(source)
    bundle = tmp_path / "shared.zip"
    exchange.export(source, "bundle", bundle)
    library.add_prompt_verbatim(source.get_prompt(prompt.id).model_copy(update={"system": "x"}))
    plan = exchange.plan_import(library, exchange.read_package(bundle, "bundle"), str(bundle))
    for i, item in enumerate(plan.items):
        if item.kind == "prompt" and item.target_id == prompt.id:
            plan.resolve(i, Resolution.REPLACE)
    plan.apply()
    replaced = library.get_prompt(prompt.id)
    assert library.version_note(replaced) == "imported"
    added = next(s for s in library.search() if s.name == "Greeting")
    assert library.version_note(library.get_prompt(added.id)) == "imported"


def test_versions_compare_field_by_field_with_text_as_lines(library: Library) -> None:
    v1 = library.new_prompt(
        "Sentiment",
        user_template="Label the review.\nReview: {{ review }}\nAnswer with one word.",
        few_shot=FewShot(examples=[FewShotExample(vars={"review": "great"}, output="positive")]),
    )
    edited = v1.model_copy(
        update={
            "user_template": "Label the review.\nReview: {{ review }}\nAnswer in one word.",
            "params": GenerationParams(temperature=0.7),
        }
    )
    library.save_prompt(edited)
    changes = library.changes(v1.id, 1)
    assert [c.field for c in changes] == ["User template", "Parameters"]
    template = {(line.kind, line.text) for line in changes[0].lines}
    assert ("removed", "Answer with one word.") in template
    assert ("added", "Answer in one word.") in template
    assert ("same", "Review: {{ review }}") in template
    assert ("added", "temperature: 0.7") in {(ln.kind, ln.text) for ln in changes[1].lines}
    text = changes_text(changes)
    assert "\\n" not in text and "── User template ──" in text
    assert "- Answer with one word.\n+ Answer in one word." in text
