"""How a report is laid out and written out: a report is a list of blocks (headings,
paragraphs, tables, bullet lists, pictures), rendered as Markdown (pictures linked as
sibling SVG files) or as one HTML page (pictures inline). User text is escaped in both:
backslash escapes in Markdown, entities in HTML. `core/report_export.py` builds the
blocks of an evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from workbench.core.report_svg import esc


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    flag: bool = False  # a warning: bold in Markdown, red in HTML


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Image:
    name: str  # the file's tail beside a Markdown report: "bars" → report-bars.svg
    alt: str
    svg: str


Block = Heading | Para | Table | Bullets | Image

# ---------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#])")


def md(text: str) -> str:
    """User text safe in Markdown: one line, its markup characters backslash-escaped (so
    `<b>` or `a|b` stay text, in a table cell too)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def to_markdown(blocks: list[Block], image_stem: str) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + md(block.text), ""]
        elif isinstance(block, Para):
            out += [f"**{md(block.text)}**" if block.flag else md(block.text), ""]
        elif isinstance(block, Bullets):
            out += [*(f"- {md(item)}" for item in block.items), ""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(md(h) for h in block.header) + " |")
            out.append("|" + "|".join(["---"] + ["--:"] * (len(block.header) - 1)) + "|")
            out += ["| " + " | ".join(md(c) for c in row) + " |" for row in block.rows]
            out.append("")
        else:
            out += [f"![{md(block.alt)}]({quote(f'{image_stem}-{block.name}.svg')})", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; color: #222; max-width: 72em;
  margin: 2em auto; padding: 0 1em; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td:not(:first-child) { text-align: right; }
th { background: #f2f2f2; }
.flag { color: #c62828; font-weight: bold; }
.sub { color: #666; }
figure { margin: 0.5em 0 1.5em; }
"""


def to_html(blocks: list[Block]) -> str:
    title = blocks[0].text if isinstance(blocks[0], Heading) else "Evaluation report"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style></head>",
        "<body>",
    ]
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            css = ' class="flag"' if block.flag else (' class="sub"' if i == 1 else "")
            out.append(f"<p{css}>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            out.append(f'<figure aria-label="{esc(block.alt)}">{block.svg}</figure>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
