"""Reading few-shot examples from CSV, JSONL and pasted spreadsheet text (no Qt)."""

from __future__ import annotations

import json

import pytest

from workbench.core.examples_io import (
    ExamplesFormatError,
    parse_examples_csv,
    parse_examples_jsonl,
    parse_pasted,
)
from workbench.core.models import FewShotExample


def _jsonl(*records: object) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


# ---------------------------------------------------------------------------
# CSV


def test_csv_with_variable_columns() -> None:
    text = "topic,tone,output\nrain,sad,Grey skies.\nsun,glad,Bright day!\n"
    assert parse_examples_csv(text, ["topic", "tone"]) == [
        FewShotExample(vars={"topic": "rain", "tone": "sad"}, output="Grey skies."),
        FewShotExample(vars={"topic": "sun", "tone": "glad"}, output="Bright day!"),
    ]


def test_csv_with_input_column_quotes_multiline_cells_and_a_bom() -> None:
    text = '\ufeffInput,Output\r\n"Hello, world",greeting\r\n"line one\nline two","two\nlines"\r\n'
    assert parse_examples_csv(text) == [
        FewShotExample(input="Hello, world", output="greeting"),
        FewShotExample(input="line one\nline two", output="two\nlines"),
    ]


def test_csv_tab_delimited_and_blank_lines_skipped() -> None:
    text = "input\toutput\n\nhi\tgreeting\n\n"
    assert parse_examples_csv(text, delimiter="\t") == [
        FewShotExample(input="hi", output="greeting")
    ]


def test_csv_row_with_only_input_among_variable_columns_is_plain() -> None:
    text = "topic,input,output\nrain,,wet\n,just text,plain\n"
    assert parse_examples_csv(text, ["topic"]) == [
        FewShotExample(vars={"topic": "rain"}, output="wet"),
        FewShotExample(input="just text", output="plain"),
    ]


def test_csv_input_column_is_the_variable_when_the_template_has_one_named_input() -> None:
    assert parse_examples_csv("input,output\nhi,there\n", ["input"]) == [
        FewShotExample(vars={"input": "hi"}, output="there")
    ]


def test_csv_header_only_gives_no_examples() -> None:
    assert parse_examples_csv("input,output\n") == []


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("input,answer\nx,y\n", None, "line 1: header: no 'output' column"),
        ("output\nx\n", None, "line 1: header: needs at least one input column"),
        ("input,,output\n", None, "column 2 has no name"),
        ("input,Input,output\n", None, "column 'input' appears twice"),
        ("the question,output\n", None, "'the question' is not a variable name"),
        ("topic,output\n", ["subject"], "'topic' is not a variable of the user template"),
        ("", None, "empty: expected a header row"),
    ],
)
def test_csv_bad_headers(text: str, variables: list[str] | None, expected: str) -> None:
    with pytest.raises(ExamplesFormatError) as info:
        parse_examples_csv(text, variables, source="ex.csv")
    assert expected in str(info.value)
    assert str(info.value).startswith("ex.csv: ")


def test_csv_rows_of_the_wrong_width_name_their_lines() -> None:
    text = 'input,output\na,b\nc\nd,e,f\n"multi\nline",ok\ng\n'
    with pytest.raises(ExamplesFormatError) as info:
        parse_examples_csv(text)
    assert info.value.problems == [
        (3, "expected 2 fields like the header, got 1"),
        (4, "expected 2 fields like the header, got 3"),
        (7, "expected 2 fields like the header, got 1"),
    ]


def test_csv_unterminated_quote_is_reported_with_its_line() -> None:
    with pytest.raises(ExamplesFormatError) as info:
        parse_examples_csv('input,output\na,b\n"never closed,x\n')
    assert info.value.problems[0][0] == 3
    assert "not valid CSV" in info.value.problems[0][1]


def test_error_message_lists_a_few_problems_and_counts_the_rest() -> None:
    text = "input,output\n" + "lonely\n" * 8
    with pytest.raises(ExamplesFormatError) as info:
        parse_examples_csv(text)
    assert len(info.value.problems) == 8
    assert str(info.value).endswith("and 3 more")
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------
# JSONL


def test_jsonl_all_three_forms() -> None:
    text = _jsonl(
        {"input": "hi", "output": "greeting"},
        {"vars": {"topic": "rain", "n": 3}, "output": "wet"},
        {
            "messages": [
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": [{"type": "text", "text": "3+3?"}]},
                {"role": "assistant", "content": "6", "weight": 1},
            ]
        },
    )
    assert parse_examples_jsonl(text) == [
        FewShotExample(input="hi", output="greeting"),
        FewShotExample(vars={"topic": "rain", "n": "3"}, output="wet"),
        FewShotExample(input="2+2?", output="4"),
        FewShotExample(input="3+3?", output="6"),
    ]


def test_jsonl_keeps_unicode_line_separators_inside_strings() -> None:
    text = '{"input": "a\u2028b", "output": "c"}\r\n'
    assert parse_examples_jsonl(text) == [FewShotExample(input="a\u2028b", output="c")]


def test_jsonl_problems_name_their_lines_and_nothing_is_returned() -> None:
    text = (
        '{"input": "ok", "output": "fine"}\n'
        "{not json\n"
        "\n"
        '{"input": "no answer"}\n'
        "[1, 2]\n"
        '{"vars": {"topic": ["x"]}, "output": "y"}\n'
        '{"messages": [{"role": "user", "content": "q"}]}\n'
        '{"messages": [{"role": "assistant", "content": "a"}]}\n'
        '{"output": "only"}\n'
        '{"vars": {"bad name": "x"}, "output": "y"}\n'
        '{"input": null, "output": "y"}\n'
    )
    with pytest.raises(ExamplesFormatError) as info:
        parse_examples_jsonl(text, source="ex.jsonl")
    lines = [line for line, _ in info.value.problems]
    assert lines == [2, 4, 5, 6, 7, 8, 9, 10, 11]
    messages = dict(info.value.problems)
    assert messages[2].startswith("not valid JSON")
    assert 'no "output"' in messages[4]
    assert "expected a JSON object, got a list" in messages[5]
    assert "vars.topic must be text, not a list" in messages[6]
    assert "no assistant answer" in messages[7]
    assert "expected a user message" in messages[8]
    assert 'needs "input" or "vars"' in messages[9]
    assert "'bad name' is not a variable name" in messages[10]
    assert '"input" must be text, not null' in messages[11]
    assert str(info.value).startswith("ex.jsonl: line 2: not valid JSON")


def test_jsonl_refuses_variables_the_template_lacks() -> None:
    text = _jsonl({"vars": {"topic": "rain"}, "output": "wet"})
    with pytest.raises(ExamplesFormatError, match="line 1: 'topic' is not a variable"):
        parse_examples_jsonl(text, ["subject"])


def test_jsonl_empty_text_is_an_error() -> None:
    with pytest.raises(ExamplesFormatError, match="empty"):
        parse_examples_jsonl("\n\n")


# ---------------------------------------------------------------------------
# Pasted text


def test_paste_tab_separated_spreadsheet_rows() -> None:
    # as LibreOffice and Excel copy them: CRLF, cells with newlines or tabs quoted
    text = 'rain\tsad\tGrey.\r\nsun\tglad\t"Bright\nday"\r\n'
    assert parse_pasted(text, ["topic", "tone"], ["topic", "tone"]) == [
        FewShotExample(vars={"topic": "rain", "tone": "sad"}, output="Grey."),
        FewShotExample(vars={"topic": "sun", "tone": "glad"}, output="Bright\nday"),
    ]


def test_paste_comma_separated_and_a_header_row_is_skipped() -> None:
    text = 'input,output\n"Hello, you",greeting\n'
    assert parse_pasted(text, ["input"]) == [FewShotExample(input="Hello, you", output="greeting")]


def test_paste_with_wrong_cell_counts_names_the_lines() -> None:
    with pytest.raises(ExamplesFormatError) as info:
        parse_pasted("a,b\nHello, you,greeting\njust one\n", ["input"])
    assert info.value.problems == [
        (2, "expected 2 cells (input, output), got 3 (quote cells that contain commas)"),
        (3, "expected 2 cells (input, output), got 1"),
    ]


def test_paste_of_nothing_is_an_error() -> None:
    with pytest.raises(ExamplesFormatError, match="nothing to paste"):
        parse_pasted("\n", ["input"])
