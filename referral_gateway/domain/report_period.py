"""Report months: calendar months in Europe/London, whatever the clocks do.

A month runs from local midnight on the 1st to local midnight on the 1st of the next month.
In March the month is an hour shorter than its days suggest and in October an hour longer;
bounds are computed in local time and only then turned into UTC, so an attendance at 00:30
BST on 1 April belongs to April even though it is 23:30 UTC on 31 March.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from referral_gateway.domain.errors import ReportMonthError

LONDON = ZoneInfo("Europe/London")
PUSH_HOUR = 6  # the finished month's report is pushed at 06:00 London time on the 1st

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class ReportMonth:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9999:
            raise ReportMonthError(f"no such report month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> ReportMonth:
        match = _MONTH.match(text.strip())
        if match is None:
            raise ReportMonthError(f"a month is written YYYY-MM, not {text[:20]!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> ReportMonth:
        """The month an aware moment falls in, in London."""
        local = _aware(moment, "moment").astimezone(LONDON)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> ReportMonth:
        return ReportMonth(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> ReportMonth:
        return ReportMonth(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def shifted(self, months: int) -> ReportMonth:
        index = self.year * 12 + (self.month - 1) + months
        return ReportMonth(index // 12, index % 12 + 1)

    def start(self) -> datetime:
        """Local midnight on the 1st, as an aware UTC datetime."""
        return datetime.combine(self.first_day, time(0), tzinfo=LONDON).astimezone(UTC)

    def end(self) -> datetime:
        """Exclusive: the start of the next month."""
        return self.next().start()

    def contains(self, moment: datetime) -> bool:
        return self.start() <= _aware(moment, "moment") < self.end()

    def push_due_at(self) -> datetime:
        """When this month's report is due to be pushed: 06:00 London on the next 1st."""
        local = datetime.combine(self.next().first_day, time(PUSH_HOUR), tzinfo=LONDON)
        return local.astimezone(UTC)


def trailing_months(last: ReportMonth, count: int) -> tuple[ReportMonth, ...]:
    """`count` months ending with `last`, oldest first."""
    if count < 1:
        raise ReportMonthError("a trend needs at least one month")
    return tuple(last.shifted(-offset) for offset in range(count - 1, -1, -1))


def latest_finished_month(now: datetime) -> ReportMonth:
    """The last month that has ended in London at `now`."""
    return ReportMonth.of(now).previous()


def latest_due_month(now: datetime) -> ReportMonth:
    """The newest month whose push time (06:00 London on the next 1st) has come at `now`.

    Between midnight and 06:00 on the 1st the month just ended is not yet due, so the month
    before it is the newest due; from 06:00 on the month just ended is due and stays the
    newest due until the next 1st (a process started later in the month still owes it).
    """
    month = latest_finished_month(now)
    return month if _aware(now, "now") >= month.push_due_at() else month.previous()


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment
