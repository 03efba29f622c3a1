"""`workbench eval --report FILE`: the option is parsed and checked before the run starts
(a long evaluation must not end in "cannot write the report"). The report itself is
tested through `write_report` in tests/core/test_report_export.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import build_parser


def test_report_option_takes_a_markdown_or_html_file_in_an_existing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    args = parser.parse_args(["eval", "sentiment", "--report", str(tmp_path / "r.html")])
    assert args.report == tmp_path / "r.html"
    assert parser.parse_args(["eval", "sentiment"]).report is None
    for bad, message in [
        (tmp_path / "r.pdf", "a report is written as .md or .html, not .pdf"),
        (tmp_path / "missing" / "r.md", "does not exist"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(["eval", "sentiment", "--report", str(bad)])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
