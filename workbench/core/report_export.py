"""An evaluation as a report people read and pass on: Markdown (with its pictures as SVG
files beside it) or one self-contained HTML page (the pictures inline). The report says
what was run (prompt, test set, split, mode, date), each variant's primary metric with
its 95 % interval and which is best or not distinguishable from the best, the paired
tests as verdicts, cross-entropy and perplexity, rated satisfaction, per-label metrics
and the confusion matrix per variant, and the groups with their largest gap (flagged
over the limit given). The numbers come from `core/analysis.py`, so they are the ones
`workbench eval` prints and the Evaluate panel shows; the pictures from
`core/report_svg.py`.

Both formats are rendered from one list of blocks (`core/report_render.py`), so they
never say different things.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from workbench.core.analysis import BINARY_METRICS, Analysis, Estimate, VariantReport
from workbench.core.flows.report import count, display_name, format_latency, format_percent
from workbench.core.fsutil import TEMP_SUFFIX, fsync_dir
from workbench.core.models import EvalRun, TestSet
from workbench.core.report_render import (
    Block,
    Bullets,
    Heading,
    Image,
    Para,
    Table,
    to_html,
    to_markdown,
)
from workbench.core.report_svg import shorten, svg_confusion, svg_groups, svg_metric_bars
from workbench.core.stats import Classification, PairedTest

__all__ = [
    "REPORT_SUFFIXES",
    "ReportError",
    "html_report",
    "markdown_report",
    "report_format",
    "svg_confusion",
    "svg_groups",
    "svg_metric_bars",
    "write_report",
]

REPORT_SUFFIXES = (".md", ".html")


class ReportError(ValueError):
    """A report that cannot be written where asked (unknown suffix, missing folder)."""


def _estimate(e: Estimate | None) -> str:
    return format_percent(e.value, e.interval) if e is not None else "–"


def _mark(analysis: Analysis, name: str) -> str:
    if analysis.best and name == analysis.best[0]:
        return "best"
    if name in analysis.best:
        return "not distinguishable from the best"
    return ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:40] or "variant"


def _title(run: EvalRun, test_set: TestSet, prompt_name: str | None) -> tuple[str, str]:
    test_name = run.test_set_name or test_set.name
    title = f"{prompt_name} on {test_name}" if prompt_name else f"Evaluation on {test_name}"
    cases = max((v.cases for v in run.summaries), default=0)
    split = f"{display_name(run.split)} split" if run.split else "all rows"
    parts = [
        split,
        display_name(run.mode),
        count(cases, "case"),
        count(len(run.variants), "variant"),
        run.created.astimezone().strftime("%Y-%m-%d %H:%M"),
    ]
    if not run.complete:
        parts.append("stopped before the end")
    return title, " · ".join(parts)


def _variants_section(analysis: Analysis) -> list[Block]:
    metric = display_name(analysis.primary)
    method = "Wilson" if analysis.primary in BINARY_METRICS else "normal approximation"
    shown = dict.fromkeys(k for v in analysis.variants for k in v.metrics)
    extra = [k for k in shown if k != analysis.primary]
    header = [
        "variant",
        f"{metric} (95 % interval, {method})",
        "cases",
        "paired test",
        "mean latency",
    ]
    header[4:4] = [display_name(k) for k in extra]
    rows = []
    for v in analysis.variants:
        row = [v.name, _estimate(v.primary), str(v.primary.cases), _mark(analysis, v.name)]
        row += [_estimate(v.metrics.get(k)) for k in extra]
        row.append(format_latency(v.summary.get("latency_s")))
        rows.append(row)
    blocks: list[Block] = [Heading(2, f"{metric[:1].upper()}{metric[1:]} per variant")]
    if analysis.variants:
        blocks += [
            Table(header, rows),
            Image("bars", f"{metric} per variant", svg_metric_bars(analysis)),
        ]
    else:
        blocks.append(Para("The run has no variants."))
    if analysis.pairs:
        blocks += [
            Heading(2, "Paired tests"),
            Para("Exact McNemar test on the cases each pair of variants disagrees on."),
            Bullets([_pair_line(p) for p in analysis.pairs]),
        ]
    return blocks


def _pair_line(p: PairedTest) -> str:
    disagree = count(p.a_only + p.b_only, "case")
    return f"{p.verdict}; they disagree on {disagree}: {p.a_only} for {p.a}, {p.b_only} for {p.b}"


def _likelihood_section(analysis: Analysis) -> list[Block]:
    measured = [v for v in analysis.variants if v.cross_entropy is not None]
    if not measured:
        return []
    rows = [
        [v.name, f"{v.cross_entropy:.3f}", f"{v.perplexity:.2f}", str(v.likelihood_cases)]
        for v in measured
    ]
    return [
        Heading(2, "Likelihood of the expected outputs"),
        Table(["variant", "cross-entropy (nats per token)", "perplexity", "cases"], rows),
    ]


def _stars(e: Estimate | None) -> str:
    if e is None:
        return "–"
    interval = f" ({e.interval[0]:.2f}–{e.interval[1]:.2f})" if e.interval else ""
    return f"{e.value:.2f} of 5{interval}"


def _ratings_section(analysis: Analysis) -> list[Block]:
    rated = [v for v in analysis.variants if v.thumbs_up is not None or v.stars is not None]
    if not rated:
        return []
    rows = [
        [
            v.name,
            _estimate(v.thumbs_up),
            str(v.thumbs_up.cases) if v.thumbs_up else "0",
            _stars(v.stars),
            str(v.stars.cases) if v.stars else "0",
        ]
        for v in rated
    ]
    return [
        Heading(2, "Rated satisfaction"),
        Table(["variant", "thumbs up (95 % interval)", "rated", "stars", "rated"], rows),
    ]


def _matrix_table(c: Classification, normalised: bool) -> Table:
    shares = c.row_normalised()
    rows = [
        [
            label,
            *(
                f"{s * 100:.0f} %" if normalised else str(n)
                for n, s in zip(row, share, strict=True)
            ),
        ]
        for label, row, share in zip(c.labels, c.matrix, shares, strict=True)
    ]
    return Table(["expected / chosen", *c.labels], rows)


def _labels_section(analysis: Analysis) -> list[Block]:
    blocks: list[Block] = []
    for i, v in enumerate(analysis.variants, 1):
        c = v.classification
        if c is None:
            continue
        per_label = [
            [m.label, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", str(m.support)]
            for m in c.per_label
        ]
        blocks += [
            Heading(2, f"Per-label metrics: {v.name}"),
            Para(
                f"macro-F1 {c.macro_f1:.3f} · micro-F1 {c.micro_f1:.3f} · accuracy "
                f"{format_percent(c.accuracy)}"
            ),
            Table(["label", "precision", "recall", "F1", "support"], per_label),
            Heading(3, "Confusion matrix (counts; rows: expected, columns: chosen)"),
            _matrix_table(c, normalised=False),
            Heading(3, "Confusion matrix (share of each expected label)"),
            _matrix_table(c, normalised=True),
            Image(
                f"confusion-{i}-{_slug(v.name)}",
                f"confusion matrix of {v.name}",
                svg_confusion(c, normalised=True, title=f"{shorten(v.name, 40)}: confusion"),
            ),
        ]
    return blocks


def _groups_section(analysis: Analysis, max_group_gap: float | None) -> list[Block]:
    blocks: list[Block] = []
    metric = display_name(analysis.primary)
    for i, v in enumerate(analysis.variants, 1):
        g = v.groups
        if g is None:
            continue
        rows = [[name, _estimate(e), str(e.cases)] for name, e in g.by_group.items()]
        blocks += [Heading(2, f"Groups: {v.name}"), Table(["group", metric, "cases"], rows)]
        blocks += _gap_lines(v, max_group_gap)
        blocks.append(
            Image(
                f"groups-{i}-{_slug(v.name)}",
                f"{metric} of {v.name} by group",
                svg_groups(v, max_group_gap, metric),
            )
        )
    return blocks


def _gap_lines(v: VariantReport, max_group_gap: float | None) -> list[Block]:
    gap = v.groups.gap if v.groups else None
    if gap is None:
        return [Para("Only one group: no gap to measure.")]
    lo, hi = gap.interval
    if gap.high == gap.low or gap.gap == 0:
        return [
            Para(
                f"No gap: every group scores the same (bootstrap 95 % interval "
                f"{lo * 100:.1f} to {hi * 100:.1f})."
            )
        ]
    out: list[Block] = [
        Para(
            f"Largest gap {gap.gap * 100:.1f} points ({gap.high} over {gap.low}; bootstrap "
            f"95 % interval {lo * 100:.1f} to {hi * 100:.1f})"
        )
    ]
    if max_group_gap is not None:
        limit = f"{max_group_gap * 100:.1f} points"
        if gap.exceeds(max_group_gap):
            out.append(Para(f"Over the limit: the gap is more than {limit}.", flag=True))
        else:
            out.append(Para(f"Within the limit of {limit}."))
    return out


def report_blocks(
    run: EvalRun,
    test_set: TestSet,
    analysis: Analysis,
    prompt_name: str | None = None,
    max_group_gap: float | None = None,
) -> list[Block]:
    title, subtitle = _title(run, test_set, prompt_name)
    return [
        Heading(1, title),
        Para(subtitle),
        *_variants_section(analysis),
        *_likelihood_section(analysis),
        *_ratings_section(analysis),
        *_labels_section(analysis),
        *_groups_section(analysis, max_group_gap),
    ]


def markdown_report(
    run: EvalRun,
    test_set: TestSet,
    analysis: Analysis,
    prompt_name: str | None = None,
    max_group_gap: float | None = None,
    image_stem: str = "report",
) -> str:
    """The report as Markdown; its pictures are linked as `{image_stem}-bars.svg`,
    `{image_stem}-confusion-N-….svg` … (`write_report` writes them beside it)."""
    blocks = report_blocks(run, test_set, analysis, prompt_name, max_group_gap)
    return to_markdown(blocks, image_stem)


def html_report(
    run: EvalRun,
    test_set: TestSet,
    analysis: Analysis,
    prompt_name: str | None = None,
    max_group_gap: float | None = None,
) -> str:
    """The report as one HTML page with its pictures inline."""
    return to_html(report_blocks(run, test_set, analysis, prompt_name, max_group_gap))


# ---------------------------------------------------------------------------
# Writing


def report_format(path: Path | str) -> str:
    """ "md" or "html" from the file's suffix, for a file whose folder exists (checked
    before a long evaluation starts as well as when it is written); ReportError else."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ReportError(
            f"a report is written as .md or .html, not {suffix or 'a file without a suffix'}"
        )
    if not target.parent.is_dir():
        raise ReportError(f"cannot write the report: the folder {target.parent} does not exist")
    return suffix[1:]


def write_report(
    path: Path | str,
    run: EvalRun,
    test_set: TestSet,
    analysis: Analysis,
    max_group_gap: float | None = None,
    prompt_name: str | None = None,
) -> list[Path]:
    """Write the report chosen by the suffix (.md or .html) and return the files written.
    A .md gets its pictures beside it (`report.md`, `report-bars.svg`, …); .html has them
    inline. All of it is rendered and written to temp files before any takes its name,
    so a failure (a full disk) leaves no report and no picture, old or new, changed.
    ReportError when the suffix is unknown or the folder does not exist."""
    target = Path(path)
    kind = report_format(target)
    blocks = report_blocks(run, test_set, analysis, prompt_name, max_group_gap)
    if kind == "html":
        files = [(target, to_html(blocks))]
    else:
        stem = target.stem
        images = [
            (target.with_name(f"{stem}-{b.name}.svg"), b.svg)
            for b in blocks
            if isinstance(b, Image)
        ]
        files = [*images, (target, to_markdown(blocks, stem))]  # the report last
    staged: list[tuple[Path, Path]] = []
    try:
        for file, text in files:
            staged.append((_stage(file, text), file))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, file in staged:  # every file is on disk: now each takes its name
        os.replace(tmp, file)
    fsync_dir(target.parent)
    return [file for file, _ in files]


def _stage(path: Path, text: str) -> Path:
    """`text` in a temp file beside `path`, flushed to disk (renamed over it later)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
