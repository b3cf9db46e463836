"""Building reports from wherever the facts live: `monthly_report`, trends, ISTV rows.

`FactsRepository` is the port; the database implementation lives in
`storage/report_facts.py`, and `InMemoryFacts` is the fake tests and demos use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from referral_gateway.domain.istv import IstvRow, istv_rows
from referral_gateway.domain.report_facts import ReportFacts
from referral_gateway.domain.report_period import ReportMonth, trailing_months
from referral_gateway.domain.report_published import PublishedReport, publish
from referral_gateway.domain.reporting import MonthlyReport, build_monthly_reports

TREND_MONTHS = 12


class FactsRepository(Protocol):
    def sites(self) -> list[str]:
        """Every site with attendances."""
        ...

    def report_facts(
        self, site: str, first: ReportMonth, last: ReportMonth
    ) -> Iterable[ReportFacts]:
        """What `build_monthly_reports` needs for months first..last: the site's candidates
        that arrived from 12 months before `first` to the end of `last`, and those closed
        or followed up within the months. Non-candidates may be left out when
        `screened_counts` answers."""
        ...

    def screened_counts(
        self, site: str, first: ReportMonth, last: ReportMonth
    ) -> Mapping[ReportMonth, int] | None:
        """ED attendances screened per month, or None to count them from the facts."""
        ...

    def assault_facts(self, site: str, month: ReportMonth) -> Iterable[ReportFacts]:
        """The site's assault attendances (any age) that arrived in the month."""
        ...


@dataclass
class InMemoryFacts:
    """Facts held in a list: a fake for tests, demos and the benchmark's baseline."""

    facts: list[ReportFacts] = field(default_factory=list)

    def sites(self) -> list[str]:
        return sorted({f.site for f in self.facts})

    def report_facts(
        self, site: str, first: ReportMonth, last: ReportMonth
    ) -> Iterable[ReportFacts]:
        return [f for f in self.facts if f.site == site]

    def screened_counts(
        self, site: str, first: ReportMonth, last: ReportMonth
    ) -> Mapping[ReportMonth, int] | None:
        return None

    def assault_facts(self, site: str, month: ReportMonth) -> Iterable[ReportFacts]:
        return [f for f in self.facts if f.site == site and f.is_assault]


class ReportService:
    def __init__(self, facts: FactsRepository) -> None:
        self.facts = facts

    def sites(self) -> list[str]:
        return self.facts.sites()

    def monthly_reports(
        self, site: str, months: Sequence[ReportMonth]
    ) -> dict[ReportMonth, MonthlyReport]:
        first, last = min(months), max(months)
        return build_monthly_reports(
            site,
            months,
            self.facts.report_facts(site, first, last),
            screened=self.facts.screened_counts(site, first, last),
        )

    def monthly_report(self, site: str, month: ReportMonth) -> MonthlyReport:
        return self.monthly_reports(site, [month])[month]

    def published(self, site: str, month: ReportMonth, *, raw: bool = False) -> PublishedReport:
        return publish(self.monthly_report(site, month), raw=raw)

    def trend(
        self, site: str, last: ReportMonth, *, months: int = TREND_MONTHS, raw: bool = False
    ) -> list[PublishedReport]:
        span = trailing_months(last, months)
        reports = self.monthly_reports(site, span)
        return [publish(reports[m], raw=raw) for m in span]

    def istv(self, site: str, month: ReportMonth) -> list[IstvRow]:
        return istv_rows(self.facts.assault_facts(site, month), site, month)
