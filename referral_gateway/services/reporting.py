"""Building reports from wherever the facts live: `monthly_report`, trends, ISTV rows.

`FactsRepository` is the port; the database implementation lives in
`storage/report_facts.py`, and `InMemoryFacts` is the fake tests and demos use.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from referral_gateway.domain.istv import IstvRow, istv_rows
from referral_gateway.domain.report_facts import ReportFacts
from referral_gateway.domain.report_period import ReportMonth, trailing_months
from referral_gateway.domain.report_published import PublishedReport, publish
from referral_gateway.domain.reporting import MonthlyReport, build_monthly_reports

TREND_MONTHS = 12
GC_BATCH_THRESHOLD = 100_000


class _GcPacing:
    """Fewer passes of the cyclic garbage collector while a report is built.

    A year's report allocates some half a million short-lived objects (rows, datetimes,
    facts, tallies), none of them in reference cycles; with the default first-generation
    threshold (700) the collector walks them hundreds of times, a quarter of the time
    taken. While any report is being built the threshold is raised; the first caller saves
    the thresholds and the last one restores them (threads build reports concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[int, int, int] | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = gc.get_threshold()
                first, *rest = self._saved
                gc.set_threshold(max(first, GC_BATCH_THRESHOLD), *rest)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._saved is not None:
                    gc.set_threshold(*self._saved)
                    self._saved = None


gc_pacing = _GcPacing()


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
        with gc_pacing.batch():
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
