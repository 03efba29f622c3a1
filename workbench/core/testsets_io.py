"""Test sets from outside and back: CSV and JSONL files, and train/validation/test splits.

Parsing is all-or-nothing, like `examples_io`: every problem in the text is collected,
with its line number, into one `TestSetFormatError`, and nothing is returned unless the
whole text is good.

A CSV file has a header row. Its `expected` column (required) holds each row's expected
answer, the optional `group` and `split` columns fill those fields of `TestRow`, and every
other column is a variable. JSON Lines take one row a line, nested
(`{"vars": {...}, "expected": ...}`), flat (`{"review": ..., "expected": ...}`) or as an
OpenAI chat line, whose last user message becomes the variable `input`.

`test_set_to_csv` and `test_set_to_jsonl` write what the parsers read back unchanged,
with two limits of CSV: every row has every column, so a variable a row lacks reads back
as empty text; and a record whose cells are all empty reads as a blank line (skipped).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, get_args

from workbench.core.examples_io import (
    LineProblem,
    chat_message_text,
    csv_table,
    json_text,
    json_type,
    jsonl_records,
)
from workbench.core.models import Split, TestRow, TestSet

SPLITS: Final[tuple[Split, ...]] = get_args(Split)
"""The split names, in the order `split_test_set` fills them."""

EXPECTED, GROUP, SPLIT = "expected", "group", "split"
RESERVED: Final = (EXPECTED, GROUP, SPLIT)
"""Column names that are fields of a row, never variables."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN_PROBLEMS = 5
_EPSILON = 1e-9


class TestSetFormatError(ValueError):
    """Test-set text that cannot be read; `problems` holds `(line, message)` pairs.

    Lines are 1-based; line 0 means the text as a whole.
    """

    __test__ = False  # not a pytest class

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = [f"line {line}: {msg}" if line else msg for line, msg in problems[:_SHOWN_PROBLEMS]]
        more = len(problems) - _SHOWN_PROBLEMS
        if more > 0:
            shown.append(f"and {more} more")
        super().__init__(f"{source}: {'; '.join(shown)}")


def _split_value(value: str | None) -> Split | None:
    """A split name from a cell or JSON value; empty or null means not split."""
    if value is None or not value.strip():
        return None
    name = value.strip().lower()
    if name not in SPLITS:
        raise LineProblem(f"split {value!r} is not one of {', '.join(SPLITS)} (or empty)")
    return name


# ---------------------------------------------------------------------------
# CSV


def _blank_record(record: list[str]) -> bool:
    """Blank lines, lines of spaces and records whose cells are all empty (a spreadsheet's
    trailing rows) are skipped. Otherwise cells of spaces are content: an expected answer
    may be one, and the exporter always writes several cells a record."""
    return not any(record) or (len(record) == 1 and not record[0].strip())


def _header(cells: Sequence[str], variables: Sequence[str] | None) -> list[str]:
    """Normalised column names of the header row; every problem with it in one `LineProblem`."""
    names: list[str] = []
    problems: list[str] = []
    for number, cell in enumerate(cells, start=1):
        name = cell.strip()
        if name.lower() in RESERVED:
            name = name.lower()
        if not name:
            problems.append(f"column {number} has no name")
        elif name in names:
            problems.append(f"column {name!r} appears twice")
        elif name not in RESERVED and not _IDENT.match(name):
            problems.append(
                f"column {name!r} is not a variable name (letters, digits, _) "
                f"nor one of {', '.join(RESERVED)}"
            )
        elif name not in RESERVED and variables is not None and name not in variables:
            known = ", ".join(variables) if variables else "none"
            problems.append(
                f"column {name!r} is not a variable of the prompt (its variables: {known})"
            )
        names.append(name)
    if EXPECTED not in names:
        problems.append(f"no {EXPECTED!r} column")
    if problems:
        raise LineProblem("; ".join(problems))
    return names


def _row_from_cells(names: Sequence[str], cells: Sequence[str]) -> TestRow:
    values = dict(zip(names, cells, strict=True))
    expected = values.pop(EXPECTED)
    group = values.pop(GROUP, "")
    split = _split_value(values.pop(SPLIT, None))
    # an empty group cell is no group: CSV cannot tell "" from none, and none is the default
    return TestRow(vars=values, expected=expected, group=group or None, split=split)


def parse_test_set_csv(
    text: str,
    source: str = "CSV",
    variables: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
) -> list[TestRow]:
    """Test rows from CSV with a header row: `expected` (required), optional `group` and
    `split` (train, validation or test; empty = not split), and variable columns.

    With `variables` (the prompt's), other variable columns are refused. A header with
    no rows is an empty test set.
    """
    rows, problems, had_header = csv_table(
        text,
        delimiter,
        lambda cells: _header(cells, variables),
        _row_from_cells,
        _blank_record,
    )
    if not had_header and not problems:
        problems.append((0, "empty: expected a header row naming the columns"))
    if problems:
        raise TestSetFormatError(source, problems)
    return rows


def _columns(test_set: TestSet) -> list[str]:
    """The variable names of all rows, in first-seen order."""
    names: dict[str, None] = {}
    for row in test_set.rows:
        names.update(dict.fromkeys(row.vars))
    return list(names)


def test_set_to_csv(test_set: TestSet) -> str:
    """The rows as CSV: the variables in first-seen order, then expected, group, split.

    Raises ValueError when a variable is named like one of those last three columns,
    which CSV could not tell apart (JSONL can).
    """
    variables = _columns(test_set)
    clash = [name for name in variables if name.lower() in RESERVED]
    if clash:
        raise ValueError(
            f"variables named {', '.join(map(repr, clash))} cannot be written as CSV columns; "
            "export as JSONL instead"
        )
    out = io.StringIO(newline="")
    # the default "\r\n" terminator makes the writer quote cells holding either character
    writer = csv.writer(out)
    writer.writerow([*variables, EXPECTED, GROUP, SPLIT])
    for row in test_set.rows:
        cells = [row.vars.get(name, "") for name in variables]
        writer.writerow([*cells, row.expected, row.group or "", row.split or ""])
    return out.getvalue()


# ---------------------------------------------------------------------------
# JSONL


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else json_text(value, what)


def _variables(values: Mapping[str, Any], where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in values.items():
        if not _IDENT.match(name):
            raise LineProblem(f"{where}key {name!r} is not a variable name (letters, digits, _)")
        found[name] = json_text(value, f"{where}{name}")
    return found


def _row_from_chat(messages: Any) -> tuple[dict[str, str], str]:
    """The last user message as `input` and the assistant's answer after it as expected;
    earlier turns are context the prompt itself supplies."""
    if not isinstance(messages, list) or not messages:
        raise LineProblem('"messages" must be a non-empty list')
    turns = [chat_message_text(m, n) for n, m in enumerate(messages, start=1)]
    role, answer = turns[-1]
    if role != "assistant":
        raise LineProblem(f"the last message is {role!r}; expected the assistant's answer")
    if len(turns) < 2 or turns[-2][0] != "user":
        raise LineProblem("the assistant's answer must follow a user message")
    return {"input": turns[-2][1]}, answer


def _row_from_record(record: Any) -> TestRow:
    if not isinstance(record, dict):
        raise LineProblem(f"expected a JSON object, got {json_type(record)}")
    group = _optional_text(record.get(GROUP), f'"{GROUP}"')
    split = _split_value(_optional_text(record.get(SPLIT), f'"{SPLIT}"'))
    if "messages" in record:
        extra = sorted(set(record) - {"messages", GROUP, SPLIT})
        if extra:
            raise LineProblem(f'unexpected keys beside "messages": {", ".join(extra)}')
        values, expected = _row_from_chat(record["messages"])
        return TestRow(vars=values, expected=expected, group=group, split=split)
    if EXPECTED not in record:
        raise LineProblem(f'no "{EXPECTED}" (or "messages")')
    expected = json_text(record[EXPECTED], f'"{EXPECTED}"')
    if "vars" in record:
        extra = sorted(set(record) - {"vars", *RESERVED})
        if extra:
            raise LineProblem(f'unexpected keys beside "vars": {", ".join(extra)}')
        raw = record["vars"]
        if not isinstance(raw, dict):
            raise LineProblem(f'"vars" must be an object, not {json_type(raw)}')
        values = _variables(raw, "vars.")
    else:
        values = _variables({k: v for k, v in record.items() if k not in RESERVED}, "")
    return TestRow(vars=values, expected=expected, group=group, split=split)


def parse_test_set_jsonl(text: str, source: str = "JSONL") -> list[TestRow]:
    """Test rows from JSON Lines, one object a line (blank lines are skipped):

    - `{"vars": {"name": ...}, "expected": ..., "group": ..., "split": ...}`
    - flat, `{"review": ..., "expected": ...}`: keys other than expected, group and split
      are variables
    - OpenAI chat lines, `{"messages": [..., {"role": "user", "content": X},
      {"role": "assistant", "content": Y}]}`: variable `input` X, expected Y

    `group` and `split` are optional everywhere. Empty text is an empty test set.
    """
    rows, problems = jsonl_records(text, _row_from_record)
    if problems:
        raise TestSetFormatError(source, problems)
    return rows


def test_set_to_jsonl(test_set: TestSet) -> str:
    """The rows as JSON Lines in the nested form, which holds any variable name."""
    lines = []
    for row in test_set.rows:
        record: dict[str, Any] = {"vars": row.vars, EXPECTED: row.expected}
        if row.group is not None:
            record[GROUP] = row.group
        if row.split is not None:
            record[SPLIT] = row.split
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


# names starting with "test" would be collected by pytest wherever tests import them
test_set_to_csv.__test__ = False  # type: ignore[attr-defined]
test_set_to_jsonl.__test__ = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# Splits


def _split_sizes(total: int, fractions: Sequence[float]) -> list[int]:
    """Whole-row sizes summing to `total`, as close to `fractions` as rounding allows,
    with no split of positive fraction left empty while there are rows enough."""
    raw = [total * f for f in fractions]
    sizes = [int(r) for r in raw]
    # largest remainders first; ties go to the earlier split
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    wanted = [i for i, f in enumerate(fractions) if f > _EPSILON]
    for i in wanted:
        # a donor keeps at least one row if it is wanted too
        donors = [j for j in range(len(sizes)) if sizes[j] > (1 if j in wanted else 0)]
        if sizes[i] == 0 and donors:
            donor = max(donors, key=lambda j: sizes[j])
            sizes[donor] -= 1
            sizes[i] += 1
    return sizes


def _allocate(
    strata: Sequence[int], sizes: Sequence[int], fractions: Sequence[float], rng: random.Random
) -> list[list[int]]:
    """How many rows of each stratum go to each split: each stratum in proportion, to
    within a row where the split sizes allow, and the splits exactly `sizes`.

    Every cell starts at the floor of its exact share; the rows left over go first to the
    cells with the largest fractional parts (one each), then wherever room is left.
    """
    exact = [[n * f for f in fractions] for n in strata]
    cells = [[int(e) for e in row] for row in exact]
    spare = [n - sum(row) for n, row in zip(strata, cells, strict=True)]
    room = [size - sum(row[k] for row in cells) for k, size in enumerate(sizes)]
    pairs = [(s, k) for s in range(len(strata)) for k in range(len(sizes))]
    rng.shuffle(pairs)  # ties between equal fractional parts fall at random
    pairs.sort(key=lambda p: -(exact[p[0]][p[1]] - cells[p[0]][p[1]]))
    for s, k in pairs:
        if exact[s][k] > cells[s][k] and spare[s] and room[k] > 0:
            cells[s][k] += 1
            spare[s] -= 1
            room[k] -= 1
    # what is left comes from rounding the split sizes or keeping a split non-empty;
    # since the spares and the room sum alike, this pass places every row
    for s, k in pairs:
        moved = min(spare[s], max(room[k], 0))
        cells[s][k] += moved
        spare[s] -= moved
        room[k] -= moved
    # the split sizes may have taken rows from a split whose strata's floors exceed them
    for k in range(len(sizes)):
        while room[k] < 0:
            s = max(range(len(strata)), key=lambda i: cells[i][k])
            to = next(j for j in range(len(sizes)) if room[j] > 0)
            cells[s][k] -= 1
            cells[s][to] += 1
            room[k] += 1
            room[to] -= 1
    return cells


def split_test_set(
    test_set: TestSet,
    train: float = 0.5,
    validation: float = 0.25,
    seed: int = 0,
    stratify: bool = True,
) -> TestSet:
    """A copy of `test_set` whose rows carry a split: about `train` of them "train",
    `validation` "validation" and the rest "test". Rows keep their order.

    The same seed always gives the same split, and no split of positive fraction is
    left empty while there are rows enough. When the test set has `labels` and
    `stratify` is on, each expected value is spread over the splits in proportion.
    """
    if not (0 <= train <= 1 and 0 <= validation <= 1 and train + validation <= 1 + _EPSILON):
        raise ValueError(
            f"train ({train}) and validation ({validation}) must be fractions summing to at most 1"
        )
    fractions = (train, validation, max(0.0, 1.0 - train - validation))
    rng = random.Random(seed)
    rows = test_set.rows
    strata: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        key = row.expected if stratify and test_set.labels else ""
        strata.setdefault(key, []).append(index)
    members = list(strata.values())
    sizes = _split_sizes(len(rows), fractions)
    counts = _allocate([len(m) for m in members], sizes, fractions, rng)
    assigned: dict[int, Split] = {}
    for indices, row_counts in zip(members, counts, strict=True):
        shuffled = list(indices)
        rng.shuffle(shuffled)
        position = 0
        for name, count in zip(SPLITS, row_counts, strict=True):
            for index in shuffled[position : position + count]:
                assigned[index] = name
            position += count
    new_rows = [
        row.model_copy(update={"split": assigned[i]}, deep=True) for i, row in enumerate(rows)
    ]
    return test_set.model_copy(update={"rows": new_rows}, deep=True)


def rows_in_split(test_set: TestSet, split: str | None) -> list[int]:
    """Indices of the rows in `split` ("train", "validation" or "test"); None = all rows."""
    if split is None:
        return list(range(len(test_set.rows)))
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    return [i for i, row in enumerate(test_set.rows) if row.split == split]
