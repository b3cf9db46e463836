from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from consent.errors import InvalidInputError
from consent.records import ConsentRecord
from consent.retention import (
    ReferralFacts,
    Retention,
    RetentionPolicy,
    RetentionRule,
    age_on,
    consented_retention_until,
    identifiable_erasure_due,
    identifiable_retention,
    raw_message_erasure_due,
)
from tests.consent.builders import (
    T0,
    declined,
    given_by_young_person,
    history_of,
    not_approached,
    override,
    withdrawn,
)

POLICY = RetentionPolicy()
SECOND = timedelta(seconds=1)
CANDIDATE_SINCE = T0 - timedelta(hours=1)


def midnight_utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


# -- without a basis: short retention ------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "rule", "erase_after"),
    [
        (history_of(declined()), RetentionRule.DECLINED, datetime(2025, 3, 21, 22, 30, tzinfo=UTC)),
        (
            history_of(not_approached()),
            RetentionRule.NOT_APPROACHED,
            datetime(2025, 3, 21, 22, 30, tzinfo=UTC),
        ),
        (
            history_of(given_by_young_person(), withdrawn()),  # withdrawn at T0 + 10 min
            RetentionRule.WITHDRAWN,
            datetime(2025, 3, 21, 22, 40, tzinfo=UTC),
        ),
        ([], RetentionRule.STALE_CANDIDATE, datetime(2025, 3, 21, 21, 30, tzinfo=UTC)),
    ],
    ids=["declined", "not approached", "withdrawn", "stale candidate"],
)
def test_identifiable_data_without_a_basis_goes_seven_days_after_the_outcome(
    history: list[ConsentRecord], rule: RetentionRule, erase_after: datetime
) -> None:
    facts = ReferralFacts(candidate_since=CANDIDATE_SINCE, history=history)

    assert identifiable_retention(facts, POLICY) == Retention(rule, erase_after)
    assert not identifiable_erasure_due(facts, POLICY, now=erase_after - SECOND)
    assert identifiable_erasure_due(facts, POLICY, now=erase_after)


def test_the_decline_period_is_configurable() -> None:
    facts = ReferralFacts(candidate_since=CANDIDATE_SINCE, history=history_of(declined()))

    retention = identifiable_retention(facts, RetentionPolicy(declined_days=2))

    assert retention.erase_after == datetime(2025, 3, 16, 22, 30, tzinfo=UTC)


def test_a_voided_attendance_goes_sooner_when_its_period_ends_first() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE, voided_at=T0 + timedelta(hours=1), history=()
    )

    retention = identifiable_retention(facts, RetentionPolicy(voided_days=1))

    assert retention == Retention(RetentionRule.VOIDED, datetime(2025, 3, 15, 23, 30, tzinfo=UTC))


def test_a_voided_attendance_keeps_the_earlier_deadline_of_its_outcome() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        voided_at=T0 + timedelta(days=3),
        history=history_of(declined()),
    )

    assert identifiable_retention(facts, POLICY).rule is RetentionRule.DECLINED


# -- with a basis: the child-record rule ---------------------------------------------------------


def test_a_consented_record_is_kept_while_support_goes_on() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(given_by_young_person()),
        birth_date=date(2008, 6, 1),
    )

    assert identifiable_retention(facts, POLICY) == Retention(RetentionRule.SUPPORT_ONGOING, None)
    assert not identifiable_erasure_due(facts, POLICY, now=T0 + timedelta(days=365 * 30))


def test_a_consented_record_without_a_birth_date_is_kept_and_flagged() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(given_by_young_person()),
        support_ended_on=date(2025, 6, 30),
    )

    assert identifiable_retention(facts, POLICY) == Retention(RetentionRule.NEEDS_BIRTH_DATE, None)


def test_sixteen_when_support_ended_is_kept_until_the_25th_birthday() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(given_by_young_person(age=16)),
        birth_date=date(2009, 6, 1),
        support_ended_on=date(2025, 9, 30),
    )

    retention = identifiable_retention(facts, POLICY)

    assert retention == Retention(RetentionRule.UNTIL_25TH_BIRTHDAY, midnight_utc(2034, 6, 1))
    assert not retention.due(midnight_utc(2034, 6, 1) - SECOND)
    assert retention.due(midnight_utc(2034, 6, 1))


def test_seventeen_when_support_ended_is_kept_until_the_26th_birthday() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(given_by_young_person(age=17)),
        birth_date=date(2008, 6, 1),
        support_ended_on=date(2025, 9, 30),
    )

    retention = identifiable_retention(facts, POLICY)

    assert retention == Retention(RetentionRule.UNTIL_26TH_BIRTHDAY, midnight_utc(2034, 6, 1))


def test_a_safeguarding_override_keeps_the_record_like_consent() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(override()),
        birth_date=date(2012, 4, 2),
        support_ended_on=date(2025, 9, 30),
    )

    assert identifiable_retention(facts, POLICY) == Retention(
        RetentionRule.UNTIL_25TH_BIRTHDAY, midnight_utc(2037, 4, 2)
    )


def test_a_consented_record_ignores_the_attendance_being_voided() -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        voided_at=T0 + timedelta(hours=1),
        history=history_of(given_by_young_person()),
        birth_date=date(2008, 6, 1),
        support_ended_on=date(2025, 9, 30),
    )

    assert identifiable_retention(facts, POLICY).rule is RetentionRule.UNTIL_26TH_BIRTHDAY


@pytest.mark.parametrize(
    ("support_ended_on", "rule", "until"),
    [
        # born 1 October 2008
        (date(2025, 9, 30), RetentionRule.UNTIL_25TH_BIRTHDAY, date(2033, 10, 1)),  # 16
        (date(2025, 10, 1), RetentionRule.UNTIL_26TH_BIRTHDAY, date(2034, 10, 1)),  # 17 today
        (date(2026, 9, 30), RetentionRule.UNTIL_26TH_BIRTHDAY, date(2034, 10, 1)),  # still 17
        (date(2026, 10, 1), RetentionRule.YEARS_AFTER_SUPPORT, date(2034, 10, 1)),  # 18 today
    ],
)
def test_the_age_when_support_ended_decides_on_birthdays(
    support_ended_on: date, rule: RetentionRule, until: date
) -> None:
    facts = ReferralFacts(
        candidate_since=CANDIDATE_SINCE,
        history=history_of(given_by_young_person(age=16)),
        birth_date=date(2008, 10, 1),
        support_ended_on=support_ended_on,
    )

    assert consented_retention_until(date(2008, 10, 1), support_ended_on) == until
    assert identifiable_retention(facts, POLICY) == Retention(
        rule, datetime(until.year, until.month, until.day, tzinfo=UTC)
    )


def test_eighteen_or_over_when_support_ended_is_kept_eight_years_after_support() -> None:
    born, ended = date(2001, 1, 15), date(2025, 9, 30)  # 24 when support ended

    assert consented_retention_until(born, ended) == date(2033, 9, 30)
    assert consented_retention_until(born, ended, adult_years=6) == date(2031, 9, 30)


# -- leap-day birthdays ------------------------------------------------------------------------


def test_someone_born_on_a_leap_day_is_still_sixteen_on_28_february_of_a_common_year() -> None:
    born = date(2008, 2, 29)

    assert age_on(born, date(2025, 2, 28)) == 16
    assert age_on(born, date(2025, 3, 1)) == 17
    assert age_on(born, date(2024, 2, 29)) == 16


def test_a_leap_day_25th_birthday_in_a_common_year_falls_on_1_march() -> None:
    # 16 when support ended on 28 February 2025; 2033 is a common year
    assert consented_retention_until(date(2008, 2, 29), date(2025, 2, 28)) == date(2033, 3, 1)


def test_a_leap_day_child_who_turned_17_on_1_march_is_kept_until_the_26th_birthday() -> None:
    # 17 from 1 March 2025; the 26th birthday falls in 2034, a common year
    assert consented_retention_until(date(2008, 2, 29), date(2025, 3, 1)) == date(2034, 3, 1)


def test_a_leap_day_birthday_that_lands_in_a_leap_year_stays_on_29_february() -> None:
    # 25th birthday of someone born 29 February 2012 is in 2037 (common): 1 March
    # 8 years after support ending on 29 February 2024 is 29 February 2032 (leap)
    assert consented_retention_until(date(2012, 2, 29), date(2025, 1, 10)) == date(2037, 3, 1)
    assert consented_retention_until(date(2005, 5, 5), date(2024, 2, 29)) == date(2032, 2, 29)


# -- raw messages and inputs ---------------------------------------------------------------------


def test_raw_messages_go_after_the_configured_days() -> None:
    received = T0

    assert not raw_message_erasure_due(received, POLICY, now=T0 + timedelta(days=30) - SECOND)
    assert raw_message_erasure_due(received, POLICY, now=T0 + timedelta(days=30))
    assert not raw_message_erasure_due(
        received, RetentionPolicy(raw_message_days=90), now=T0 + timedelta(days=30)
    )


@pytest.mark.parametrize("field", ["declined_days", "raw_message_days", "adult_retention_years"])
def test_a_negative_period_is_a_programming_error(field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        RetentionPolicy(**{field: -1})


def test_support_ending_before_birth_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        consented_retention_until(date(2010, 1, 1), date(2009, 12, 31))


def test_a_naive_clock_is_a_programming_error() -> None:
    facts = ReferralFacts(candidate_since=CANDIDATE_SINCE)

    with pytest.raises(InvalidInputError):
        identifiable_erasure_due(facts, POLICY, now=datetime(2025, 4, 1))


def test_facts_repr_hides_the_birth_date() -> None:
    facts = ReferralFacts(candidate_since=CANDIDATE_SINCE, birth_date=date(2008, 2, 29))

    assert "2008" not in repr(facts)
