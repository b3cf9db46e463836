"""Published reports as files: CSV for Excel and JSON for machines; the ISTV extract as CSV.

CSV: UTF-8 with a byte-order mark (so Excel reads the encoding right), CRLF line ends, ISO
dates (yyyy-mm-dd), one figure per row ("long" form, ready for a pivot table), `*` for a
suppressed figure. Category keys avoid shapes Excel turns into dates ("10_to_15", never
"10-15"), and any text cell that starts like a formula is defused with a leading quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from referral_gateway.domain.disclosure import Shown
from referral_gateway.domain.istv import ISTV_COLUMNS, IstvRow
from referral_gateway.domain.report_published import PublishedReport, TotalFigure
from referral_gateway.domain.reporting import (
    BREAKDOWN_LABELS,
    RATES,
    cell_label,
)

BOM = "\ufeff"
CSV_COLUMNS = (
    "site",
    "period_start",
    "period_end",
    "disclosure",
    "measure",
    "breakdown",
    "category",
    "label",
    "unit",
    "value",
)
_RATE_LABELS = {r.key: r.label for r in RATES}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def report_rows(report: PublishedReport) -> list[dict[str, str]]:
    """One row per figure, then the percentages and the approach times."""
    base = {
        "site": report.site,
        "period_start": report.month.first_day.isoformat(),
        "period_end": report.month.last_day.isoformat(),
        "disclosure": report.disclosure,
    }
    rows = []
    for f in report.figures:
        rows.append(
            base
            | {
                "measure": f.cell.measure,
                "breakdown": f.cell.breakdown,
                "category": f.cell.category,
                "label": cell_label(f.cell),
                "unit": "count",
                "value": _cell(f.value),
            }
        )
    for r in report.rates:
        rows.append(
            base
            | {
                "measure": r.key,
                "breakdown": "",
                "category": "",
                "label": _RATE_LABELS.get(r.key, r.key),
                "unit": "percent",
                "value": _cell(r.value),
            }
        )
    times = report.approach_times
    for key, label, value in (
        ("arrival_to_approach_median", "Arrival to approach, median", times.median_minutes),
        ("arrival_to_approach_p90", "Arrival to approach, 90th percentile", times.p90_minutes),
    ):
        rows.append(
            base
            | {
                "measure": key,
                "breakdown": "",
                "category": "",
                "label": label,
                "unit": "minutes",
                "value": _cell(value),
            }
        )
    return rows


def reports_csv(reports: Iterable[PublishedReport]) -> bytes:
    return write_csv(CSV_COLUMNS, (row for rep in reports for row in report_rows(rep)))


def totals_csv(month_label: str, totals: Sequence[TotalFigure]) -> bytes:
    """Cross-site totals: the sum of the sites' shown figures and how many sites hid one."""
    columns = (
        "month",
        "measure",
        "breakdown",
        "category",
        "label",
        "known_total",
        "sites_suppressed",
    )
    rows = (
        {
            "month": month_label,
            "measure": t.cell.measure,
            "breakdown": t.cell.breakdown,
            "category": t.cell.category,
            "label": cell_label(t.cell),
            "known_total": str(t.known),
            "sites_suppressed": str(t.suppressed_sites),
        }
        for t in totals
    )
    return write_csv(columns, rows)


def reports_json(reports: Iterable[PublishedReport], *, generated_at: datetime) -> bytes:
    body: dict[str, Any] = {
        "generated_at": generated_at.isoformat(),
        "suppressed_marker": "*",
        "reports": [r.to_dict() for r in reports],
    }
    return json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")


def breakdown_label(breakdown: str) -> str:
    return BREAKDOWN_LABELS.get(breakdown, breakdown.replace("_", " "))


def display(value: Shown | None, *, unit: str = "") -> str:
    """A figure for a page: `*` stays `*`, None is a dash."""
    if value is None:
        return "\u2013"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return str(value)


def write_csv(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> bytes:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _defuse(v) for k, v in row.items()})
    return out.getvalue().encode("utf-8")


def _cell(value: Shown | None) -> str:
    return "" if value is None else str(value)


def _defuse(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def istv_csv(rows: Iterable[IstvRow]) -> bytes:
    """UTF-8 with BOM, CRLF, formula-looking text defused (as the report CSV)."""
    return write_csv(
        ISTV_COLUMNS,
        (
            {
                "arrival_date": r.arrival_date,
                "arrival_time": r.arrival_time,
                "assault_date": r.assault_date,
                "assault_time": r.assault_time,
                "method": r.method,
                "location_type": r.location_type,
                "location_description": r.location_description,
            }
            for r in rows
        ),
    )
