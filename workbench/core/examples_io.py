"""Few-shot examples from outside: CSV and JSONL files, and text pasted from a spreadsheet.

Parsing is all-or-nothing: every problem in the text is collected, with its line number,
into one `ExamplesFormatError`, and nothing is returned unless the whole text is good.

Columns (CSV headers, pasted cells) named `input` and `output` fill those fields of
`FewShotExample`; any other column is a template variable and goes into `vars`. When the
user template itself has a variable named `input`, pass its `variables` and an `input`
column fills that variable instead.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from workbench.core.models import FewShotExample

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN_PROBLEMS = 5


_T = TypeVar("_T")


class ExamplesFormatError(ValueError):
    """Examples text that cannot be read; `problems` holds `(line, message)` pairs.

    Lines are 1-based; line 0 means the text as a whole.
    """

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = [f"line {line}: {msg}" if line else msg for line, msg in problems[:_SHOWN_PROBLEMS]]
        more = len(problems) - _SHOWN_PROBLEMS
        if more > 0:
            shown.append(f"and {more} more")
        super().__init__(f"{source}: {'; '.join(shown)}")


class LineProblem(Exception):
    """One problem with one line (of a CSV or JSONL file); the caller adds the line number."""


# ---------------------------------------------------------------------------
# Columns


def _column_names(cells: Sequence[str], variables: Sequence[str] | None) -> list[str]:
    """Normalised column names of a header row, or `LineProblem` naming what is wrong."""
    names: list[str] = []
    for number, cell in enumerate(cells, start=1):
        name = cell.strip()
        if name.lower() in ("input", "output"):
            name = name.lower()
        if not name:
            raise LineProblem(f"column {number} has no name")
        if name in names:
            raise LineProblem(f"column {name!r} appears twice")
        if name not in ("input", "output"):
            if not _IDENT.match(name):
                raise LineProblem(
                    f"column {name!r} is not a variable name (letters, digits, _) "
                    "nor 'input' or 'output'"
                )
            if variables is not None and name not in variables:
                known = ", ".join(variables) if variables else "none"
                raise LineProblem(
                    f"column {name!r} is not a variable of the user template "
                    f"(its variables: {known}; use 'input' for plain text)"
                )
        names.append(name)
    if "output" not in names:
        raise LineProblem("no 'output' column")
    if len(names) < 2:
        raise LineProblem("needs at least one input column besides 'output'")
    return names


def _example_from_cells(
    names: Sequence[str], cells: Sequence[str], variables: Sequence[str] | None
) -> FewShotExample:
    """One example from a row of cells under `names` (input, output or variable names).

    A row whose variable cells are all empty but which has an input is a plain-input
    example; otherwise every variable column is kept, empty or not, so the example
    renders with the user template.
    """
    values = dict(zip(names, cells, strict=True))
    output = values.pop("output")
    plain = "input" in names and not (variables is not None and "input" in variables)
    text = values.pop("input") if plain else ""
    if text and not any(values.values()):
        values = {}
    return FewShotExample(input=text, vars=values, output=output)


class BrokenCsv(Exception):
    """The CSV reader stopped at `line`; nothing after it can be read."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def _blank_cells(record: list[str]) -> bool:
    return not any(cell.strip() for cell in record)


def csv_records(
    text: str, delimiter: str, blank: Callable[[list[str]], bool] = _blank_cells
) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (quoted cells may span lines); records
    for which `blank` holds are skipped. Shared by the test-set parser."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BrokenCsv(start, f"not valid CSV: {exc}") from None
        if not blank(record):
            yield start, record
        start = reader.line_num + 1


def csv_table(
    text: str,
    delimiter: str,
    header: Callable[[list[str]], list[str]],
    read_row: Callable[[list[str], list[str]], _T],
    blank: Callable[[list[str]], bool] = _blank_cells,
) -> tuple[list[_T], list[tuple[int, str]], bool]:
    """Read CSV with a header row: `header` turns it into column names, `read_row` turns
    (names, cells) into an item; either raises LineProblem. Returns the items, (line,
    message) problems, and whether a header was read. A header problem is the only
    problem reported: no row can be read without it."""
    items: list[_T] = []
    problems: list[tuple[int, str]] = []
    names: list[str] | None = None
    try:
        for line, record in csv_records(strip_bom(text), delimiter, blank):
            if names is None:
                try:
                    names = header(record)
                except LineProblem as exc:
                    return [], [(line, f"header: {exc}")], False
            elif len(record) != len(names):
                problems.append(
                    (line, f"expected {len(names)} fields like the header, got {len(record)}")
                )
            else:
                try:
                    items.append(read_row(names, record))
                except LineProblem as exc:
                    problems.append((line, str(exc)))
    except BrokenCsv as exc:
        problems.append((exc.line, str(exc)))
    return items, problems, names is not None


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


# ---------------------------------------------------------------------------
# CSV


def parse_examples_csv(
    text: str,
    variables: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    source: str = "CSV",
) -> list[FewShotExample]:
    """Examples from CSV whose header row names the columns: 'output', and 'input' or
    variable names. With `variables` (the user template's), other names are refused."""
    examples, problems, had_header = csv_table(
        text,
        delimiter,
        lambda cells: _column_names(cells, variables),
        lambda names, cells: _example_from_cells(names, cells, variables),
    )
    if not had_header and not problems:
        problems.append((0, "empty: expected a header row naming the columns"))
    if problems:
        raise ExamplesFormatError(source, problems)
    return examples


# ---------------------------------------------------------------------------
# JSONL


def json_text(value: Any, what: str) -> str:
    """A JSON value as cell text: strings as they are, numbers and booleans in JSON form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise LineProblem(f"{what} must be text, not {json_type(value)}")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def chat_message_text(message: Any, number: int) -> tuple[str, str]:
    """(role, text) of an OpenAI chat message; content may be a list of text parts."""
    if not isinstance(message, dict):
        raise LineProblem(f"message {number} is not an object")
    role = message.get("role")
    content = message.get("content")
    if not isinstance(role, str):
        raise LineProblem(f"message {number} has no role")
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise LineProblem(f"message {number} has a content part that is not text")
            parts.append(json_text(part.get("text"), f"message {number} text"))
        content = "".join(parts)
    return role, json_text(content, f"message {number} content")


def _examples_from_chat(messages: Any) -> list[FewShotExample]:
    """Each user message and the assistant message after it make one example;
    system messages are skipped (the prompt has its own)."""
    if not isinstance(messages, list):
        raise LineProblem('"messages" must be a list')
    examples: list[FewShotExample] = []
    pending: str | None = None
    for number, message in enumerate(messages, start=1):
        role, text = chat_message_text(message, number)
        if role == "system":
            continue
        if role == "user" and pending is None:
            pending = text
        elif role == "assistant" and pending is not None:
            examples.append(FewShotExample(input=pending, output=text))
            pending = None
        elif role in ("user", "assistant"):
            expected = "an assistant" if pending is not None else "a user"
            raise LineProblem(f"message {number} is {role!r}, expected {expected} message")
        else:
            raise LineProblem(f"message {number} has unsupported role {role!r}")
    if pending is not None:
        raise LineProblem("the last user message has no assistant answer")
    if not examples:
        raise LineProblem("no user and assistant messages")
    return examples


def _examples_from_record(record: Any, variables: Sequence[str] | None) -> list[FewShotExample]:
    if not isinstance(record, dict):
        raise LineProblem(f"expected a JSON object, got {json_type(record)}")
    if "messages" in record:
        return _examples_from_chat(record["messages"])
    if "output" not in record:
        raise LineProblem('no "output" (expected "input" or "vars", and "output", or "messages")')
    if "input" not in record and "vars" not in record:
        raise LineProblem('needs "input" or "vars" besides "output"')
    output = json_text(record["output"], '"output"')
    text = json_text(record.get("input", ""), '"input"')
    raw_vars = record.get("vars", {})
    if not isinstance(raw_vars, dict):
        raise LineProblem(f'"vars" must be an object, not {json_type(raw_vars)}')
    values: dict[str, str] = {}
    for name, value in raw_vars.items():
        if not _IDENT.match(name):
            raise LineProblem(f'"vars" key {name!r} is not a variable name')
        if variables is not None and name not in variables:
            raise LineProblem(f"{name!r} is not a variable of the user template")
        values[name] = json_text(value, f"vars.{name}")
    return [FewShotExample(input=text, vars=values, output=output)]


def jsonl_records(text: str, read: Callable[[Any], _T]) -> tuple[list[_T], list[tuple[int, str]]]:
    """`read` applied to each JSON object of JSON Lines text (blank lines skipped): what it
    returned, and (line number, message) for each line that is not JSON or that `read`
    refused with LineProblem."""
    found: list[_T] = []
    problems: list[tuple[int, str]] = []
    # split on "\n" only: str.splitlines would also split on U+2028, valid inside JSON strings
    for line, raw in enumerate(strip_bom(text).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append((line, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except (ValueError, RecursionError) as exc:  # nested too deep, a 5000-digit number
            problems.append((line, f"not valid JSON: {exc}"))
            continue
        try:
            found.append(read(record))
        except LineProblem as exc:
            problems.append((line, str(exc)))
    return found, problems


def parse_examples_jsonl(
    text: str, variables: Sequence[str] | None = None, *, source: str = "JSONL"
) -> list[FewShotExample]:
    """Examples from JSON Lines, one object a line, in any of these forms:

    - `{"input": ..., "output": ...}`
    - `{"vars": {"name": ...}, "output": ...}`
    - OpenAI chat fine-tuning lines, `{"messages": [{"role": "user", ...},
      {"role": "assistant", ...}, ...]}`, each user/assistant pair one example.

    With `variables` (the user template's), unknown `vars` keys are refused.
    """
    found, problems = jsonl_records(text, lambda record: _examples_from_record(record, variables))
    examples = [example for line in found for example in line]
    if not examples and not problems:
        problems.append((0, "empty: no examples"))
    if problems:
        raise ExamplesFormatError(source, problems)
    return examples


# ---------------------------------------------------------------------------
# Pasted text


def parse_pasted(
    text: str,
    columns: Sequence[str],
    variables: Sequence[str] | None = None,
    *,
    source: str = "pasted text",
) -> list[FewShotExample]:
    """Examples from rows copied out of a spreadsheet: tab-separated (or comma-separated
    when there is no tab), one cell per name in `columns` and then the output.

    `columns` names the input cells in order: 'input' or variable names (`variables`,
    the user template's, decides whether 'input' is one). A first row that repeats the
    column names and 'output' is taken as a header and skipped.
    """
    if not columns:
        raise ValueError("parse_pasted needs at least one input column")
    names = [*columns, "output"]
    delimiter = "\t" if "\t" in text else ","
    problems: list[tuple[int, str]] = []
    examples: list[FewShotExample] = []
    first = True
    try:
        for line, row in csv_records(strip_bom(text), delimiter):
            is_header = first and [c.strip().lower() for c in row] == [n.lower() for n in names]
            first = False
            if is_header:
                continue
            if len(row) != len(names):
                split = delimiter == "," and len(row) > len(names)
                hint = " (quote cells that contain commas)" if split else ""
                expected = f"{len(names)} cells ({', '.join(names)})"
                problems.append((line, f"expected {expected}, got {len(row)}{hint}"))
            else:
                examples.append(_example_from_cells(names, row, variables))
    except BrokenCsv as exc:
        problems.append((exc.line, str(exc)))
    if not examples and not problems:
        problems.append((0, "nothing to paste"))
    if problems:
        raise ExamplesFormatError(source, problems)
    return examples
