"""The report's pictures as SVG text, drawn in plain Python (no plotting library): the
per-variant metric bars with their interval whiskers, a confusion matrix as a heat map
with the counts in its cells, and one variant's metric per group with whiskers and the
allowed gap. Every piece of user text (variant, label and group names) is escaped, and
long names are shortened with the whole name in a <title> tooltip."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from workbench.core.analysis import Analysis, Estimate, VariantReport
from workbench.core.flows.report import display_name, format_percent
from workbench.core.stats import Classification

BEST_COLOUR = "#e0821f"  # the best variant (the Optimise dialog's mark)
EQUAL_COLOUR = "#f3bf86"  # not distinguishable from the best
BAR_COLOUR = "#7a8ca6"
OVER_COLOUR = "#d62728"  # a group beyond the allowed gap; the limit line
INK = "#222222"
GRID = "#dddddd"
MUTED = "#666666"
_MUTED = f' fill="{MUTED}"'
FONT = 'font-family="\'DejaVu Sans\', Arial, sans-serif" font-size="12"'


def esc(text: object) -> str:
    """Text safe inside an SVG/HTML element or a quoted attribute."""
    return escape(str(text), quote=True)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _svg(width: float, height: float, title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" {FONT}>',
            f"<title>{esc(title)}</title>",
            f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
            *body,
            "</svg>",
        ]
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'


def _label(x: float, y: float, name: str, limit: int, anchor: str = "middle") -> str:
    """A name shortened to `limit` characters, the whole name as its tooltip."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"><title>{esc(name)}</title>'
        f"{esc(shorten(name, limit))}</text>"
    )


def hint_svg(message: str, width: int = 420, height: int = 60) -> str:
    """A picture saying why there is nothing to draw."""
    return _svg(width, height, message, [_text(width / 2, height / 2 + 4, message, extra=_MUTED)])


def _percent_axis(left: float, right: float, top: float, plot_h: float) -> list[str]:
    out = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 6, y + 4, f"{tick * 100:.0f} %", "end", _MUTED))
    return out


def _bars_with_whiskers(
    estimates: Sequence[tuple[str, Estimate, str]], top: float, plot_h: float, left: float
) -> list[str]:
    """(name, estimate, colour) bars on a 0–100 % axis, one slot each, names below."""
    slot = SLOT
    y0 = top + plot_h

    def y(v: float) -> float:
        return top + plot_h * (1 - min(1.0, max(0.0, v)))

    out = _percent_axis(left, left + slot * len(estimates), top, plot_h)
    for i, (name, est, colour) in enumerate(estimates):
        cx = left + slot * (i + 0.5)
        bar_w = slot * 0.55
        tip = f"{name}: {format_percent(est.value, est.interval)} of {est.cases} cases"
        out.append(
            f'<rect x="{cx - bar_w / 2:.1f}" y="{y(est.value):.1f}" width="{bar_w:.1f}" '
            f'height="{y0 - y(est.value):.1f}" fill="{colour}"><title>{esc(tip)}</title></rect>'
        )
        top_of_label = y(est.value)
        if est.interval is not None:
            lo, hi = y(est.interval[0]), y(est.interval[1])
            out.append(
                f'<path d="M{cx:.1f} {lo:.1f}V{hi:.1f}M{cx - 8:.1f} {lo:.1f}H{cx + 8:.1f}'
                f'M{cx - 8:.1f} {hi:.1f}H{cx + 8:.1f}" stroke="{INK}" stroke-width="1.5" '
                'fill="none"/>'
            )
            top_of_label = min(top_of_label, hi)
        out.append(
            _text(cx, top_of_label - 6, f"{est.value * 100:.1f} %", extra=' font-weight="bold"')
        )
        out.append(_label(cx, y0 + 18, name, 16))
        out.append(_text(cx, y0 + 33, f"{est.cases} cases", extra=_MUTED))
    out.append(
        f'<line x1="{left:.1f}" y1="{y0:.1f}" x2="{left + slot * len(estimates):.1f}" '
        f'y2="{y0:.1f}" stroke="{INK}"/>'
    )
    return out


SLOT = 120  # px per bar
PLOT_H = 220


def svg_metric_bars(analysis: Analysis) -> str:
    """Each variant's primary metric as a bar with its 95 % interval as a whisker; the best
    variant and those not distinguishable from it in their own colours."""
    metric = display_name(analysis.primary)
    if not analysis.variants:
        return hint_svg("No variants to show")
    best = analysis.best[0] if analysis.best else None
    bars = []
    for v in analysis.variants:
        colour = BAR_COLOUR
        if v.name == best:
            colour = BEST_COLOUR
        elif v.name in analysis.best:
            colour = EQUAL_COLOUR
        bars.append((v.name, v.primary, colour))
    left, top = 56.0, 58.0
    width = max(left + SLOT * len(bars) + 16, 420)
    height = top + PLOT_H + 48
    legend = [
        _text(8, 18, f"{metric} per variant, with 95 % intervals", "start", ' font-weight="bold"'),
        f'<rect x="8" y="28" width="12" height="12" fill="{BEST_COLOUR}"/>',
        _text(24, 38, "best", "start"),
        f'<rect x="64" y="28" width="12" height="12" fill="{EQUAL_COLOUR}"/>',
        _text(80, 38, "not distinguishable from the best", "start"),
    ]
    body = legend + _bars_with_whiskers(bars, top, PLOT_H, left)
    return _svg(width, height, f"{metric} per variant", body)


def _ramp(t: float) -> str:
    """White to dark blue."""
    t = min(1.0, max(0.0, t))
    start, end = (247, 251, 255), (8, 69, 148)
    r, g, b = (round(a + (z - a) * t) for a, z in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def svg_confusion(classification: Classification, normalised: bool = True, title: str = "") -> str:
    """The confusion matrix as a heat map: rows are the expected labels, columns the
    labels chosen. Each cell shows its count; `normalised` also shows the row share and
    colours by it (a rare label's row reads as clearly as a common one's), otherwise the
    colour follows the count."""
    labels = classification.labels
    matrix = classification.matrix
    if not labels:
        return hint_svg("Confusion matrix needs a test set with a label set")
    k = len(labels)
    cell = max(30, min(64, 520 // k))
    shares = classification.row_normalised()
    peak = max((max(row) for row in matrix), default=0) or 1
    name_w = min(150, 12 + 7 * max(len(shorten(x, 20)) for x in labels))
    col_h = min(120, 10 + 5 * max(len(shorten(x, 20)) for x in labels))
    left, top = 24 + name_w, 34 + col_h
    width = max(left + cell * k + col_h, 300)  # a rotated column name reaches right
    height = top + cell * k + 30
    body = [
        _text(
            8,
            18,
            title or "confusion matrix (rows: expected, columns: chosen)",
            "start",
            ' font-weight="bold"',
        ),
        _text(
            12,
            top + cell * k / 2,
            "expected",
            extra=f' transform="rotate(-90 12 {top + cell * k / 2:.1f})"{_MUTED}',
        ),
        _text(left + cell * k / 2, top + cell * k + 20, "chosen", extra=_MUTED),
    ]
    for j, label in enumerate(labels):
        x, y = left + cell * (j + 0.5) + 4, top - 6
        body.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="start" transform="rotate(-45 {x:.1f} '
            f'{y:.1f})"><title>{esc(label)}</title>{esc(shorten(label, 20))}</text>'
        )
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        y = top + cell * i
        body.append(_label(left - 6, y + cell / 2 + 4, label, 20, "end"))
        for j, n in enumerate(row):
            x = left + cell * j
            t = shares[i][j] if normalised else n / peak
            ink = "#ffffff" if t > 0.55 else INK
            tip = f"expected {label}, chosen {labels[j]}: {n} ({shares[i][j] * 100:.0f} % of row)"
            stroke = INK if i == j else "#ffffff"
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="{_ramp(t)}" stroke="{stroke}" stroke-width="1">'
                f"<title>{esc(tip)}</title></rect>"
            )
            if normalised and cell >= 40:
                body.append(
                    _text(
                        x + cell / 2,
                        y + cell / 2,
                        str(n),
                        extra=f' fill="{ink}" font-weight="bold"',
                    )
                )
                body.append(
                    _text(
                        x + cell / 2,
                        y + cell / 2 + 14,
                        f"{shares[i][j] * 100:.0f} %",
                        extra=f' fill="{ink}" font-size="10"',
                    )
                )
            else:
                body.append(_text(x + cell / 2, y + cell / 2 + 4, str(n), extra=f' fill="{ink}"'))
    return _svg(width, height, title or "confusion matrix", body)


def svg_groups(
    variant: VariantReport, max_group_gap: float | None = None, metric: str = "accuracy"
) -> str:
    """One variant's metric per group as bars with interval whiskers, the largest gap
    under the title and, with `max_group_gap`, a dashed line at the best group's value
    less the allowed gap: a group below it is beyond the limit (drawn in red)."""
    report = variant.groups
    if report is None or not report.by_group:
        return hint_svg("No groups: the test set's rows have no group")
    gap = report.gap
    floor = None
    if gap is not None and max_group_gap is not None:
        floor = report.by_group[gap.high].value - max_group_gap
    bars = [
        (g, e, OVER_COLOUR if floor is not None and e.value < floor - 1e-12 else BAR_COLOUR)
        for g, e in report.by_group.items()
    ]
    left, top = 56.0, 84.0
    right = left + SLOT * len(bars)
    width = max(right + (110 if floor is not None else 16), 460)
    height = top + PLOT_H + 48
    body = [
        _text(
            8, 18, f"{shorten(variant.name, 40)}: {metric} by group", "start", ' font-weight="bold"'
        )
    ]
    if gap is not None:
        lo, hi = gap.interval
        if gap.high == gap.low or gap.gap == 0:
            body.append(_text(8, 36, "no gap: every group scores the same", "start", _MUTED))
        else:
            high, low = shorten(gap.high, 24), shorten(gap.low, 24)
            line = f"largest gap {gap.gap * 100:.1f} points: {high} over {low}"
            body.append(_text(8, 36, line, "start", _MUTED))
        interval = f"bootstrap 95 % interval of the gap: {lo * 100:.1f} to {hi * 100:.1f} points"
        body.append(_text(8, 52, interval, "start", _MUTED))
        if max_group_gap is not None:
            over = gap.exceeds(max_group_gap)
            verdict = (
                f"over the limit of {max_group_gap * 100:.1f} points"
                if over
                else f"within the limit of {max_group_gap * 100:.1f} points"
            )
            colour = OVER_COLOUR if over else MUTED
            body.append(_text(8, 68, verdict, "start", f' fill="{colour}" font-weight="bold"'))
    body += _bars_with_whiskers(bars, top, PLOT_H, left)
    if floor is not None and max_group_gap is not None:
        y = top + PLOT_H * (1 - min(1.0, max(0.0, floor)))
        body.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" '
            f'stroke="{OVER_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        for dy, words in ((-2, "limit: best"), (11, f"− {max_group_gap * 100:.1f} points")):
            body.append(
                _text(right + 6, y + dy, words, "start", f' fill="{OVER_COLOUR}" font-size="10"')
            )
    return _svg(width, height, f"{variant.name}: {metric} by group", body)
