"""Test sets from CSV and JSONL, written back out, and split into train/validation/test."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.models import TestRow, TestSet
from workbench.core.testsets_io import (
    TestSetFormatError,
    parse_test_set_csv,
    parse_test_set_jsonl,
    rows_in_split,
    split_test_set,
    test_set_to_csv,
    test_set_to_jsonl,
)


def _jsonl(*records: object) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


def _problem_lines(error: pytest.ExceptionInfo[TestSetFormatError]) -> list[int]:
    return [line for line, _ in error.value.problems]


# ---------------------------------------------------------------------------
# CSV


def test_csv_with_variables_group_and_split() -> None:
    text = (
        "review,stars,expected,group,split\n"
        "Great!,5,positive,short,train\n"
        '"Slow, and\nbroken",1,negative,,Validation\n'
        "Meh,3,neutral,,\n"
    )
    assert parse_test_set_csv(text) == [
        TestRow(
            vars={"review": "Great!", "stars": "5"},
            expected="positive",
            group="short",
            split="train",
        ),
        TestRow(
            vars={"review": "Slow, and\nbroken", "stars": "1"},
            expected="negative",
            split="validation",
        ),
        TestRow(vars={"review": "Meh", "stars": "3"}, expected="neutral"),
    ]


def test_csv_header_names_are_normalised_and_bom_and_blank_lines_skipped() -> None:
    text = "\ufeff review , Expected \r\n\r\nhi,there\r\n,,\r\n"
    assert parse_test_set_csv(text) == [TestRow(vars={"review": "hi"}, expected="there")]


def test_csv_only_expected_and_header_only() -> None:
    assert parse_test_set_csv("expected\nyes\n") == [TestRow(expected="yes")]
    assert parse_test_set_csv("review,expected\n") == []


def test_csv_tab_delimited() -> None:
    assert parse_test_set_csv("q\texpected\na, b\tc\n", delimiter="\t") == [
        TestRow(vars={"q": "a, b"}, expected="c")
    ]


def test_csv_variables_restrict_the_columns() -> None:
    assert parse_test_set_csv("review,expected\nx,y\n", variables=["review"])
    with pytest.raises(TestSetFormatError, match="'other' is not a variable of the prompt"):
        parse_test_set_csv("other,expected\nx,y\n", variables=["review"])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("review,label", "no 'expected' column"),
        ("review,,expected", "column 2 has no name"),
        ("review,Review,review,expected", "'review' appears twice"),
        ("two words,expected", "'two words' is not a variable name"),
        ("expected,EXPECTED", "'expected' appears twice"),
    ],
)
def test_csv_bad_header(header: str, message: str) -> None:
    with pytest.raises(TestSetFormatError, match=message) as error:
        parse_test_set_csv(f"\n{header}\nx,y\n", source="data.csv")
    assert _problem_lines(error) == [2]
    assert str(error.value).startswith("data.csv: line 2: header:")


def test_csv_collects_every_bad_row_and_returns_nothing() -> None:
    text = "review,expected,split\nok,yes,train\ntoo,many,cells,here\nfine,no,dev\nshort\n"
    with pytest.raises(TestSetFormatError) as error:
        parse_test_set_csv(text)
    assert _problem_lines(error) == [3, 4, 5]
    assert "expected 3 fields like the header, got 4" in str(error.value)
    assert "split 'dev' is not one of train, validation, test" in str(error.value)


def test_csv_line_numbers_count_lines_inside_quoted_cells() -> None:
    text = 'review,expected\n"one\ntwo\nthree",x\nbad\n'
    with pytest.raises(TestSetFormatError) as error:
        parse_test_set_csv(text)
    assert _problem_lines(error) == [5]


def test_csv_broken_quoting_and_empty_text() -> None:
    with pytest.raises(TestSetFormatError, match="not valid CSV") as error:
        parse_test_set_csv('review,expected\nok,yes\n"a"b,c\n')
    assert _problem_lines(error) == [3]
    with pytest.raises(TestSetFormatError, match="empty") as error:
        parse_test_set_csv(" \n\n")
    assert _problem_lines(error) == [0]


def test_many_problems_are_summarised() -> None:
    text = "review,expected\n" + "bad\n" * 8
    with pytest.raises(TestSetFormatError) as error:
        parse_test_set_csv(text)
    assert len(error.value.problems) == 8
    assert str(error.value).endswith("and 3 more")


def test_csv_export_columns_and_quoting() -> None:
    test_set = TestSet(
        name="t",
        rows=[
            TestRow(vars={"b": "1", "a": 'say "hi", then\nleave'}, expected="x", split="test"),
            TestRow(vars={"c": "only c"}, expected="y", group="g"),
        ],
    )
    text = test_set_to_csv(test_set)
    assert text.splitlines()[0] == "b,a,c,expected,group,split"
    assert parse_test_set_csv(text) == [
        TestRow(vars={"b": "1", "a": 'say "hi", then\nleave', "c": ""}, expected="x", split="test"),
        # CSV gives every row every column: a missing variable reads back as empty text
        TestRow(vars={"b": "", "a": "", "c": "only c"}, expected="y", group="g"),
    ]


def test_csv_export_refuses_variables_named_like_the_fixed_columns() -> None:
    test_set = TestSet(name="t", rows=[TestRow(vars={"group": "a"}, expected="x")])
    with pytest.raises(ValueError, match="export as JSONL"):
        test_set_to_csv(test_set)
    assert parse_test_set_jsonl(test_set_to_jsonl(test_set)) == test_set.rows


# ---------------------------------------------------------------------------
# JSONL


def test_jsonl_nested_flat_and_chat_forms() -> None:
    text = _jsonl(
        {"vars": {"review": "Great!", "stars": 5}, "expected": "positive", "group": "g"},
        {"review": "Awful", "expected": "negative", "split": "test"},
        {
            "messages": [
                {"role": "system", "content": "Classify."},
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ignored"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Fine, "},
                        {"type": "text", "text": "I guess"},
                    ],
                },
                {"role": "assistant", "content": "neutral"},
            ],
            "split": "train",
        },
    )
    assert parse_test_set_jsonl("\n\n" + text + "\n   \n") == [
        TestRow(vars={"review": "Great!", "stars": "5"}, expected="positive", group="g"),
        TestRow(vars={"review": "Awful"}, expected="negative", split="test"),
        TestRow(vars={"input": "Fine, I guess"}, expected="neutral", split="train"),
    ]


def test_jsonl_empty_is_an_empty_test_set() -> None:
    assert parse_test_set_jsonl("") == []
    assert parse_test_set_jsonl("\n \n") == []


def test_jsonl_collects_every_bad_line_and_returns_nothing() -> None:
    lines = [
        json.dumps({"review": "ok", "expected": "yes"}),  # 1: fine
        "{not json",  # 2
        json.dumps(["a", "list"]),  # 3
        json.dumps({"review": "no answer"}),  # 4
        json.dumps({"vars": "text", "expected": "x"}),  # 5
        json.dumps({"vars": {}, "expected": "x", "extra": 1}),  # 6
        json.dumps({"bad name": "v", "expected": "x"}),  # 7
        json.dumps({"review": None, "expected": "x"}),  # 8
        json.dumps({"expected": "x", "split": "dev"}),  # 9
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}),  # 10
        json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}),  # 11
        json.dumps({"messages": [], "expected": "x"}),  # 12
    ]
    with pytest.raises(TestSetFormatError) as error:
        parse_test_set_jsonl("\n".join(lines), source="rows.jsonl")
    assert _problem_lines(error) == list(range(2, 13))
    messages = dict(error.value.problems)
    assert "not valid JSON" in messages[2]
    assert "expected a JSON object, got a list" in messages[3]
    assert 'no "expected"' in messages[4]
    assert '"vars" must be an object' in messages[5]
    assert "extra" in messages[6]
    assert "'bad name' is not a variable name" in messages[7]
    assert "review must be text, not null" in messages[8]
    assert "'dev'" in messages[9]
    assert "the last message is 'user'" in messages[10]
    assert "must follow a user message" in messages[11]
    assert "unexpected keys" in messages[12]
    assert str(error.value).startswith("rows.jsonl: line 2:")


# ---------------------------------------------------------------------------
# Round trips

_reserved = {"expected", "group", "split"}
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
# any text but lone surrogates (not encodable), with commas, quotes and newlines often
_text = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from([",", '"', "\n", "\r", "\r\n", " ", "\t", "é", "日本", "🙂"]),
    ),
    max_size=12,
).map("".join)
_group = st.one_of(st.none(), _text.filter(bool))
_split = st.sampled_from([None, "train", "validation", "test"])


@st.composite
def _uniform_test_sets(draw: st.DrawFn) -> TestSet:
    """Rows that all have the same variables (what CSV can hold) and some content."""
    names = draw(
        st.lists(_names.filter(lambda n: n.lower() not in _reserved), max_size=4, unique=True)
    )
    row = st.builds(
        TestRow,
        vars=st.fixed_dictionaries({name: _text for name in names}),
        expected=_text,
        group=_group,
        split=_split,
    ).filter(lambda r: any([*r.vars.values(), r.expected, r.group, r.split]))
    return TestSet(name="t", rows=draw(st.lists(row, max_size=6)))


_any_rows = st.lists(
    st.builds(
        TestRow,
        vars=st.dictionaries(_names, _text, max_size=4),
        expected=_text,
        group=st.one_of(st.none(), _text),
        split=_split,
    ),
    max_size=6,
)


@settings(max_examples=100, deadline=None)
@given(_uniform_test_sets())
def test_csv_round_trip(test_set: TestSet) -> None:
    assert parse_test_set_csv(test_set_to_csv(test_set)) == test_set.rows


@settings(max_examples=100, deadline=None)
@given(_any_rows)
def test_jsonl_round_trip(rows: list[TestRow]) -> None:
    test_set = TestSet(name="t", rows=rows)
    assert parse_test_set_jsonl(test_set_to_jsonl(test_set)) == rows


# ---------------------------------------------------------------------------
# Splits


def _labelled(counts: dict[str, int], labels: bool = True) -> TestSet:
    rows = [
        TestRow(vars={"n": f"{label}{i}"}, expected=label)
        for label, count in counts.items()
        for i in range(count)
    ]
    return TestSet(name="t", rows=rows, labels=list(counts) if labels else None)


def _splits(test_set: TestSet) -> list[str | None]:
    return [row.split for row in test_set.rows]


def test_split_is_deterministic_for_a_seed_and_leaves_the_input_alone() -> None:
    original = _labelled({"a": 30, "b": 10})
    first = split_test_set(original, 0.6, 0.2, seed=7)
    assert _splits(first) == _splits(split_test_set(original, 0.6, 0.2, seed=7))
    assert _splits(first) != _splits(split_test_set(original, 0.6, 0.2, seed=8))
    assert all(row.split is None for row in original.rows)
    # rows keep their order and content; only `split` is set
    assert [r.model_copy(update={"split": None}) for r in first.rows] == original.rows
    assert first.id == original.id and first.name == original.name


@pytest.mark.parametrize(
    ("total", "train", "validation", "sizes"),
    [
        (100, 0.5, 0.25, (50, 25, 25)),
        (10, 0.7, 0.3, (7, 3, 0)),
        (10, 0.8, 0.1, (8, 1, 1)),
        (3, 0.9, 0.05, (1, 1, 1)),  # no non-empty split left empty
        (2, 0.9, 0.05, (1, 1, 0)),  # not rows enough for three
        (7, 1.0, 0.0, (7, 0, 0)),
        (0, 0.5, 0.25, (0, 0, 0)),
    ],
)
def test_split_proportions(
    total: int, train: float, validation: float, sizes: tuple[int, int, int]
) -> None:
    test_set = TestSet(name="t", rows=[TestRow(expected=str(i)) for i in range(total)])
    split = split_test_set(test_set, train, validation, seed=1)
    counts = Counter(_splits(split))
    assert (counts["train"], counts["validation"], counts["test"]) == sizes
    assert None not in counts


def test_split_is_stratified_by_label() -> None:
    test_set = _labelled({"pos": 40, "neg": 20, "neutral": 8})
    for seed in range(10):
        split = split_test_set(test_set, 0.5, 0.25, seed=seed)
        counts = Counter((row.expected, row.split) for row in split.rows)
        for label, total in (("pos", 40), ("neg", 20), ("neutral", 8)):
            assert counts[label, "train"] == total // 2
            assert abs(counts[label, "validation"] - total / 4) <= 1
            assert abs(counts[label, "test"] - total / 4) <= 1


def test_a_small_label_is_spread_over_the_splits() -> None:
    test_set = _labelled({"common": 50, "rare": 3})
    for seed in range(20):
        split = split_test_set(test_set, 0.4, 0.3, seed=seed)
        rare = Counter(row.split for row in split.rows if row.expected == "rare")
        assert rare == {"train": 1, "validation": 1, "test": 1}


def test_split_without_labels_or_stratify_is_plain_random() -> None:
    # unstratified, some seed puts the ten "b" rows unevenly; stratified, none does
    for labels, stratify in ((False, True), (True, False)):
        uneven = False
        for seed in range(20):
            split = split_test_set(_labelled({"a": 10, "b": 10}, labels), 0.5, 0.25, seed, stratify)
            uneven |= Counter(r.split for r in split.rows if r.expected == "b")["train"] != 5
        assert uneven


def test_splits_are_disjoint_and_cover_every_row() -> None:
    split = split_test_set(_labelled({"a": 13, "b": 8}), 0.5, 0.3, seed=3)
    parts = [set(rows_in_split(split, name)) for name in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == len(split.rows)
    assert set().union(*parts) == set(rows_in_split(split, None)) == set(range(21))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=5),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 2**32),
)
def test_split_properties(counts: list[int], train: float, share: float, seed: int) -> None:
    validation = (1 - train) * share
    test_set = _labelled({f"label{i}": n for i, n in enumerate(counts)})
    split = split_test_set(test_set, train, validation, seed=seed)
    assert _splits(split) == _splits(split_test_set(test_set, train, validation, seed=seed))
    sizes = Counter(_splits(split))
    assert None not in sizes
    fractions = {"train": train, "validation": validation, "test": 1 - train - validation}
    wanted = [name for name, f in fractions.items() if f > 1e-9]
    for name, fraction in fractions.items():
        if name not in wanted:
            assert sizes[name] == 0
        elif len(test_set.rows) >= len(wanted):
            assert sizes[name] >= 1
        # off by rounding, plus the rows moved to keep the other splits non-empty
        assert abs(sizes[name] - len(test_set.rows) * fraction) < 3


def test_split_refuses_bad_fractions() -> None:
    test_set = _labelled({"a": 4})
    for train, validation in ((0.8, 0.3), (-0.1, 0.2), (1.5, 0.0)):
        with pytest.raises(ValueError, match="fractions"):
            split_test_set(test_set, train, validation)


def test_rows_in_split() -> None:
    test_set = TestSet(
        name="t",
        rows=[
            TestRow(expected="a", split="train"),
            TestRow(expected="b"),
            TestRow(expected="c", split="test"),
            TestRow(expected="d", split="train"),
        ],
    )
    assert rows_in_split(test_set, None) == [0, 1, 2, 3]
    assert rows_in_split(test_set, "train") == [0, 3]
    assert rows_in_split(test_set, "validation") == []
    assert rows_in_split(test_set, "test") == [2]
    with pytest.raises(ValueError, match="unknown split"):
        rows_in_split(test_set, "dev")
