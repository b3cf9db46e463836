"""The Cardiff Model information-sharing extract (ISTV) for the Community Safety Partnership.

One row per assault attendance in the month (any age, not only the programme's band):
arrival date and time, assault date and time, method, location type and location
description. No identifiers: no name, NHS number, date of birth, age, sex, address, visit
number or site patient id. Times are London local time, dates ISO (yyyy-mm-dd).

The gateway's ED feeds carry the arrival time and, through detection, an injury category.
They do not carry the time or place of the assault: those columns come from
`ReportFacts.assault_detail` when a site captures them, and are blank otherwise. Method
falls back to the injury category ("bladed", "firearm", ...). The CSV file is made by
`report_formats.files.istv_csv`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from referral_gateway.domain.report_facts import ReportFacts
from referral_gateway.domain.report_period import LONDON, ReportMonth

ISTV_COLUMNS = (
    "arrival_date",
    "arrival_time",
    "assault_date",
    "assault_time",
    "method",
    "location_type",
    "location_description",
)
MAX_DESCRIPTION = 200


@dataclass(frozen=True, slots=True)
class IstvRow:
    arrival_date: str
    arrival_time: str
    assault_date: str
    assault_time: str
    method: str
    location_type: str
    location_description: str

    def __repr__(self) -> str:  # the description is free text
        return f"IstvRow(arrival_date={self.arrival_date!r})"


def istv_rows(facts: Iterable[ReportFacts], site: str, month: ReportMonth) -> list[IstvRow]:
    """The site's assault attendances that arrived in `month`, in arrival order."""
    chosen = sorted(
        (f for f in facts if f.site == site and f.is_assault and month.contains(f.arrival)),
        key=lambda f: f.arrival,
    )
    rows = []
    for f in chosen:
        arrival = f.arrival.astimezone(LONDON)
        detail = f.assault_detail
        assault = detail.assault_at.astimezone(LONDON) if detail and detail.assault_at else None
        method = (detail.method if detail and detail.method else None) or (
            f.injury_category.value if f.injury_category else ""
        )
        rows.append(
            IstvRow(
                arrival_date=arrival.date().isoformat(),
                arrival_time=arrival.strftime("%H:%M"),
                assault_date=assault.date().isoformat() if assault else "",
                assault_time=assault.strftime("%H:%M") if assault else "",
                method=method,
                location_type=(detail.location_type or "") if detail else "",
                location_description=_one_line(detail.location_description) if detail else "",
            )
        )
    return rows


def _one_line(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.split())[:MAX_DESCRIPTION]
