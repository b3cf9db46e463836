"""A monthly report as it may leave the gateway: disclosure-controlled (everyone) or raw
(administrators only), as a plain dict for JSON, and cross-site totals for the hub.

The dict form is the wire format between sites and the hub and the content of frozen
snapshots, so it is versioned (`format`) and read back strictly: a hub never trusts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from referral_gateway.domain.disclosure import (
    SMALLEST_SHOWN,
    SUPPRESSED,
    Shown,
    disclose,
    percentage,
    publishable,
    recoverable,
)
from referral_gateway.domain.errors import ReportFormatError, ReportMonthError
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.reporting import RATES, Cell, MonthlyReport, relations_of

FORMAT = "rg-monthly-report/1"
CONTROLLED = "controlled"
RAW = "raw"


@dataclass(frozen=True, slots=True)
class Figure:
    cell: Cell
    value: Shown


@dataclass(frozen=True, slots=True)
class PublishedRate:
    key: str
    value: Shown | None  # None: denominator 0


@dataclass(frozen=True, slots=True)
class PublishedTimes:
    median_minutes: Shown | None  # None: nobody approached with both times known
    p90_minutes: Shown | None


@dataclass(frozen=True)
class PublishedReport:
    site: str
    month: ReportMonth
    disclosure: str  # CONTROLLED or RAW
    figures: tuple[Figure, ...]
    rates: tuple[PublishedRate, ...]
    approach_times: PublishedTimes
    secondary: frozenset[Cell] = frozenset()  # which cells secondary suppression hid

    def value(self, measure: str, breakdown: str = "", category: str = "") -> Shown:
        wanted = Cell(measure, breakdown, category)
        for f in self.figures:
            if f.cell == wanted:
                return f.value
        raise KeyError(str(wanted))

    def values(self) -> dict[Cell, Shown]:
        return {f.cell: f.value for f in self.figures}

    def rate(self, key: str) -> Shown | None:
        for r in self.rates:
            if r.key == key:
                return r.value
        raise KeyError(key)

    def rates_by_key(self) -> dict[str, Shown | None]:
        return {r.key: r.value for r in self.rates}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "site": self.site,
            "month": str(self.month),
            "period_start": self.month.first_day.isoformat(),
            "period_end": self.month.last_day.isoformat(),
            "disclosure": self.disclosure,
            "figures": [
                {
                    "measure": f.cell.measure,
                    "breakdown": f.cell.breakdown,
                    "category": f.cell.category,
                    "value": f.value,
                }
                for f in self.figures
            ],
            "rates": [{"rate": r.key, "percent": r.value} for r in self.rates],
            "arrival_to_approach_minutes": {
                "median": self.approach_times.median_minutes,
                "p90": self.approach_times.p90_minutes,
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> PublishedReport:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ReportFormatError(f"not a report in format {FORMAT}")
        site = data.get("site")
        if not isinstance(site, str) or not 0 < len(site) <= 40:
            raise ReportFormatError("site must be an ODS code")
        try:
            month = ReportMonth.parse(str(data.get("month", "")))
        except ReportMonthError:
            raise ReportFormatError("month must be YYYY-MM") from None
        if data.get("disclosure") not in (CONTROLLED, RAW):
            raise ReportFormatError("disclosure must be 'controlled' or 'raw'")
        figures = []
        for item in _list(data, "figures"):
            if not isinstance(item, dict):
                raise ReportFormatError("each figure must be an object")
            cell = Cell(_text(item, "measure"), _text(item, "breakdown"), _text(item, "category"))
            figures.append(Figure(cell, _shown(item.get("value"), "figure value")))
        rates = []
        for item in _list(data, "rates"):
            if not isinstance(item, dict):
                raise ReportFormatError("each rate must be an object")
            value = item.get("percent")
            rates.append(
                PublishedRate(
                    _text(item, "rate"), None if value is None else _shown(value, "percent")
                )
            )
        times = data.get("arrival_to_approach_minutes")
        if not isinstance(times, dict):
            raise ReportFormatError("arrival_to_approach_minutes must be an object")
        return cls(
            site=site,
            month=month,
            disclosure=str(data["disclosure"]),
            figures=tuple(figures),
            rates=tuple(rates),
            approach_times=PublishedTimes(
                _optional_shown(times.get("median"), "median"),
                _optional_shown(times.get("p90"), "p90"),
            ),
        )


def publish(report: MonthlyReport, *, raw: bool = False) -> PublishedReport:
    """The report with disclosure control applied (primary and secondary suppression,
    rounding, percentages from rounded figures). `raw=True` only for administrators."""
    disclosure = disclose(report.counts, report.relations, raw=raw)
    shown = disclosure.shown
    times = report.approach_times
    if times.count == 0 or times.median_minutes is None or times.p90_minutes is None:
        published_times = PublishedTimes(None, None)
    elif not raw and times.count < SMALLEST_SHOWN:
        published_times = PublishedTimes(SUPPRESSED, SUPPRESSED)
    else:
        published_times = PublishedTimes(
            _whole_minutes(times.median_minutes), _whole_minutes(times.p90_minutes)
        )
    return PublishedReport(
        site=report.site,
        month=report.month,
        disclosure=RAW if raw else CONTROLLED,
        figures=tuple(Figure(cell, shown[cell]) for cell in report.counts),
        rates=tuple(
            PublishedRate(r.key, percentage(shown.get(r.numerator, 0), shown.get(r.denominator, 0)))
            for r in RATES
        ),
        approach_times=published_times,
        secondary=disclosure.secondary,
    )


@dataclass(frozen=True, slots=True)
class DisclosureBreach:
    """Why a report that says it is disclosure-controlled is not: the rule it fails and the
    figures (by name, never by value) that fail it.

    - `small_number`: a count of 1 to 7 shown as itself, not as `*`;
    - `unrounded`: a count of 8 or more not shown as a multiple of 5;
    - `recoverable`: a total and its parts with exactly one `*`, so it can be worked out;
    - `rate_not_from_shown_figures`: a percentage that is not the one the shown figures give
      (`*` when either side is `*`).
    """

    rule: str
    cells: tuple[str, ...]


def disclosure_breach(report: PublishedReport) -> DisclosureBreach | None:
    """The first disclosure rule a controlled report breaks, or None: the same rules
    (`disclosure.primary`, the secondary relations, `percentage`) that `publish` applies,
    checked on what was published. A raw report is not checked (it is never published)."""
    if report.disclosure != CONTROLLED:
        return None
    shown = report.values()
    small = [c for c, v in shown.items() if isinstance(v, int) and 0 < v < SMALLEST_SHOWN]
    if small:
        return DisclosureBreach("small_number", _names(small))
    unrounded = [c for c, v in shown.items() if not publishable(v)]
    if unrounded:
        return DisclosureBreach("unrounded", _names(unrounded))
    relations = [
        rel
        for rel in relations_of(dict.fromkeys(shown, 0))
        if all(m in shown for m in (rel.total, *rel.parts))
    ]
    exposed = [rel.total for rel in relations if recoverable(rel, shown)]
    if exposed:
        return DisclosureBreach("recoverable", _names(exposed))
    sent = report.rates_by_key()
    wrong_rates = [
        r.key
        for r in RATES
        if r.key in sent
        and sent[r.key] != percentage(shown.get(r.numerator, 0), shown.get(r.denominator, 0))
    ]
    if wrong_rates:
        return DisclosureBreach("rate_not_from_shown_figures", tuple(wrong_rates))
    return None


def _names(cells: Sequence[Cell]) -> tuple[str, ...]:
    return tuple(str(c) for c in cells)


@dataclass(frozen=True, slots=True)
class TotalFigure:
    """A figure summed over sites: `known` adds the shown values; `suppressed_sites` says how
    many sites showed `*` (each hides 1 to 7), so the true total is at least `known` plus
    that many, give or take the rounding of each site."""

    cell: Cell
    known: int
    suppressed_sites: int

    def display(self) -> str:
        if self.suppressed_sites == 0:
            return str(self.known)
        return f"{self.known} + {self.suppressed_sites} x *"


def cross_site_totals(reports: Sequence[PublishedReport]) -> tuple[TotalFigure, ...]:
    """Totals over several sites' controlled reports for one month, in the order figures
    first appear. Raw reports are refused: totals of mixed raw and rounded figures would be
    neither."""
    order: dict[Cell, None] = {}
    known: dict[Cell, int] = {}
    hidden: dict[Cell, int] = {}
    for rep in reports:
        if rep.disclosure != CONTROLLED:
            raise ReportFormatError("cross-site totals take disclosure-controlled reports only")
        for f in rep.figures:
            order.setdefault(f.cell)
            if f.value == SUPPRESSED:
                hidden[f.cell] = hidden.get(f.cell, 0) + 1
            else:
                assert isinstance(f.value, int)
                known[f.cell] = known.get(f.cell, 0) + f.value
    return tuple(TotalFigure(c, known.get(c, 0), hidden.get(c, 0)) for c in order)


def total_rates(totals: Sequence[TotalFigure]) -> dict[str, Shown | None]:
    """Rates over the totals; `*` where a total leans on a suppressed site figure."""
    by_cell: Mapping[Cell, TotalFigure] = {t.cell: t for t in totals}

    def shown(cell: Cell) -> Shown:
        t = by_cell.get(cell)
        if t is None:
            return 0
        return SUPPRESSED if t.suppressed_sites else t.known

    return {r.key: percentage(shown(r.numerator), shown(r.denominator)) for r in RATES}


def _whole_minutes(minutes: float) -> int:
    return int(minutes + 0.5)


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ReportFormatError(f"{key} must be a list")
    return value


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or len(value) > 80:
        raise ReportFormatError(f"{key} must be a short string")
    return value


def _shown(value: Any, what: str) -> Shown:
    if value == SUPPRESSED:
        return SUPPRESSED
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportFormatError(f"{what} must be a count or '*'")
    return value


def _optional_shown(value: Any, what: str) -> Shown | None:
    return None if value is None else _shown(value, what)
