"""Slugs and the first free name in a series (workbench.core.names) and their callers:
model ids, export file names, import copies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.core.backends.registry import ModelCatalog, _slug, spec_for
from workbench.core.exchange.base import slug as export_slug
from workbench.core.exchange.base import unique_file_names
from workbench.core.exchange.plan import _free_name
from workbench.core.models import Prompt
from workbench.core.names import slug, unique_name

# The helpers each caller had before they shared workbench.core.names: the same text must
# keep giving the same id or file name (ids of added models are stored in models.json).


def _old_registry_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_").lower()[:56] or "model"


def _old_export_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:60] or "prompt"


SAMPLES = [
    "Greeter",
    "  My Model v1.5 (Q4_K_M)  ",
    "...hidden.",
    "__init__",
    "a/b\\c:d*e?f",
    "Ünïcödé naïve café",
    "",
    "---",
    "日本語",
    "x" * 55 + " tail",  # the cut lands on the "-" that replaced the space
    "y" * 59 + ".json more",
    "Mixed.Case-Name_01",
    "tab\tand\nnewline",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_slugs_are_what_each_caller_made_before(text: str) -> None:
    assert _slug(text) == _old_registry_slug(text)
    if text:
        assert spec_for("https://example.test/v1", name=text).id == _old_registry_slug(text)
    assert export_slug(text) == _old_export_slug(text)


def test_slug_rules() -> None:
    assert slug("Hello, World!") == "Hello-World"
    assert slug("v1.5 model") == "v1.5-model"  # dots are kept by default
    assert slug("v1.5 model", keep="_-") == "v1-5-model"
    assert slug("A B", lower=True) == "a-b"
    assert slug("!!!", "fallback") == "fallback"
    assert slug("abcdef", max_length=3) == "abc"
    assert slug("a" * 100, max_length=None) == "a" * 100
    assert slug("..a..") == "a" and slug("_a_", keep="-") == "a"


def test_unique_name_series() -> None:
    assert unique_name("Untitled", []) == "Untitled"
    assert unique_name("Untitled", ["Untitled"]) == "Untitled 2"
    assert unique_name("Untitled", ["Untitled", "Untitled 2"]) == "Untitled 3"
    assert unique_name("step", ["step1", "step2"], "{stem}{n}", start=1, bare=False) == "step3"
    assert unique_name("step", [], "{stem}{n}", start=1, bare=False) == "step1"
    assert unique_name("Doc", ["doc"], casefold=True) == "Doc 2"
    assert unique_name("Doc", ["doc"]) == "Doc"
    assert unique_name("a{n}", ["a{n}"], "{stem}-{n}") == "a{n}-2"  # braces in the stem


def test_import_copies_are_named_with_a_number_in_brackets() -> None:
    assert _free_name("Greeter", set()) == "Greeter"
    assert _free_name("Greeter", {"greeter"}) == "Greeter (2)"
    assert _free_name("Greeter", {"greeter", "greeter (2)"}) == "Greeter (3)"


def test_export_file_names_differ_ignoring_case() -> None:
    prompts = [Prompt(name=n) for n in ["Greeter", "greeter", "GREETER", "greeter-2", "!!"]]
    names = [name for _, name in unique_file_names(prompts, ".json")]
    assert names == [
        "Greeter.json",
        "greeter-2.json",
        "GREETER-3.json",
        "greeter-2-2.json",
        "prompt.json",
    ]


def test_added_models_get_free_ids(tmp_path: Path) -> None:
    catalog = ModelCatalog(tmp_path)
    first = catalog.add(spec_for("https://example.test/v1", name="Server"))
    second = catalog.add(spec_for("https://example.test/v1", name="Server"))
    third = catalog.add(spec_for("https://example.test/v1", name="server"))
    assert (first.id, second.id, third.id) == ("server", "server-2", "server-3")
    assert [m.id for m in ModelCatalog(tmp_path).user_models] == [
        "server",
        "server-2",
        "server-3",
    ]
