"""Charts drawn on the server as SVG: no JavaScript, nothing fetched by the browser.

A suppressed figure is never plotted as a number: the trend line breaks there and a `*`
marks the month; a suppressed funnel stage shows `*` without a bar. Every chart carries a
<title> and a <desc> for screen readers, and the same figures are always in a table beside
it on the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from referral_gateway.domain.disclosure import Shown
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.domain.reporting import (
    APPROACHED,
    CANDIDATES,
    CONSENT_GIVEN,
    ENGAGED,
    REFERRED_ON,
    SIGNPOSTED,
    measure_label,
)

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
TREND_MEASURES = (CANDIDATES, APPROACHED, CONSENT_GIVEN, ENGAGED)
FUNNEL_MEASURES = (CANDIDATES, APPROACHED, CONSENT_GIVEN, ENGAGED, REFERRED_ON, SIGNPOSTED)
CHART_WIDTH = 440  # drawn small enough to stay legible when a phone scales it to 330 px
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def trend_series(
    reports: Sequence[PublishedReport | None], measures: Sequence[str] = TREND_MEASURES
) -> dict[str, list[Shown | None]]:
    """Per measure, one value per report (None where a month has no report)."""
    return {m: [None if r is None else r.value(m) for r in reports] for m in measures}


def trend_svg(
    title: str,
    months: Sequence[ReportMonth],
    series: Mapping[str, Sequence[Shown | None]],
    *,
    width: int = CHART_WIDTH,
    plot_height: int = 180,
) -> str:
    left, right, top = 40, 16, 36
    legend = _legend_rows([measure_label(m) for m in series], width - 16)
    bottom = 40 + 18 * len(legend)
    height = top + plot_height + bottom
    plot_w, plot_h = width - left - right, plot_height
    known = [v for values in series.values() for v in values if isinstance(v, int)]
    y_max = _nice_ceiling(max(known, default=0))
    n = len(months)
    step = plot_w / max(n - 1, 1)

    def x(i: int) -> float:
        return left + i * step if n > 1 else left + plot_w / 2

    def y(v: int) -> float:
        return top + plot_h - (v / y_max) * plot_h

    parts = [_open(width, height, title, _trend_desc(months, series))]
    for tick in range(0, y_max + 1, max(y_max // 4, 1)):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick}</text>'
        )
    for i, month in enumerate(months):
        label = _MONTHS[month.month - 1]
        year = str(month.year) if i == 0 or month.month == 1 else ""
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{label}</text>'
        )
        if year:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 30}" text-anchor="middle" '
                f'font-size="10" fill="#555">{year}</text>'
            )
    for s, (measure, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate(values):
            if isinstance(v, int):
                run.append(f"{x(i):.1f},{y(v):.1f}")
                parts.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(measure_label(measure))}, {escape(str(months[i]))}: "
                    f"{v}</title></circle>"
                )
            else:
                parts.append(_polyline(run, colour))
                run = []
                if v is not None:  # suppressed
                    parts.append(
                        f'<text x="{x(i):.1f}" y="{top + plot_h - 4 - 12 * s:.1f}" '
                        f'text-anchor="middle" font-size="12" fill="{colour}">*<title>'
                        f"{escape(measure_label(measure))}, {escape(str(months[i]))}: "
                        f"suppressed (1 to 7)</title></text>"
                    )
        parts.append(_polyline(run, colour))
    for row, items in enumerate(legend):
        ly = top + plot_h + 40 + 18 * row
        for lx, s, label in items:
            colour = PALETTE[s % len(PALETTE)]
            parts.append(
                f'<rect x="{8 + lx}" y="{ly}" width="12" height="12" fill="{colour}"/>'
                f'<text x="{8 + lx + 16}" y="{ly + 10}" font-size="11">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


FunnelStage = tuple[str, int | None, str]
"""(measure, bar length or None when there is no number to draw, label beside the bar)"""


def funnel_stages(report: PublishedReport) -> list[FunnelStage]:
    stages: list[FunnelStage] = []
    for m in FUNNEL_MEASURES:
        v = report.value(m)
        stages.append((m, v if isinstance(v, int) else None, str(v)))
    return stages


def funnel_svg(title: str, stages: Sequence[FunnelStage], *, width: int = CHART_WIDTH) -> str:
    """Horizontal bars from candidates down to engagement and what followed. A stage
    without a number (suppressed) gets its label and no bar."""
    row_h, label_w, top = 30, 180, 34
    height = top + row_h * len(stages) + 10
    biggest = max((bar for _, bar, _ in stages if bar is not None), default=0) or 1
    bar_w = width - label_w - 90
    desc = "; ".join(f"{measure_label(m)}: {label}" for m, _, label in stages)
    parts = [_open(width, height, title, desc)]
    for i, (measure, bar, label) in enumerate(stages):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" font-size="11">'
            f"{escape(measure_label(measure))}</text>"
        )
        w = bar_w * bar / biggest if bar is not None else 0.0
        if bar is not None:
            parts.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{PALETTE[0]}"/>'
            )
        shown = label if bar is not None or label != "*" else "* (suppressed)"
        parts.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" font-size="12">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>'
    )


def _trend_desc(months: Sequence[ReportMonth], series: Mapping[str, Sequence[Shown | None]]) -> str:
    lines = []
    for measure, values in series.items():
        points = ", ".join(
            f"{m}: {'no report' if v is None else v}" for m, v in zip(months, values, strict=False)
        )
        lines.append(f"{measure_label(measure)}: {points}")
    return "; ".join(lines)


def _legend_rows(labels: Sequence[str], width: int) -> list[list[tuple[int, int, str]]]:
    """The legend's items (x, series index, label) in as many rows as the width needs,
    at about 6 px per character of an 11 px label."""
    rows: list[list[tuple[int, int, str]]] = [[]]
    x = 0
    for i, label in enumerate(labels):
        item_w = 16 + 6 * len(label) + 14
        if rows[-1] and x + item_w > width:
            rows.append([])
            x = 0
        rows[-1].append((x, i, label))
        x += item_w
    return rows if rows[0] else []


def _polyline(points: list[str], colour: str) -> str:
    if len(points) < 2:
        return ""
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'


def _nice_ceiling(value: int) -> int:
    """A round axis top at or above `value` (at least 10)."""
    top = 10
    while top < value:
        for factor in (2, 5 / 2, 2):
            top = int(top * factor)
            if top >= value:
                break
    return top
