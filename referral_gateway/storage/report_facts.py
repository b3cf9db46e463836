"""Report facts from the database (the `FactsRepository` of services.reporting).

From the spine tables, per candidate referral: arrival, age, sex, the kind of signal that
made it a candidate ("by rule": snomed, icd10, ecds, text, or manual for a referral made by
ED staff), the injury category, and re-attendance with a violent injury within 12 months,
matched across sites by the keyed NHS-number hash. ED attendances screened are counted in
SQL, month by month.

From the consent records (`consent_record`): the outcome of the approach (given if consent
was ever given, else declined, else not approached with the latest reason), who consented,
and whether a safeguarding override was ever recorded.

From the queue's casework tables (`storage/casework.py`):
- `contact_attempt` (time, method, outcome). A contact *reached* the young person when its
  outcome is `engaged` or `spoke_not_engaged`; no answer, a message left or not available
  did not. **First contact** is the method (face to face or phone) of the earliest contact
  that reached them. **Engaged**: a contact with outcome `engaged`, or support started.
- `referral_case`: the support tier (support started means engaged), the closure time and
  outcome (**closed by outcome**, counted in the month of closure), and when the 6-month
  follow-up was recorded (**follow-ups done**, counted in that month).
- `onward_referral`: **signposted** (any signposting recorded) and **referred on** with the
  service type of each onward referral (a young person may be referred to several).

**Arrival to approach.** The time of the approach is the earliest of: the time the youth
worker gave for a contact attempt that reached the young person (what they enter on the
form, e.g. the face-to-face conversation in the department), and the time the first approach
outcome (consent given, declined or withdrawn) was recorded. The recording is made at or
after the conversation, so it is an upper bound that the contact time corrects when it is
earlier; for a declined approach (no contact attempts are allowed) it is all there is. A
safeguarding override alone is not an approach; not approached has no approach time.

**How it is read** (a year of reports for a site with 500,000 attendances and 20,000
candidates a year: about 1.5 s on SQLite and 1.7 s on PostgreSQL on the 2-core machine, see
bench/bench_reports.py): one pass over the referrals and their attendances for the window
(the months asked for and the 12 months before them, for the re-attendance cohorts); then
the consent and casework rows of those referrals, found through the referral's own creation
time (bounded by the window's referrals, so the attendances are not read again) and matched
by referral id. The approach and what followed it are read for the months' own arrivals; of
the year before, only engagement. Closures and follow-ups are read by when they happened,
so a month's activity counts referrals that arrived at any time (one more small query for
those that arrived before the window).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, and_, false, func, or_, select, type_coerce
from sqlalchemy.engine import Engine

from referral_gateway.domain.report_facts import (
    AssaultDetail,
    ConsentGiver,
    ConsentOutcome,
    ContactMethod,
    InjuryCategory,
    ReportFacts,
)
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.casework import CASES, CONTACTS, ONWARD
from referral_gateway.storage.consent_tables import CONSENT

# What the consent and casework reads walk (migration 0006_report_indexes): a site's
# referrals by creation time, carrying their status and id; a referral's contacts by
# outcome, carrying the time and method; whether support started. Each read then touches
# the index alone, never the table rows.
Index(
    "ix_referral_report_made",
    REFERRAL.c.site,
    REFERRAL.c.created_at,
    REFERRAL.c.status,
    REFERRAL.c.id,
)
Index(
    "ix_contact_attempt_report",
    CONTACTS.c.referral_id,
    CONTACTS.c.outcome,
    CONTACTS.c.at,
    CONTACTS.c.method,
)
Index("ix_referral_case_report_support", CASES.c.referral_id, CASES.c.support_tier)

NOT_SCREENED_RULES = ("not_emergency", "cancelled")
ASSAULT_RULE = "assault_signal"
_ASSAULT_REASON = '%"kind": "assault"%'  # json.dumps of a DetectionReason of kind assault


class SqlFacts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sites(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(ATTENDANCE.c.site).distinct().order_by(ATTENDANCE.c.site)
                ).scalars()
            )

    def screened_counts(
        self, site: str, first: ReportMonth, last: ReportMonth
    ) -> Mapping[ReportMonth, int]:
        counts: dict[ReportMonth, int] = {}
        month = first
        with self.engine.connect() as conn:
            while month <= last:
                counts[month] = conn.execute(
                    select(func.count())
                    .select_from(ATTENDANCE)
                    .where(
                        ATTENDANCE.c.site == site,
                        ATTENDANCE.c.arrival_at >= month.start(),
                        ATTENDANCE.c.arrival_at < month.end(),
                        ATTENDANCE.c.status != "cancelled",
                        or_(
                            ATTENDANCE.c.detection_rule.is_(None),
                            ATTENDANCE.c.detection_rule.not_in(NOT_SCREENED_RULES),
                        ),
                    )
                ).scalar_one()
                month = month.next()
        return counts

    def report_facts(self, site: str, first: ReportMonth, last: ReportMonth) -> list[ReportFacts]:
        """The site's candidates that arrived from 12 months before `first` to the end of
        `last`, and those that arrived earlier but were closed or followed up within the
        months. Those that arrived before `first` carry only what the report reads of them:
        engagement, re-attendance, closure and follow-up."""
        start, end = first.shifted(-12).start(), last.end()
        months_start = first.start()
        cohort_end = last.shifted(-12).end()  # re-attendance: the cohorts a year before
        # SQLite: drive the join from the site's referrals (thousands), not from the arrival
        # index (every attendance of every site); coalesce() keeps its planner off that index.
        # PostgreSQL estimates this well on its own and hash-joins.
        arrival: Any = ATTENDANCE.c.arrival_at
        if self.engine.dialect.name == "sqlite":
            arrival = func.coalesce(ATTENDANCE.c.arrival_at, ATTENDANCE.c.arrival_at)
        of_site = (REFERRAL.c.site == site, REFERRAL.c.status != "voided")
        with self.engine.connect() as conn:
            window = conn.execute(
                select(*_CANDIDATE, _MADE)
                .select_from(_WITH_ATTENDANCE)
                .where(*of_site, arrival >= start, arrival < end)
            ).all()
            # Consent and casework rows are found through their referral's creation time,
            # bounded by the window's referrals (no second pass over the attendances), and
            # matched to the window by referral id. The approach and what followed it are
            # read for the months' own arrivals; of the year before, only engagement.
            made = _Span.of(r.made for r in window)
            made_in_months = _Span.of(r.made for r in window if r.arrival_at >= months_start)
            made_before = _Span.of(r.made for r in window if r.arrival_at < months_start)
            histories = _by_referral(conn, _consent_stmt(of_site, made_in_months))
            contacts = _by_referral(conn, _contact_stmt(of_site, made_in_months))
            onwards = _by_referral(conn, _onward_stmt(of_site, made_in_months))
            engaged_ids = _ids(conn, _support_stmt(of_site, made))
            engaged_ids |= _ids(conn, _engaged_contact_stmt(of_site, made_before))
            activity = {
                r[0]: r for r in conn.execute(_activity_stmt(of_site, months_start, end)).all()
            }
            later = self._violent_returns(conn, site, of_site[1], arrival, start, cohort_end)
            in_window = {r.id for r in window}
            # closed or followed up in the months, but arrived before the window
            earlier = conn.execute(
                select(*_CANDIDATE)
                .select_from(_WITH_ATTENDANCE)
                .where(
                    REFERRAL.c.id.in_(sorted(set(activity) - in_window)),
                    ATTENDANCE.c.arrival_at.is_not(None),
                )
            ).all()
        facts = []
        # rows unpacked, not read by attribute: this loop runs once per candidate
        for rid, arrived, age, sex, reasons, injury, *_made in (*window, *earlier):
            reached = contacts.get(rid, ())
            engaged = rid in engaged_ids or any(c.outcome == _ENGAGED_OUTCOME for c in reached)
            if arrived >= months_start:
                consent = _approach(histories.get(rid, ()))
                work = _casework(reached, onwards.get(rid, ()), engaged)
            else:
                consent, work = _NO_APPROACH, _ENGAGED_ONLY if engaged else _NO_CASEWORK
            approached_at = consent.approached_at
            if work.reached_at is not None and (
                approached_at is None or work.reached_at < approached_at
            ):
                approached_at = work.reached_at
            _, closed_at, closure, followed = activity.get(rid, _NO_ACTIVITY)
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=arrived,
                    age_at_arrival=age,
                    sex=sex,
                    candidate_rule=_signal_kind(reasons),
                    injury_category=_injury(injury),
                    approached_at=approached_at,
                    consent_outcome=consent.outcome,
                    consent_giver=consent.giver,
                    not_approached_reason=consent.not_approached_reason,
                    safeguarding_override=consent.override,
                    engaged=work.engaged,
                    first_contact_method=work.first_method,
                    signposted=work.signposted,
                    onward_referrals=work.referred_to,
                    closed_at=closed_at,
                    closed_outcome=closure,
                    follow_up_done_at=followed,
                    reattended_violent_12m=start <= arrived < cohort_end
                    and _reattended(later.get(rid, ()), arrived),
                    assault=True,
                )
            )
        return facts

    def assault_facts(self, site: str, month: ReportMonth) -> list[ReportFacts]:
        stmt = select(
            ATTENDANCE.c.arrival_at,
            ATTENDANCE.c.detection_rule,
            ATTENDANCE.c.detection_json,
        ).where(
            ATTENDANCE.c.site == site,
            ATTENDANCE.c.arrival_at >= month.start(),
            ATTENDANCE.c.arrival_at < month.end(),
            ATTENDANCE.c.status != "cancelled",
            or_(
                ATTENDANCE.c.detection_rule == ASSAULT_RULE,
                ATTENDANCE.c.detection_json.like(_ASSAULT_REASON),
            ),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        facts = []
        for r in rows:
            detection: dict[str, Any] = json.loads(r.detection_json or "{}")
            if not _has_assault_reason(detection) and r.detection_rule != ASSAULT_RULE:
                continue
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=r.arrival_at,
                    screened=True,
                    assault=True,
                    injury_category=_injury(detection.get("injury_category")),
                    assault_detail=AssaultDetail(),  # assault time and place: not in the feeds
                )
            )
        return facts

    def _violent_returns(
        self,
        conn: Any,
        site: str,
        not_voided: Any,
        arrival: Any,
        cohort_start: datetime,
        cohort_end: datetime,
    ) -> dict[str, list[datetime]]:
        """Per candidate referral arriving in the cohort window, the later arrivals of the
        same patient (same keyed NHS-number hash, any site) with an assault signal. One
        query; the database walks the hash index from each candidate."""
        later = ATTENDANCE.alias("later")
        stmt = (
            select(REFERRAL.c.id, later.c.arrival_at)
            .select_from(
                REFERRAL.join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id).join(
                    later, later.c.nhs_number_hash == ATTENDANCE.c.nhs_number_hash
                )
            )
            .where(
                REFERRAL.c.site == site,
                not_voided,
                arrival >= cohort_start,
                arrival < cohort_end,
                later.c.arrival_at > ATTENDANCE.c.arrival_at,
                later.c.status != "cancelled",
                or_(
                    later.c.detection_rule == ASSAULT_RULE,
                    later.c.detection_json.like(_ASSAULT_REASON),
                ),
            )
        )
        found: defaultdict[str, list[datetime]] = defaultdict(list)
        for referral_id, when in conn.execute(stmt).all():
            found[referral_id].append(when)
        return found


_WITH_ATTENDANCE = REFERRAL.join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
_CANDIDATE = (
    REFERRAL.c.id,
    ATTENDANCE.c.arrival_at,
    ATTENDANCE.c.age_at_arrival,
    ATTENDANCE.c.sex,
    REFERRAL.c.detection_reasons_json,
    REFERRAL.c.injury_category,
)
_NO_ACTIVITY = (None, None, None, None)


def _consent_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    return (
        select(
            CONSENT.c.referral_id,
            CONSENT.c.outcome,
            CONSENT.c.giver,
            CONSENT.c.not_approached_reason,
            CONSENT.c.recorded_at,
            CONSENT.c.seq,
        )
        .select_from(CONSENT.join(REFERRAL, REFERRAL.c.id == CONSENT.c.referral_id))
        .where(*of_site, *_made_within(made))
    )  # in no order: each referral's few records are put in order by `_approach`


def _contact_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    """The contacts that reached the young person (in no order: `_casework` finds the
    first of each referral's few)."""
    return (
        select(
            CONTACTS.c.referral_id,
            CONTACTS.c.at,
            CONTACTS.c.method,
            CONTACTS.c.outcome,
            CONTACTS.c.id,
        )
        .select_from(CONTACTS.join(REFERRAL, REFERRAL.c.id == CONTACTS.c.referral_id))
        .where(*of_site, *_made_within(made), CONTACTS.c.outcome.in_(_REACHED))
    )


def _onward_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    return (
        select(ONWARD.c.referral_id, ONWARD.c.kind, ONWARD.c.service_type)
        .select_from(ONWARD.join(REFERRAL, REFERRAL.c.id == ONWARD.c.referral_id))
        .where(*of_site, *_made_within(made))
    )


def _support_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    """Referrals whose young person started support (which counts as engaged)."""
    return (
        select(CASES.c.referral_id)
        .select_from(CASES.join(REFERRAL, REFERRAL.c.id == CASES.c.referral_id))
        .where(*of_site, *_made_within(made), CASES.c.support_tier.is_not(None))
    )


def _engaged_contact_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    """Referrals with a contact in which the young person engaged."""
    return (
        select(CONTACTS.c.referral_id)
        .select_from(CONTACTS.join(REFERRAL, REFERRAL.c.id == CONTACTS.c.referral_id))
        .where(*of_site, *_made_within(made), CONTACTS.c.outcome == _ENGAGED_OUTCOME)
    )


def _ids(conn: Any, stmt: Any) -> set[str]:
    return {row[0] for row in conn.execute(stmt).all()}


def _activity_stmt(of_site: tuple[Any, ...], since: datetime, until: datetime) -> Any:
    """Closures and 6-month follow-ups between `since` and `until`, whenever the referral
    arrived."""
    return (
        select(
            CASES.c.referral_id,
            CASES.c.closed_at,
            CASES.c.closure_outcome,
            CASES.c.follow_up_done_at,
        )
        .select_from(CASES.join(REFERRAL, REFERRAL.c.id == CASES.c.referral_id))
        .where(
            *of_site,
            or_(
                and_(CASES.c.closed_at >= since, CASES.c.closed_at < until),
                and_(CASES.c.follow_up_done_at >= since, CASES.c.follow_up_done_at < until),
            ),
        )
    )


@dataclass(frozen=True)
class _Span:
    """The first and last creation time of a set of referrals."""

    first: datetime
    last: datetime

    @classmethod
    def of(cls, moments: Iterable[datetime]) -> _Span | None:
        """From `_MADE` values: naive UTC from SQLite, aware from PostgreSQL."""
        known = list(moments)
        if not known:
            return None
        return cls(_aware(min(known)), _aware(max(known)))


# the creation time as the driver gives it (no conversion of each row): only its first and
# last are needed, and `_Span.of` makes those two aware
_MADE = type_coerce(REFERRAL.c.created_at, DateTime(timezone=True)).label("made")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _made_within(made: _Span | None) -> tuple[Any, ...]:
    if made is None:
        return (false(),)
    return (REFERRAL.c.created_at >= made.first, REFERRAL.c.created_at <= made.last)


def _by_referral(conn: Any, stmt: Any) -> dict[str, list[Any]]:
    """The statement's rows grouped by their first column, the referral id, in order."""
    grouped: defaultdict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(stmt).all():
        grouped[row[0]].append(row)
    return grouped


@dataclass(frozen=True)
class _Approach:
    outcome: ConsentOutcome | None = None
    giver: ConsentGiver | None = None
    not_approached_reason: str | None = None
    override: bool = False
    approached_at: datetime | None = None


def _approach(records: Sequence[Any]) -> _Approach:
    """A referral's consent history as the report counts it."""
    if not records:
        return _NO_APPROACH
    if len(records) > 1:
        records = sorted(records, key=lambda r: r.seq)
    outcomes = [r.outcome for r in records]
    override = _OVERRIDE in outcomes
    if _GIVEN in outcomes:
        first_given = next(r for r in records if r.outcome == _GIVEN)
        giver = _GIVERS.get(first_given.giver)
        return _Approach(ConsentOutcome.GIVEN, giver, None, override, _first_approach(records))
    if _DECLINED in outcomes:
        return _Approach(ConsentOutcome.DECLINED, None, None, override, _first_approach(records))
    if _NOT_APPROACHED in outcomes:
        reason = [r.not_approached_reason for r in records if r.outcome == _NOT_APPROACHED][-1]
        return _Approach(ConsentOutcome.NOT_APPROACHED, None, reason, override, None)
    return _Approach(None, None, None, override, None)


def _first_approach(records: Sequence[Any]) -> datetime:
    first: datetime = min(r.recorded_at for r in records if r.outcome in _APPROACH_OUTCOMES)
    return first


_NO_APPROACH = _Approach()
_GIVEN, _DECLINED, _NOT_APPROACHED, _OVERRIDE = (
    o.value
    for o in (
        ConsentOutcome.GIVEN,
        ConsentOutcome.DECLINED,
        ConsentOutcome.NOT_APPROACHED,
        ConsentOutcome.SAFEGUARDING_OVERRIDE,
    )
)
_APPROACH_OUTCOMES = frozenset({_GIVEN, _DECLINED, ConsentOutcome.WITHDRAWN.value})
_GIVERS = {g.value: g for g in ConsentGiver}

# contact outcomes (domain.casework.ContactOutcome values) in which the worker reached them
_ENGAGED_OUTCOME = "engaged"
_REACHED = frozenset({_ENGAGED_OUTCOME, "spoke_not_engaged"})


@dataclass(frozen=True)
class _Casework:
    reached_at: datetime | None = None
    first_method: ContactMethod | None = None
    engaged: bool = False
    signposted: bool = False
    referred_to: tuple[str, ...] = ()


def _casework(contacts: Sequence[Any], onwards: Sequence[Any], engaged: bool) -> _Casework:
    """A referral's contacts that reached the young person and its onward referrals and
    signposting, as the report counts them."""
    if not contacts and not onwards:
        return _ENGAGED_ONLY if engaged else _NO_CASEWORK
    first = min(contacts, key=lambda c: (c.at, c.id)) if contacts else None
    return _Casework(
        reached_at=first.at if first is not None else None,
        first_method=_method(first.method) if first is not None else None,
        engaged=engaged,
        signposted=any(o.kind == _SIGNPOST for o in onwards),
        referred_to=tuple(o.service_type for o in onwards if o.kind == _REFERRAL),
    )


_SIGNPOST, _REFERRAL = "signpost", "referral"  # domain.casework.OnwardKind values
_NO_CASEWORK = _Casework()
_ENGAGED_ONLY = _Casework(engaged=True)


def _method(value: str) -> ContactMethod | None:
    try:
        return ContactMethod(value)
    except ValueError:
        return None


def _reattended(arrivals: Iterable[datetime], arrival: datetime) -> bool:
    until = _one_year_on(arrival)
    return any(arrival < later <= until for later in arrivals)


def _one_year_on(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February: a year on is 1 March
        return moment.replace(year=moment.year + 1, month=3, day=1)


@functools.lru_cache(maxsize=4096)
def _signal_kind(reasons_json: str) -> str:
    """The kind of the first assault signal: 'snomed', 'icd10', 'ecds' or 'text'."""
    for reason in json.loads(reasons_json or "[]"):
        if reason.get("kind") == "assault":
            return str(reason.get("rule", "")).split(":", 1)[0] or "assault_signal"
    return "assault_signal"


def _has_assault_reason(detection: Mapping[str, Any]) -> bool:
    return any(r.get("kind") == "assault" for r in detection.get("reasons", []))


def _injury(value: str | None) -> InjuryCategory | None:
    return _INJURIES.get(value, InjuryCategory.OTHER) if value else None


_INJURIES = {c.value: c for c in InjuryCategory}
