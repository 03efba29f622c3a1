"""The resource locator and the sample library it serves."""

from __future__ import annotations

from collections import Counter

from workbench.core.library import load_folder
from workbench.core.models import CoTMode, Prompt, TestSet
from workbench.core.resources import resource_path, resources_dir
from workbench.core.templates import render_preview


def test_resources_are_found_from_the_checkout() -> None:
    assert (resources_dir() / "sample_library").is_dir()
    assert resource_path("icons", "app.svg").read_text().startswith("<svg")


def test_sample_library_is_valid_and_complete() -> None:
    root = resource_path("sample_library")
    prompts, problems, _ = load_folder(root / "prompts", Prompt)
    test_sets, more, _ = load_folder(root / "test_sets", TestSet)
    assert problems == [] and more == []
    modes = {p.cot.mode for p in prompts.values()}
    assert {CoTMode.SCAFFOLD, CoTMode.CHAIN} <= modes
    for test_set in test_sets.values():
        prompt = prompts[test_set.prompt_id]
        for row in test_set.rows:
            render_preview(prompt, row.vars)  # every row renders without a template error
    classification = [t for t in test_sets.values() if t.labels]
    assert classification, "a classification test set with a label set is needed for graduation"
    biggest = max(classification, key=lambda t: len(t.rows))
    assert len(biggest.rows) >= 60
    counts = Counter(r.expected for r in biggest.rows)
    assert set(counts) == set(biggest.labels or [])
    assert prompts[biggest.prompt_id].few_shot.examples
