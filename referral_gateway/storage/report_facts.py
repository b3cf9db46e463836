"""Report facts from the database (the `FactsRepository` of services.reporting).

From the spine tables, per candidate referral: arrival, age, sex, the kind of signal that
made it a candidate ("by rule": snomed, icd10, ecds, text, or manual for a referral made by
ED staff), the injury category, and re-attendance with a violent injury within 12 months,
matched across sites by the keyed NHS-number hash. ED attendances screened are counted in
SQL, month by month.

From the consent records (`consent_record`) and the queue's casework tables
(`storage/casework.py`: `contact_attempt`, `referral_case`, `onward_referral`): the rows
`domain.report_history` turns into the approach, first contact, engagement, signposting and
onward referrals (what each means for the report is written there). Closures (by outcome)
count in the month of closure, 6-month follow-ups in the month they were recorded.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, and_, false, func, or_, select, type_coerce
from sqlalchemy.engine import Engine

from referral_gateway.domain.attendance import AttendanceStatus
from referral_gateway.domain.casework import ContactOutcome
from referral_gateway.domain.detection import (
    POSSIBLE,
    DecidingRule,
    ReasonKind,
    candidate_certainty,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.domain.report_facts import AssaultDetail, ReportFacts
from referral_gateway.domain.report_history import (
    NO_APPROACH,
    NOT_SCREENED_RULES,
    REACHED_OUTCOMES,
    approach_of,
    approached_at,
    casework_of,
    engagement_of,
    injury_category_of,
    is_assault,
    reattended_within_a_year,
    signal_kind,
)
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.casework import CASES, CONTACTS, ONWARD
from referral_gateway.storage.consent_tables import CONSENT
from referral_gateway.storage.onward import TASKS

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

_NOT_SCREENED = sorted(r.value for r in NOT_SCREENED_RULES)
_CANCELLED = AttendanceStatus.CANCELLED.value
_ASSAULT_RULE = DecidingRule.ASSAULT_SIGNAL.value
_ASSAULT_REASON = f'%"kind": "{ReasonKind.ASSAULT.value}"%'  # json.dumps of such a reason
_REACHED = sorted(o.value for o in REACHED_OUTCOMES)
_ENGAGED = ContactOutcome.ENGAGED.value


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
                        ATTENDANCE.c.status != _CANCELLED,
                        or_(
                            ATTENDANCE.c.detection_rule.is_(None),
                            ATTENDANCE.c.detection_rule.not_in(_NOT_SCREENED),
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
        # a cancelled arrival and a candidate a youth worker marked not an assault are not
        # candidates of the report (the attendance still counts as screened)
        of_site = (REFERRAL.c.site == site, REFERRAL.c.status.not_in(_NOT_CANDIDATES))
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
            sent = _tasks_by_referral(conn, of_site, months_start, end)
            later = self._violent_returns(conn, site, of_site[1], arrival, start, cohort_end)
            in_window = {r.id for r in window}
            # closed or followed up in the months, but arrived before the window
            earlier = conn.execute(
                select(*_CANDIDATE)
                .select_from(_WITH_ATTENDANCE)
                .where(
                    REFERRAL.c.id.in_(sorted((set(activity) | set(sent)) - in_window)),
                    ATTENDANCE.c.arrival_at.is_not(None),
                )
            ).all()
        facts = []
        # rows unpacked, not read by attribute: this loop runs once per candidate
        for rid, arrived, age, sex, reasons, injury, *_made in (*window, *earlier):
            reached = contacts.get(rid, ())
            if arrived >= months_start:
                consent = approach_of(histories.get(rid, ()))
                work = casework_of(reached, onwards.get(rid, ()), rid in engaged_ids)
            else:  # of the year before, only engagement
                consent, work = NO_APPROACH, engagement_of(reached, rid in engaged_ids)
            _, closed_at, closure, followed = activity.get(rid, _NO_ACTIVITY)
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=arrived,
                    age_at_arrival=age,
                    sex=sex,
                    candidate_rule=_signal_kind(reasons),
                    possible=_certainty(reasons) == POSSIBLE,
                    injury_category=injury_category_of(injury),
                    approached_at=approached_at(consent, work),
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
                    onward_tasks=sent.get(rid, ()),
                    follow_up_done_at=followed,
                    reattended_violent_12m=start <= arrived < cohort_end
                    and reattended_within_a_year(later.get(rid, ()), arrived),
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
            ATTENDANCE.c.status != _CANCELLED,
            or_(
                ATTENDANCE.c.detection_rule == _ASSAULT_RULE,
                ATTENDANCE.c.detection_json.like(_ASSAULT_REASON),
            ),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        facts = []
        for r in rows:
            detection: dict[str, Any] = json.loads(r.detection_json or "{}")
            if not is_assault(r.detection_rule, detection.get("reasons", [])):
                continue
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=r.arrival_at,
                    screened=True,
                    assault=True,
                    injury_category=injury_category_of(detection.get("injury_category")),
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
                later.c.status != _CANCELLED,
                or_(
                    later.c.detection_rule == _ASSAULT_RULE,
                    later.c.detection_json.like(_ASSAULT_REASON),
                ),
            )
        )
        found: defaultdict[str, list[datetime]] = defaultdict(list)
        for referral_id, when in conn.execute(stmt).all():
            found[referral_id].append(when)
        return found


_NOT_CANDIDATES = (ReferralStatus.VOIDED.value, ReferralStatus.NOT_ASSAULT.value)
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
    )  # in no order: `approach_of` puts each referral's few records in order


def _contact_stmt(of_site: tuple[Any, ...], made: _Span | None) -> Any:
    """The contacts that reached the young person (in no order: `casework_of` finds the
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
        .where(*of_site, *_made_within(made), CONTACTS.c.outcome == _ENGAGED)
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


def _tasks_by_referral(
    conn: Any, of_site: tuple[Any, ...], since: datetime, until: datetime
) -> dict[str, tuple[tuple[datetime, str, str], ...]]:
    """Onward referrals sent to directory services between `since` and `until`, whenever
    the referral arrived: (made at, service id, status now) per referral."""
    rows = conn.execute(
        select(TASKS.c.referral_id, TASKS.c.created_at, TASKS.c.service_id, TASKS.c.status)
        .select_from(TASKS.join(REFERRAL, REFERRAL.c.id == TASKS.c.referral_id))
        .where(*of_site, TASKS.c.created_at >= since, TASKS.c.created_at < until)
    ).all()
    out: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for rid, made, service, status in rows:
        out[rid].append((made, service, status))
    return {rid: tuple(tasks) for rid, tasks in out.items()}


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


@functools.lru_cache(maxsize=4096)
def _certainty(reasons_json: str) -> str:
    """`candidate_certainty` of a referral's stored reasons."""
    return candidate_certainty(json.loads(reasons_json or "[]"))


@functools.lru_cache(maxsize=4096)
def _signal_kind(reasons_json: str) -> str:
    """`signal_kind` of a referral's stored reasons (the same few JSON texts recur)."""
    return signal_kind(json.loads(reasons_json or "[]"))
