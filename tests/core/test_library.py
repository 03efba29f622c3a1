"""The library on disk: save/load, history/diff/restore, search, bad files, deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.library import Library, LibraryError, seed_library
from workbench.core.models import Prompt, RunRecord, SoftPrompt, TestRow, TestSet
from workbench.core.resources import resource_path


def test_save_and_reload(library: Library, library_dir: Path) -> None:
    saved = library.new_prompt("Greeter", user_template="Hi {{ name }}", tags=["demo"])
    path = library_dir / "prompts" / f"{saved.id}.json"
    assert json.loads(path.read_text())["name"] == "Greeter"
    again = Library(library_dir)
    assert again.prompts[saved.id] == saved
    assert again.problems == []


def test_files_are_human_readable_json(library: Library, library_dir: Path) -> None:
    saved = library.new_prompt("Readable", system="line1\nline2")
    text = (library_dir / "prompts" / f"{saved.id}.json").read_text()
    assert text.startswith("{\n  ")  # pretty-printed: one field per line, diffs well
    assert '"schema_version": 2' in text


def test_every_change_keeps_the_previous_version(library: Library) -> None:
    v1 = library.new_prompt("Doc", system="first")
    v2 = library.save_prompt(v1.model_copy(update={"system": "second"}))
    v3 = library.save_prompt(v2.model_copy(update={"system": "third"}))
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    history = library.history(v1.id)
    assert [p.version for p in history] == [1, 2, 3]
    assert [p.system for p in history] == ["first", "second", "third"]
    diff = library.diff(v1.id, 1)
    assert '-  "system": "first"' in diff and '+  "system": "third"' in diff


def test_unchanged_save_does_not_add_a_version(library: Library) -> None:
    v1 = library.new_prompt("Same", system="x")
    assert library.save_prompt(v1).version == 1
    assert len(library.history(v1.id)) == 1


def test_restore_makes_an_old_version_current_as_a_new_version(
    library: Library, library_dir: Path
) -> None:
    v1 = library.new_prompt("R", system="original")
    library.save_prompt(v1.model_copy(update={"system": "edited"}))
    restored = library.restore_version(v1.id, 1)
    assert restored.system == "original"
    assert restored.version == 3
    assert [p.system for p in Library(library_dir).history(v1.id)] == [
        "original",
        "edited",
        "original",
    ]


def test_search_by_text_and_tag(library: Library) -> None:
    library.new_prompt("Sentiment classifier", tags=["classification"], system="Label reviews")
    library.new_prompt("Summariser", tags=["writing"], user_template="Summarise {{ text }}")
    library.new_prompt("Topic labeller", tags=["classification", "topics"])
    assert [p.name for p in library.search("sentiment")] == ["Sentiment classifier"]
    assert [p.name for p in library.search("SUMMARISE")] == ["Summariser"]
    assert [p.name for p in library.search(tags=["classification"])] == [
        "Sentiment classifier",
        "Topic labeller",
    ]
    assert [p.name for p in library.search("label", tags=["topics"])] == ["Topic labeller"]
    assert library.search("nothing-like-this") == []
    assert library.tags() == ["classification", "topics", "writing"]


def test_find_by_name_or_id(library: Library) -> None:
    p = library.new_prompt("Alpha")
    assert library.find_prompt("alpha").id == p.id
    assert library.find_prompt(p.id).name == "Alpha"
    with pytest.raises(LibraryError, match="did you mean 'Alpha'"):
        library.find_prompt("Alpah")


def test_corrupt_and_unknown_files_are_reported_skipped_and_never_overwritten(
    library: Library, library_dir: Path
) -> None:
    good = library.new_prompt("Good")
    broken = library_dir / "prompts" / "broken1.json"
    broken.write_text('{"kind": "prompt", "name": ')
    invalid = library_dir / "prompts" / "invalid1.json"
    invalid.write_text(
        json.dumps({"kind": "prompt", "id": "invalid1", "name": "x", "few_shot": {"count": "many"}})
    )
    (library_dir / "prompts" / "notes.txt").write_text("mine")
    reloaded = Library(library_dir)
    assert list(reloaded.prompts) == [good.id]
    messages = {p.path.name: p.message for p in reloaded.problems}
    assert "not valid JSON" in messages["broken1.json"]
    assert "few_shot.count" in messages["invalid1.json"]
    assert messages["notes.txt"] == "unknown file; ignored"
    with pytest.raises(LibraryError, match="left untouched"):
        reloaded.save_prompt(Prompt(id="broken1", name="would overwrite"))
    assert broken.read_text() == '{"kind": "prompt", "name": '
    assert (library_dir / "prompts" / "notes.txt").read_text() == "mine"


def test_older_schema_file_on_disk_is_migrated_on_load(library_dir: Path) -> None:
    (library_dir / "prompts").mkdir(parents=True)
    (library_dir / "prompts" / "legacy.json").write_text(
        json.dumps(
            {
                "kind": "prompt",
                "schema_version": 1,
                "id": "legacy",
                "name": "Legacy",
                "template": "{{ q }}",
            }
        )
    )
    library = Library(library_dir)
    assert library.prompts["legacy"].user_template == "{{ q }}"
    saved = library.save_prompt(library.prompts["legacy"].model_copy(update={"name": "New"}))
    assert json.loads((library_dir / "prompts" / "legacy.json").read_text())["schema_version"] == 2
    assert saved.version == 2


def test_library_from_a_newer_release_is_refused(library_dir: Path) -> None:
    library_dir.mkdir()
    (library_dir / "workbench-library.json").write_text('{"kind": "library", "schema_version": 99}')
    with pytest.raises(LibraryError, match="newer release"):
        Library(library_dir)


def test_delete_goes_to_trash_and_can_be_undone(library: Library, library_dir: Path) -> None:
    p = library.new_prompt("Temp", system="a")
    library.save_prompt(p.model_copy(update={"system": "b"}))
    library.delete_prompt(p.id)
    assert p.id not in library.prompts
    assert p.id not in Library(library_dir).prompts
    assert library.trashed_prompt_ids() == [p.id]
    back = library.undelete_prompt(p.id)
    assert back.system == "b"
    assert [v.system for v in Library(library_dir).history(p.id)] == ["a", "b"]


def test_duplicate_and_rename(library: Library) -> None:
    p = library.new_prompt("Base", labels=["production"], system="s")
    copy = library.duplicate_prompt(p.id)
    assert copy.id != p.id and copy.name == "Base (copy)" and copy.system == "s"
    assert copy.labels == []  # a copy is not production
    renamed = library.rename_prompt(p.id, "Renamed")
    assert renamed.name == "Renamed" and renamed.version == 2
    with pytest.raises(LibraryError):
        library.rename_prompt(p.id, "  ")


def test_test_sets_soft_prompts_and_runs(library: Library, library_dir: Path) -> None:
    p = library.new_prompt("With data")
    ts = library.save_test_set(
        TestSet(name="cases", prompt_id=p.id, rows=[TestRow(vars={"a": "1"}, expected="x")])
    )
    sp = SoftPrompt(
        name="soft",
        prompt_id=p.id,
        base_model="m",
        base_model_hash="h",
        num_virtual_tokens=4,
        tensor_file="soft1.safetensors",
    )
    library.save_soft_prompt(sp, b"not really a tensor")
    run = library.save_run(RunRecord(prompt_id=p.id, model="m", backend="b", output="o"))
    again = Library(library_dir)
    assert again.test_sets_for(p.id) == [ts]
    assert again.soft_prompts_for(p.id) == [sp]
    assert again.soft_prompt_tensor_path(sp).read_bytes() == b"not really a tensor"
    assert [r.id for r in again.runs_for(p.id)] == [run.id]
    assert again.problems == []


def test_seed_sample_library_is_idempotent(library: Library) -> None:
    added = seed_library(library, resource_path("sample_library"))
    assert len(added) >= 6
    assert seed_library(library, resource_path("sample_library")) == []
    assert library.problems == []


def test_the_summary_index_follows_changes_made_outside_the_app(library_dir: Path) -> None:
    library = Library(library_dir)
    a = library.new_prompt("Alpha", system="first")
    b = library.new_prompt("Beta")
    library.close()  # writes the summary index
    assert library.index_path.exists()
    path_a = library_dir / "prompts" / f"{a.id}.json"
    edited = json.loads(path_a.read_text())
    edited["name"] = "Alpha edited in git"
    path_a.write_text(json.dumps(edited, indent=2))
    (library_dir / "prompts" / f"{b.id}.json").unlink()
    again = Library(library_dir)
    assert [s.name for s in again.search()] == ["Alpha edited in git"]
    assert again.get_prompt(a.id).name == "Alpha edited in git"


def test_a_damaged_index_is_rebuilt_from_the_files(library_dir: Path) -> None:
    library = Library(library_dir)
    library.new_prompt("Kept")
    library.close()
    library.index_path.write_text('{"version": 1, "entries": [1, 2')
    again = Library(library_dir)
    assert [s.name for s in again.search()] == ["Kept"] and again.problems == []


def test_a_file_corrupted_after_indexing_is_reported_when_read(library_dir: Path) -> None:
    library = Library(library_dir)
    p = library.new_prompt("Fragile")
    library.close()
    path = library_dir / "prompts" / f"{p.id}.json"
    indexed = Library(library_dir)  # summaries from the index, prompt not read yet
    path.write_text("{ not json")
    with pytest.raises(LibraryError, match="unreadable"):
        indexed.get_prompt(p.id)
    assert any(problem.path == path for problem in indexed.problems)
    assert p.id not in indexed.prompts


def test_drafts_keep_edits_without_making_versions(library: Library, library_dir: Path) -> None:
    p = library.new_prompt("Drafty", system="saved")
    assert library.draft(p.id) is None
    library.save_draft(p.model_copy(update={"system": "typing..."}))
    library.save_draft(p.model_copy(update={"system": "typing more"}))
    again = Library(library_dir)
    assert again.get_prompt(p.id).system == "saved"  # the CLI sees the saved version
    assert again.draft(p.id).system == "typing more"  # the app reopens the draft
    assert len(again.history(p.id)) == 1
    committed = again.commit_draft(again.draft(p.id))
    assert committed.version == 2 and committed.system == "typing more"
    assert again.draft(p.id) is None
    with pytest.raises(LibraryError):
        again.save_draft(Prompt(name="not in the library"))


def test_deleting_a_prompt_keeps_its_draft_for_undo(library: Library) -> None:
    p = library.new_prompt("Gone")
    library.save_draft(p.model_copy(update={"system": "wip"}))
    library.delete_prompt(p.id)
    assert library.draft(p.id) is None
    library.undelete_prompt(p.id)
    assert library.draft(p.id).system == "wip"


def test_a_damaged_history_or_draft_file_is_reported_once(library: Library) -> None:
    p = library.new_prompt("Damaged", system="first")
    library.save_prompt(p.model_copy(update={"system": "second"}))
    bad_version = library.history_dir / p.id / "v000001.json"
    bad_version.write_text("{ not json")
    bad_draft = library.drafts_dir / f"{p.id}.json"
    bad_draft.parent.mkdir(parents=True, exist_ok=True)
    bad_draft.write_text("{ not json")
    for _ in range(3):
        assert [v.version for v in library.history(p.id)] == [2]
        assert library.draft(p.id) is None
    paths = [problem.path for problem in library.problems]
    assert paths.count(bad_version) == 1 and paths.count(bad_draft) == 1
    assert len(library.problems) == 2


def test_runs_and_evaluations_made_within_one_second_list_newest_first(
    library: Library,
) -> None:
    """Stamped to the microsecond: to the second, two runs of one second tied and the
    random id decided which was shown as the newest."""
    from workbench.core.models import EvalRun

    prompt = library.new_prompt("p", user_template="{{ x }}")
    runs = [
        library.save_run(RunRecord(prompt_id=prompt.id, model="m", backend="b", output=str(i)))
        for i in range(5)
    ]
    assert [r.output for r in Library(library.root).runs_for(prompt.id)] == list("43210")
    evals = [
        library.save_eval_run(EvalRun(prompt_id=prompt.id, test_set_name=f"set {i}"))
        for i in range(5)
    ]
    reopened = Library(library.root).eval_runs_for(prompt.id)
    assert [r.id for r in reopened] == [r.id for r in reversed(evals)]
    assert len({r.created for r in runs}) == 5
