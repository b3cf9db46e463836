"""HTML for the reports: the site dashboard, a site's month, the push status, the hub, and
the standalone page the command line writes. Jinja2 with autoescape; the SVG charts are
made by `domain.report_charts`, which escapes every text it draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from referral_gateway.domain.disclosure import Shown
from referral_gateway.domain.report_charts import (
    funnel_stages,
    funnel_svg,
    trend_series,
    trend_svg,
)
from referral_gateway.domain.report_period import LONDON, ReportMonth
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.domain.report_render import breakdown_label, display
from referral_gateway.domain.reporting import (
    APPROACHED,
    CANDIDATES,
    CONSENT_GIVEN,
    ENGAGED,
    RATES,
    REFERRED_ON,
    SCREENED,
    category_label,
    measure_label,
)

TEMPLATES = Path(__file__).with_name("templates")
HEADLINE = (SCREENED, CANDIDATES, APPROACHED, CONSENT_GIVEN, ENGAGED, REFERRED_ON)
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["shown"] = lambda v: display(v)
_env.filters["when"] = lambda d: d.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") if d else ""


@dataclass(frozen=True)
class Row:
    label: str
    value: Shown | None
    sub: bool


def month_label(month: ReportMonth) -> str:
    return f"{_MONTH_NAMES[month.month - 1]} {month.year}"


def headline() -> list[tuple[str, str]]:
    return [(m, measure_label(m)) for m in HEADLINE]


def detail_rows(report: PublishedReport) -> list[Row]:
    rows: list[Row] = []
    last_breakdown = ""
    for f in report.figures:
        if not f.cell.breakdown:
            rows.append(Row(measure_label(f.cell.measure), f.value, False))
            last_breakdown = ""
            continue
        if f.cell.breakdown != last_breakdown:
            last_breakdown = f.cell.breakdown
            rows.append(Row(f"{breakdown_label(f.cell.breakdown)}:", None, True))
        rows.append(Row(category_label(f.cell.category), f.value, True))
    return rows


def rate_rows(report: PublishedReport) -> list[tuple[str, Shown | None]]:
    labels = {r.key: r.label for r in RATES}
    return [(labels.get(r.key, r.key), r.value) for r in report.rates]


def _svg(text: str) -> Markup:
    return Markup(text)  # noqa: S704 - built by domain.report_charts, every text escaped


def site_charts(report: PublishedReport, trend: Sequence[PublishedReport]) -> dict[str, Any]:
    months = [r.month for r in trend]
    return {
        "funnel": _svg(
            funnel_svg(
                f"From candidate to support, {report.site}, {report.month}", funnel_stages(report)
            )
        ),
        "trend": _svg(
            trend_svg(
                f"12 months to {report.month}, {report.site}", months, trend_series(list(trend))
            )
        )
        if trend
        else None,
    }


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


def dashboard_page(
    *,
    base: str,
    month: ReportMonth,
    latest: ReportMonth,
    reports: Sequence[PublishedReport],
    raw: bool,
) -> str:
    return render(
        "reports_dashboard.html",
        base=base,
        month=str(month),
        latest=str(latest),
        month_label=month_label(month),
        reports=reports,
        headline=headline(),
        raw=raw,
    )


def site_page(
    *, base: str, report: PublishedReport, trend: Sequence[PublishedReport], raw: bool
) -> str:
    return render(
        "reports_site.html",
        base=base,
        report=report,
        month_label=month_label(report.month),
        rows=detail_rows(report),
        rates=rate_rows(report),
        raw=raw,
        **site_charts(report, trend),
    )


def admin_page(
    *,
    base: str,
    snapshots: Sequence[Any],
    states: Mapping[tuple[str, ReportMonth], Any],
    configured: bool,
) -> str:
    return render(
        "reports_admin.html", base=base, snapshots=snapshots, states=states, configured=configured
    )


def standalone_page(
    *,
    month: ReportMonth,
    reports: Sequence[PublishedReport],
    trends: Mapping[str, Sequence[PublishedReport]],
    generated_at: datetime,
    raw: bool,
) -> str:
    sections = []
    for rep in reports:
        sections.append(
            {
                "report": rep,
                "rows": detail_rows(rep),
                "rates": rate_rows(rep),
                **site_charts(rep, trends.get(rep.site, ())),
            }
        )
    return render(
        "report_standalone.html",
        month=str(month),
        month_label=month_label(month),
        sections=sections,
        generated_at=generated_at.astimezone(LONDON).isoformat(timespec="minutes"),
        raw=raw,
    )
