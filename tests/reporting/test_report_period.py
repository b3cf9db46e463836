"""Report months follow the London calendar across both clock changes."""

from datetime import UTC, datetime

import pytest

from referral_gateway.domain.errors import ReportMonthError
from referral_gateway.domain.report_period import ReportMonth, latest_due_month, trailing_months


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_april_starts_at_london_midnight_which_is_2300_utc_the_day_before():
    assert ReportMonth(2024, 4).start() == utc(2024, 3, 31, 23, 0)


def test_october_ends_at_london_midnight_after_the_clocks_went_back():
    october = ReportMonth(2024, 10)
    assert october.start() == utc(2024, 9, 30, 23, 0)  # BST
    assert october.end() == utc(2024, 11, 1, 0, 0)  # GMT
    assert october.contains(utc(2024, 10, 31, 23, 59))
    assert not october.contains(utc(2024, 9, 30, 22, 59))


def test_months_are_parsed_from_yyyy_mm_only():
    assert ReportMonth.parse("2025-01") == ReportMonth(2025, 1)
    for bad in ("2025-13", "2025-1", "25-01", "2025/01", ""):
        with pytest.raises(ReportMonthError):
            ReportMonth.parse(bad)


def test_december_is_followed_by_january_of_the_next_year():
    assert ReportMonth(2024, 12).next() == ReportMonth(2025, 1)
    assert ReportMonth(2025, 1).previous() == ReportMonth(2024, 12)
    assert ReportMonth(2025, 3).shifted(-12) == ReportMonth(2024, 3)


def test_a_twelve_month_trend_ends_with_the_month_asked_for():
    months = trailing_months(ReportMonth(2025, 2), 12)
    assert (months[0], months[-1], len(months)) == (ReportMonth(2024, 3), ReportMonth(2025, 2), 12)


def test_the_push_is_due_at_six_in_the_morning_london_time():
    assert ReportMonth(2024, 10).push_due_at() == utc(2024, 11, 1, 6, 0)  # GMT
    assert ReportMonth(2025, 3).push_due_at() == utc(2025, 4, 1, 5, 0)  # BST


def test_a_month_is_not_due_before_six_on_the_first():
    assert latest_due_month(utc(2024, 11, 1, 5, 59)) == ReportMonth(2024, 9)
    assert latest_due_month(utc(2024, 11, 1, 6, 0)) == ReportMonth(2024, 10)
    assert latest_due_month(utc(2024, 11, 20, 12, 0)) == ReportMonth(2024, 10)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        ReportMonth.of(datetime(2024, 10, 1))
