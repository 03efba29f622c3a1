"""Finding soft prompts and test sets by name or id, and reading example and test-set
files from disk (workbench.core.flows.lookup)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.core.exchange_helpers import add_soft_prompt
from workbench.core.examples_io import ExamplesFormatError
from workbench.core.flows.lookup import (
    FileReadError,
    NotFoundError,
    find_soft_prompt,
    find_test_set,
    load_soft_prompt,
    load_virtual_tokens,
    read_examples_file,
    read_test_rows_file,
    read_test_set_file,
    read_text_file,
    resolve_test_set,
)
from workbench.core.library import Library, document_bytes
from workbench.core.models import FewShotExample, Prompt, TestRow, TestSet
from workbench.core.testsets_io import TestSetFormatError

# -- finding by id or name -----------------------------------------------------------


def test_a_soft_prompt_is_found_by_id_or_by_its_only_name(library: Library) -> None:
    first = add_soft_prompt(library, "tone", seed=1)
    second = add_soft_prompt(library, "length", seed=2)
    assert find_soft_prompt(library, first.id) == first
    assert find_soft_prompt(library, "length") == second
    tensor = load_soft_prompt(library, second)
    assert tensor.shape == (4, 8) and tensor.dtype == np.float32
    tokens = load_virtual_tokens(library, second)
    assert np.array_equal(tokens.embeddings, tensor)


def test_an_id_wins_over_a_name(library: Library) -> None:
    first = add_soft_prompt(library, "tone")
    named_like_the_id = add_soft_prompt(library, first.id)
    assert find_soft_prompt(library, first.id) == first
    assert named_like_the_id.name == first.id


def test_an_ambiguous_name_lists_the_known_ones(library: Library) -> None:
    a = add_soft_prompt(library, "twin", seed=1)
    b = add_soft_prompt(library, "twin", seed=2)
    with pytest.raises(NotFoundError) as caught:
        find_soft_prompt(library, "twin")
    message = str(caught.value)
    assert message.startswith("more than one soft prompt 'twin' in the library (known: ")
    assert f"{a.id} (twin)" in message and f"{b.id} (twin)" in message


def test_a_missing_name_lists_the_known_ones(library: Library) -> None:
    kept = library.save_test_set(TestSet(name="Reviews"))
    with pytest.raises(NotFoundError) as caught:
        find_test_set(library, "Nope")
    assert str(caught.value) == (
        f"no single test set 'Nope' in the library (known: {kept.id} (Reviews))"
    )
    with pytest.raises(NotFoundError, match=r"\(known: none\)"):
        find_soft_prompt(library, "Nope")
    assert find_test_set(library, "Reviews") == kept
    assert find_test_set(library, kept.id) == kept


# -- reading text files --------------------------------------------------------------


def test_read_text_file_drops_a_bom_and_keeps_every_newline(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b'\xef\xbb\xbfreview,expected\r\n"line one\r\nline two",ok\rmore\n')
    assert read_text_file(path) == 'review,expected\r\n"line one\r\nline two",ok\rmore\n'


def test_read_text_file_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(FileReadError, match=r"^could not read missing\.csv: "):
        read_text_file(tmp_path / "missing.csv")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("review\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(
        FileReadError, match=r"^could not read latin1\.csv: not UTF-8 text \(byte 10\)"
    ):
        read_text_file(latin)


def test_a_crlf_file_keeps_returns_and_newlines_inside_cells(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b'\xef\xbb\xbfreview,expected\r\n"two\r\nlines",pos\r\n"a\rreturn",neg\r\n')
    assert read_test_rows_file(path) == [
        TestRow(vars={"review": "two\r\nlines"}, expected="pos"),
        TestRow(vars={"review": "a\rreturn"}, expected="neg"),
    ]


def test_examples_from_csv_tsv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "shots.csv"
    csv_path.write_bytes(b'topic,output\r\nfog,"Soft\r\ngrey."\r\n')
    assert read_examples_file(csv_path, ["topic"]) == [
        FewShotExample(vars={"topic": "fog"}, output="Soft\r\ngrey.")
    ]
    tsv_path = tmp_path / "shots.tsv"
    tsv_path.write_text("input\toutput\nHi\tHey\n", encoding="utf-8")
    assert read_examples_file(tsv_path) == [FewShotExample(input="Hi", output="Hey")]
    # JSON Lines by suffix, or by content when the suffix says nothing
    for name in ("shots.jsonl", "shots.data"):
        path = tmp_path / name
        path.write_text(json.dumps({"input": "a\rb", "output": "c"}) + "\n", encoding="utf-8")
        assert read_examples_file(path) == [FewShotExample(input="a\rb", output="c")]


def test_a_bad_examples_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "shots.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n{"input": \n', encoding="utf-8")
    with pytest.raises(ExamplesFormatError, match=r"shots\.jsonl: line 2"):
        read_examples_file(path)


def test_a_bad_test_rows_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"review": "a", "expected": "b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(TestSetFormatError, match=r"rows\.jsonl: line 2"):
        read_test_rows_file(path)


# -- test-set files and resolving a test set ------------------------------------------

ROWS = [TestRow(vars={"review": "good"}, expected="pos"), TestRow(vars={"review": "bad"})]


def test_read_test_set_file_from_csv_jsonl_and_a_library_document(tmp_path: Path) -> None:
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("review,expected\ngood,pos\nbad,\n", encoding="utf-8")
    from_csv = read_test_set_file(csv_path)
    assert from_csv.name == "reviews" and from_csv.rows == ROWS
    jsonl_path = tmp_path / "more.jsonl"
    jsonl_path.write_text(
        '{"review": "good", "expected": "pos"}\n{"vars": {"review": "bad"}, "expected": ""}\n',
        encoding="utf-8",
    )
    from_jsonl = read_test_set_file(jsonl_path)
    assert from_jsonl.name == "more" and from_jsonl.rows == ROWS
    stored = TestSet(name="Stored", rows=ROWS, labels=["pos", "neg"])
    json_path = tmp_path / "stored.json"
    json_path.write_bytes(document_bytes(stored))
    assert read_test_set_file(json_path) == stored


def test_a_json_file_that_holds_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prompt.json"
    path.write_bytes(document_bytes(Prompt(name="Not a test set")))
    with pytest.raises(FileReadError, match="holds a prompt, not a test set"):
        read_test_set_file(path)


def test_resolve_test_set(library: Library, tmp_path: Path) -> None:
    prompt = library.new_prompt("Classifier")
    with pytest.raises(NotFoundError, match="has no test set; pass --test-set FILE"):
        resolve_test_set(library, prompt, None)
    with pytest.raises(NotFoundError, match="has no test set"):
        resolve_test_set(None, prompt, None)
    second = library.save_test_set(TestSet(name="b-second", prompt_id=prompt.id, rows=ROWS))
    first = library.save_test_set(TestSet(name="A-first", prompt_id=prompt.id))
    assert resolve_test_set(library, prompt, None) == first  # by name, ignoring case
    assert resolve_test_set(library, prompt, second.id) == second
    assert resolve_test_set(library, prompt, "b-second") == second
    path = tmp_path / "b-second.csv"  # a file wins over a name
    path.write_text("review,expected\nfrom the file,\n", encoding="utf-8")
    from_file = resolve_test_set(library, prompt, str(path))
    assert from_file.rows == [TestRow(vars={"review": "from the file"})]
    assert resolve_test_set(None, prompt, str(path)).rows == from_file.rows
    with pytest.raises(NotFoundError, match=r"^no test set 'missing' \(give its name, id"):
        resolve_test_set(library, prompt, "missing")
    with pytest.raises(NotFoundError, match=r"^no test set 'b-second'"):
        resolve_test_set(None, prompt, "b-second")  # no library: only files
