"""How long identifiable data is kept: pure rules, the clock passed in.

Only identifiable data is erased (name, NHS number, date of birth, address, phone, free
text, case notes); the non-identifying facts that reports count survive.

Without a basis for sharing (see `consent.records.current_basis`), identifiable data goes
after a short period, each configurable in `RetentionPolicy`, counted from:
- the "declined", "not approached" or "withdrawn" record (7 days each by default);
- the moment the attendance became a candidate, when nobody recorded any outcome (a stale
  candidate, 7 days);
- the moment the attendance was voided (cancelled by the sender, or no longer a candidate,
  7 days), when that comes sooner.

With consent given or a safeguarding override in force, the record of a young person's
support is a child's record and is kept, after support ended:
- until their 25th birthday, or their 26th if they were 17 when support ended (the NHS
  Records Management Code of Practice rule for children's records);
- for someone 18 or over when support ended, for `adult_retention_years` (8 by default, the
  same code's rule for adult records). Applying the 25th-birthday rule to them would erase a
  24-year-old's record days after support ended.
While support goes on nothing is erased, and a consented record with no date of birth is kept
and reported as `needs_birth_date` so that someone can fill it in.

Someone born on 29 February has their birthday on 1 March in other years.
Dates become instants at 00:00 UTC of that day.

Raw inbound messages (HL7, FHIR) hold identifiable data too and go after `raw_message_days`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from consent.errors import InvalidInputError, require_aware
from consent.records import ConsentOutcome, ConsentRecord, current_basis, latest_record


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    declined_days: int = 7
    not_approached_days: int = 7
    withdrawn_days: int = 7
    stale_candidate_days: int = 7
    voided_days: int = 7
    raw_message_days: int = 30
    adult_retention_years: int = 8

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"RetentionPolicy.{f.name} must be a whole number >= 0.")


class RetentionRule(enum.StrEnum):
    DECLINED = "declined"
    NOT_APPROACHED = "not_approached"
    WITHDRAWN = "withdrawn"
    STALE_CANDIDATE = "stale_candidate"
    VOIDED = "voided"
    UNTIL_25TH_BIRTHDAY = "until_25th_birthday"
    UNTIL_26TH_BIRTHDAY = "until_26th_birthday"
    YEARS_AFTER_SUPPORT = "years_after_support"  # 18 or over when support ended
    SUPPORT_ONGOING = "support_ongoing"
    NEEDS_BIRTH_DATE = "needs_birth_date"


@dataclass(frozen=True, slots=True)
class ReferralFacts:
    """What the retention rules need to know about one referral."""

    candidate_since: datetime  # when the attendance became a candidate
    history: Sequence[ConsentRecord] = ()
    voided_at: datetime | None = None  # cancelled by the sender, or no longer a candidate
    birth_date: date | None = None
    support_ended_on: date | None = None  # the day the referral was closed

    def __repr__(self) -> str:  # the birth date is identifiable
        return f"ReferralFacts(records={len(self.history)}, voided={self.voided_at is not None})"


@dataclass(frozen=True, slots=True)
class Retention:
    rule: RetentionRule
    erase_after: datetime | None  # None: keep for now (see `rule` for why)

    def due(self, now: datetime) -> bool:
        require_aware(now, "now")
        return self.erase_after is not None and now >= self.erase_after


def identifiable_retention(facts: ReferralFacts, policy: RetentionPolicy) -> Retention:
    """Which rule keeps the referral's identifiable data, and until when."""
    require_aware(facts.candidate_since, "candidate_since")
    if facts.voided_at is not None:
        require_aware(facts.voided_at, "voided_at")

    if current_basis(facts.history) is not None:
        if facts.support_ended_on is None:
            return Retention(RetentionRule.SUPPORT_ONGOING, None)
        if facts.birth_date is None:
            return Retention(RetentionRule.NEEDS_BIRTH_DATE, None)
        rule, until = _consented(
            facts.birth_date, facts.support_ended_on, policy.adult_retention_years
        )
        return Retention(rule, datetime.combine(until, time.min, tzinfo=UTC))

    latest = latest_record(facts.history)
    if latest is None:
        rule, since, days = (
            RetentionRule.STALE_CANDIDATE,
            facts.candidate_since,
            policy.stale_candidate_days,
        )
    else:
        rule, days = {
            ConsentOutcome.DECLINED: (RetentionRule.DECLINED, policy.declined_days),
            ConsentOutcome.NOT_APPROACHED: (
                RetentionRule.NOT_APPROACHED,
                policy.not_approached_days,
            ),
            ConsentOutcome.WITHDRAWN: (RetentionRule.WITHDRAWN, policy.withdrawn_days),
        }[latest.outcome]
        since = latest.recorded_at
    erase_after = since + timedelta(days=days)
    if facts.voided_at is not None:
        voided_after = facts.voided_at + timedelta(days=policy.voided_days)
        if voided_after < erase_after:
            return Retention(RetentionRule.VOIDED, voided_after)
    return Retention(rule, erase_after)


def identifiable_erasure_due(
    facts: ReferralFacts, policy: RetentionPolicy, *, now: datetime
) -> bool:
    return identifiable_retention(facts, policy).due(now)


def raw_message_erasure_due(
    received_at: datetime, policy: RetentionPolicy, *, now: datetime
) -> bool:
    require_aware(received_at, "received_at")
    require_aware(now, "now")
    return now >= received_at + timedelta(days=policy.raw_message_days)


def consented_retention_until(
    birth_date: date, support_ended_on: date, *, adult_years: int = 8
) -> date:
    """The day a consented referral's identifiable data may go: the 25th birthday, the 26th
    if the young person was 17 when support ended, or `adult_years` after support ended if
    they were 18 or over."""
    return _consented(birth_date, support_ended_on, adult_years)[1]


def anniversary(day: date, years: int) -> date:
    """`day` moved on by whole years; 29 February becomes 1 March in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return date(day.year + years, 3, 1)


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on `day` (someone born on 29 February turns a year older on
    1 March in a common year)."""
    age = day.year - birth_date.year
    if anniversary(birth_date, age) > day:
        age -= 1
    return age


def _consented(
    birth_date: date, support_ended_on: date, adult_years: int
) -> tuple[RetentionRule, date]:
    if support_ended_on < birth_date:
        raise InvalidInputError("Support cannot end before the young person was born.")
    age = age_on(birth_date, support_ended_on)
    if age >= 18:
        return RetentionRule.YEARS_AFTER_SUPPORT, anniversary(support_ended_on, adult_years)
    if age == 17:
        return RetentionRule.UNTIL_26TH_BIRTHDAY, anniversary(birth_date, 26)
    return RetentionRule.UNTIL_25TH_BIRTHDAY, anniversary(birth_date, 25)
