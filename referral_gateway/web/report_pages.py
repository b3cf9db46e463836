"""HTML for the reports: the dashboard, a site's month, the push status, the hub, and the
standalone page the command line writes. Jinja2 with autoescape; the SVG charts are made by
`report_formats.charts`, which escapes every text it draws.

The dashboard, site and push pages are pages of the web app (`base.html`: navigation,
sign-out, the app's style sheets, no inline style or script under its content security
policy); the standalone page and the hub keep their own self-contained layout. Every page
renders through the one environment `web.render.make_templates` makes (times in the
configured zone), handed in as `templates`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from referral_gateway.domain.disclosure import SUPPRESSED, Shown
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import (
    CONTROLLED,
    PublishedReport,
    cross_site_totals,
)
from referral_gateway.domain.reporting import (
    APPROACHED,
    CANDIDATES,
    CONSENT_GIVEN,
    ENGAGED,
    RATES,
    REFERRED_ON,
    SCREENED,
    Cell,
    category_label,
    measure_label,
)
from referral_gateway.report_formats.charts import (
    FUNNEL_MEASURES,
    TREND_MEASURES,
    FunnelStage,
    funnel_stages,
    funnel_svg,
    trend_series,
    trend_svg,
)
from referral_gateway.report_formats.files import breakdown_label

HEADLINE = (SCREENED, CANDIDATES, APPROACHED, CONSENT_GIVEN, ENGAGED, REFERRED_ON)
_MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    label: str
    value: Shown | None
    sub: bool


def month_label(month: ReportMonth) -> str:
    return f"{_MONTH_NAMES[month.month - 1]} {month.year}"


MONTHS_TO_CHOOSE = 36


def month_choices(chosen: ReportMonth, latest: ReportMonth) -> list[tuple[str, str]]:
    """The months a picker offers, newest first: three years back from `latest`, and the
    chosen one if older. A select works in every browser (`<input type=month>` is a plain
    text box in some)."""
    months = [latest.shifted(-back) for back in range(MONTHS_TO_CHOOSE)]
    if chosen not in months:
        months.append(chosen)
    return [(str(m), month_label(m)) for m in months]


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


def cell_label(cell: Cell) -> str:
    """A figure's name for a list of changes: "Candidates", "Candidates, by age: 16-17"."""
    if not cell.breakdown:
        return measure_label(cell.measure)
    return (
        f"{measure_label(cell.measure)}, {breakdown_label(cell.breakdown)}: "
        f"{category_label(cell.category)}"
    )


def rate_rows(report: PublishedReport) -> list[tuple[str, Shown | None]]:
    labels = {r.key: r.label for r in RATES}
    return [(labels.get(r.key, r.key), r.value) for r in report.rates]


def _svg(text: str) -> Markup:
    return Markup(text)  # noqa: S704 - built by report_formats.charts, every text escaped


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


def render(templates: Environment, template: str, **context: Any) -> str:
    return templates.get_template(template).render(**context)


def combined_charts(
    title: str, months: Sequence[ReportMonth], monthly: Sequence[Sequence[PublishedReport]]
) -> dict[str, Markup]:
    """The funnel (of the last month) and the 12-month trend over several sites' reports.

    Disclosure-controlled reports add up as shown: a figure some sites hid is drawn from
    the sites that showed it and labelled "40 + 1 x *" in the funnel, and the trend breaks
    there (`*`); never an estimate of the hidden ones. Raw reports (administrators) add up
    exactly."""
    series: dict[str, list[Shown | None]] = {m: [] for m in TREND_MEASURES}
    totals: dict[str, tuple[int, str, Shown]] = {}
    for reports in monthly:
        totals = _totals(reports)
        for measure, values in series.items():
            values.append(totals[measure][2] if reports else None)
    stages: list[FunnelStage] = [
        (m, totals[m][0] if m in totals else 0, totals[m][1] if m in totals else "0")
        for m in FUNNEL_MEASURES
    ]
    last = months[-1] if months else None
    return {
        "funnel": _svg(funnel_svg(f"From candidate to support, {title}, {last}", stages)),
        "trend": _svg(trend_svg(f"12 months to {last}, {title}", months, series)),
    }


def _totals(reports: Sequence[PublishedReport]) -> dict[str, tuple[int, str, Shown]]:
    """Per headline measure: the bar length, the label, and the value for the trend."""
    out: dict[str, tuple[int, str, Shown]] = {}
    measures = {*TREND_MEASURES, *FUNNEL_MEASURES}
    if reports and all(r.disclosure == CONTROLLED for r in reports):
        for t in cross_site_totals(reports):
            if t.cell.measure in measures and t.cell == Cell(t.cell.measure):
                value: Shown = SUPPRESSED if t.suppressed_sites else t.known
                out[t.cell.measure] = (t.known, t.display(), value)
    else:
        for measure in measures:
            n = sum(int(r.value(measure)) for r in reports)
            out[measure] = (n, str(n), n)
    for measure in measures:
        out.setdefault(measure, (0, "0", 0))
    return out


def dashboard_page(
    templates: Environment,
    *,
    base: str,
    month: ReportMonth,
    latest: ReportMonth,
    trends: Mapping[str, Sequence[PublishedReport]],
    raw: bool,
    session: Any = None,
) -> str:
    """One row per site for `month`, and the funnel and trend over the sites shown.
    `trends`: per site, its reports for the 12 months to `month` (oldest first)."""
    reports = [trend[-1] for trend in trends.values() if trend]
    months = next((tuple(r.month for r in t) for t in trends.values() if t), (month,))
    monthly = [[t[i] for t in trends.values() if len(t) > i] for i in range(len(months))]
    title = reports[0].site if len(reports) == 1 else f"{len(reports)} sites"
    return render(
        templates,
        "reports_dashboard.html",
        base=base,
        month=str(month),
        latest=str(latest),
        month_label=month_label(month),
        month_choices=month_choices(month, latest),
        reports=reports,
        headline=headline(),
        raw=raw,
        charts=_dashboard_charts(trends, title, months, monthly),
        **_page(session),
    )


def _dashboard_charts(
    trends: Mapping[str, Sequence[PublishedReport]],
    title: str,
    months: Sequence[ReportMonth],
    monthly: Sequence[Sequence[PublishedReport]],
) -> dict[str, Any] | None:
    shown = [t for t in trends.values() if t]
    if not shown:
        return None
    if len(shown) == 1:  # one site: its own figures, as its page draws them
        return site_charts(shown[0][-1], shown[0])
    return combined_charts(title, months, monthly)


def site_page(
    templates: Environment,
    *,
    base: str,
    report: PublishedReport,
    trend: Sequence[PublishedReport],
    raw: bool,
    session: Any = None,
    drift: Any = None,
    may_reissue: bool = False,
) -> str:
    """One site's month; with `drift` (services.report_push.MonthDrift), a notice that the
    live figures differ from the version frozen (and sent), and for `may_reissue` the form
    that re-issues the month as a correction."""
    return render(
        templates,
        "reports_site.html",
        base=base,
        report=report,
        month_label=month_label(report.month),
        rows=detail_rows(report),
        rates=rate_rows(report),
        raw=raw,
        drift=drift,
        drift_rows=[
            (cell_label(c.cell), c.frozen, c.live)
            for c in (drift.changes if drift is not None else ())
        ],
        may_reissue=may_reissue,
        **site_charts(report, trend),
        **_page(session),
    )


def admin_page(
    templates: Environment,
    *,
    base: str,
    snapshots: Sequence[Any],
    states: Mapping[tuple[str, ReportMonth], Any],
    configured: bool,
    session: Any = None,
    done_message: str = "",
) -> str:
    unsent = any(p.status.value != "sent" for p in states.values()) or len(states) < len(snapshots)
    return render(
        templates,
        "reports_admin.html",
        base=base,
        snapshots=snapshots,
        states=states,
        configured=configured,
        unsent=unsent,
        **_page(session, done_message),
    )


def _page(session: Any, done_message: str = "") -> dict[str, Any]:
    """What `base.html` needs: who is signed in, their form token, a notice."""
    return {
        "user": session.user if session is not None else None,
        "csrf_token": session.csrf_token if session is not None else "",
        "done_message": done_message,
    }


def standalone_page(
    templates: Environment,
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
        templates,
        "report_standalone.html",
        month=str(month),
        month_label=month_label(month),
        sections=sections,
        generated_at=generated_at,
        raw=raw,
    )
