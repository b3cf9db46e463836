"""What a candidate's history means for the monthly report: its consent records, the
contacts and onward referrals of its casework, and the later attendances of the same young
person. The storage layer reads the records; the rules that turn them into a `ReportFacts`
live here, in the gateway's own enums.

**The approach** (`approach_of`), from the consent records in order:
- consent *given* if it was ever given (a later withdrawal does not undo that it was given);
  who gave it is the giver of the first consent;
- else *declined* if ever declined;
- else *not approached*, with the reason of the latest not-approached record;
- else no outcome yet.
A safeguarding override ever recorded is counted beside the outcome, never as one: an
override alone is not an approach.

**Arrival to approach** (`approached_at`): the earliest of the time the youth worker gave
for a contact that reached the young person, and the time the first approach outcome
(given, declined or withdrawn) was recorded. The recording is made at or after the
conversation, so it is an upper bound the contact time corrects when earlier; for a declined
approach (no contact attempts are allowed) it is all there is. Not approached has no time.

**Casework** (`casework_of`): a contact *reached* the young person when its outcome is
engaged or spoke-not-engaged. **First contact** is the method of the earliest contact that
reached them (by time, then by the order they were logged). **Engaged**: a contact with
outcome engaged, or support started. **Signposted**: any signposting recorded; **referred
on**: the service type of each onward referral.

**Re-attendance** (`reattended_within_a_year`): a later arrival with an assault signal
within a year of the arrival (29 February: a year on is 1 March).

**Detection rule** (`signal_kind`): the kind of the first assault signal that made the
attendance a candidate ("snomed", "icd10", "ecds", "text", ...), from its stored reasons.
**Screened**: an ED attendance the detector looked at (not `NOT_SCREENED_RULES`, not
cancelled). **Assault** (`is_assault`, the ISTV extract, any age): detection decided on an
assault signal or found one that counts. An injury category this release does not know
counts as other (`injury_category_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from consent.records import ConsentGiver, ConsentOutcome
from referral_gateway.domain.casework import ContactMethod, ContactOutcome, OnwardKind
from referral_gateway.domain.detection import DecidingRule, ReasonKind
from referral_gateway.domain.valuesets import InjuryCategory


class ConsentStep(Protocol):
    """A consent record as the report reads it (values as stored: enum values)."""

    @property
    def seq(self) -> int: ...
    @property
    def outcome(self) -> str: ...  # a ConsentOutcome value
    @property
    def giver(self) -> str | None: ...  # a ConsentGiver value
    @property
    def not_approached_reason(self) -> str | None: ...
    @property
    def recorded_at(self) -> datetime: ...


class ContactStep(Protocol):
    """A contact attempt: `id` orders attempts logged with the same time."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def method(self) -> str: ...  # a ContactMethod value
    @property
    def outcome(self) -> str: ...  # a ContactOutcome value


class OnwardStep(Protocol):
    @property
    def kind(self) -> str: ...  # an OnwardKind value
    @property
    def service_type(self) -> str: ...


@dataclass(frozen=True)
class Approach:
    """The outcome of the approach, as `ReportFacts` carries it."""

    outcome: ConsentOutcome | None = None  # given, declined, not approached, or None
    giver: ConsentGiver | None = None
    not_approached_reason: str | None = None
    override: bool = False  # a safeguarding override was recorded
    approached_at: datetime | None = None  # when the first approach outcome was recorded


NO_APPROACH = Approach()
APPROACH_OUTCOMES = frozenset(
    {ConsentOutcome.GIVEN, ConsentOutcome.DECLINED, ConsentOutcome.WITHDRAWN}
)
_GIVERS: dict[str | None, ConsentGiver] = {g.value: g for g in ConsentGiver}


def approach_of(records: Sequence[ConsentStep]) -> Approach:
    """A referral's consent history (in any order) as the report counts it."""
    if not records:
        return NO_APPROACH
    if len(records) > 1:
        records = sorted(records, key=lambda r: r.seq)
    outcomes = [r.outcome for r in records]
    override = ConsentOutcome.SAFEGUARDING_OVERRIDE in outcomes
    if ConsentOutcome.GIVEN in outcomes:
        first_given = next(r for r in records if r.outcome == ConsentOutcome.GIVEN)
        giver = _GIVERS.get(first_given.giver)
        return Approach(ConsentOutcome.GIVEN, giver, None, override, _first_approach(records))
    if ConsentOutcome.DECLINED in outcomes:
        return Approach(ConsentOutcome.DECLINED, None, None, override, _first_approach(records))
    if ConsentOutcome.NOT_APPROACHED in outcomes:
        reason = [
            r.not_approached_reason for r in records if r.outcome == ConsentOutcome.NOT_APPROACHED
        ][-1]
        return Approach(ConsentOutcome.NOT_APPROACHED, None, reason, override, None)
    return Approach(None, None, None, override, None)


def _first_approach(records: Sequence[ConsentStep]) -> datetime:
    return min(r.recorded_at for r in records if r.outcome in APPROACH_OUTCOMES)


REACHED_OUTCOMES = frozenset({ContactOutcome.ENGAGED, ContactOutcome.SPOKE_NOT_ENGAGED})
"""Contact outcomes in which the youth worker reached the young person."""


@dataclass(frozen=True)
class CaseworkSummary:
    reached_at: datetime | None = None  # when the first contact that reached them was made
    first_method: ContactMethod | None = None
    engaged: bool = False
    signposted: bool = False
    referred_to: tuple[str, ...] = ()  # service types


NO_CASEWORK = CaseworkSummary()
ENGAGED_ONLY = CaseworkSummary(engaged=True)
_METHODS: dict[str, ContactMethod] = {m.value: m for m in ContactMethod}


def casework_of(
    reached: Sequence[ContactStep], onwards: Sequence[OnwardStep], engaged: bool
) -> CaseworkSummary:
    """A referral's contacts that reached the young person (`reached`, in any order), its
    onward referrals and signposting, as the report counts them. `engaged`: support started
    (an engaged contact among `reached` counts too)."""
    engaged = engaged or any(c.outcome == ContactOutcome.ENGAGED for c in reached)
    if not reached and not onwards:
        return ENGAGED_ONLY if engaged else NO_CASEWORK
    first = min(reached, key=lambda c: (c.at, c.id)) if reached else None
    return CaseworkSummary(
        reached_at=first.at if first is not None else None,
        first_method=_METHODS.get(first.method) if first is not None else None,
        engaged=engaged,
        signposted=any(o.kind == OnwardKind.SIGNPOST for o in onwards),
        referred_to=tuple(o.service_type for o in onwards if o.kind == OnwardKind.REFERRAL),
    )


def engagement_of(reached: Sequence[ContactStep], engaged: bool) -> CaseworkSummary:
    """Only whether the young person engaged (what the report reads of the year before):
    support started (`engaged`) or an engaged contact among `reached`."""
    if engaged or any(c.outcome == ContactOutcome.ENGAGED for c in reached):
        return ENGAGED_ONLY
    return NO_CASEWORK


def approached_at(approach: Approach, casework: CaseworkSummary) -> datetime | None:
    """When the youth worker first spoke to the young person (see the module's notes)."""
    first = approach.approached_at
    if casework.reached_at is not None and (first is None or casework.reached_at < first):
        return casework.reached_at
    return first


def reattended_within_a_year(later_arrivals: Iterable[datetime], arrival: datetime) -> bool:
    until = _one_year_on(arrival)
    return any(arrival < later <= until for later in later_arrivals)


def _one_year_on(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February: a year on is 1 March
        return moment.replace(year=moment.year + 1, month=3, day=1)


def signal_kind(reasons: Iterable[Mapping[str, str]]) -> str:
    """The kind of the first assault signal among a detection's reasons (each with its
    "kind" and "rule", as stored): the rule's prefix, e.g. 'snomed', 'icd10', 'ecds' or
    'text'; the deciding rule's name when none is given."""
    for reason in reasons:
        if reason.get("kind") == ReasonKind.ASSAULT:
            return str(reason.get("rule", "")).split(":", 1)[0] or _ASSAULT_RULE
    return _ASSAULT_RULE


_ASSAULT_RULE = DecidingRule.ASSAULT_SIGNAL.value


def is_assault(deciding_rule: str | None, reasons: Iterable[Mapping[str, str]]) -> bool:
    """An assault attendance at any age (the ISTV extract): detection decided on an assault
    signal, or found one that counts even though another gate (age) decided."""
    return deciding_rule == DecidingRule.ASSAULT_SIGNAL or any(
        r.get("kind") == ReasonKind.ASSAULT for r in reasons
    )


NOT_SCREENED_RULES = frozenset({DecidingRule.NOT_EMERGENCY, DecidingRule.CANCELLED})
"""Attendances the detector did not screen: not an ED attendance, or cancelled."""


def injury_category_of(value: str | None) -> InjuryCategory | None:
    """The injury category of a stored value; one this release does not know counts as
    other."""
    return _INJURIES.get(value, InjuryCategory.OTHER) if value else None


_INJURIES: dict[str | None, InjuryCategory] = {c.value: c for c in InjuryCategory}
