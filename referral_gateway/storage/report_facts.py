"""Report facts from the database (the `FactsRepository` of services.reporting).

What the spine tables give today, per candidate referral: arrival, age, sex, the kind of
signal that made it a candidate ("by rule": snomed, icd10, ecds or text), the injury
category, and re-attendance with a violent injury within 12 months, matched across sites by
the keyed NHS-number hash. ED attendances screened are counted in SQL, month by month.

From the consent records (`consent_record`): the outcome of the approach (given if consent
was ever given, else declined, else not approached with the latest reason), who consented,
whether a safeguarding override was ever recorded, and when the youth worker first recorded
an approach (the first given, declined or withdrawn record: its recording time stands in
for the time of the approach).

NOT YET READ: first contact method, engagement, signposting, onward referrals, closure and
the 6-month follow-up. They live in the queue's casework tables, which are not on this
branch yet; until they are read those figures are 0. See the README's reporting section.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy.engine import Engine

from referral_gateway.domain.report_facts import (
    AssaultDetail,
    ConsentGiver,
    ConsentOutcome,
    InjuryCategory,
    ReportFacts,
)
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.consent_tables import ConsentRecordRow

CONSENT: Table = ConsentRecordRow.__table__  # type: ignore[attr-defined]

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
        start, end = first.shifted(-12).start(), last.end()
        joined = REFERRAL.join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
        # SQLite: drive the join from the site's referrals (thousands), not from the arrival
        # index (every attendance of every site); coalesce() keeps its planner off that index.
        # PostgreSQL estimates this well on its own and hash-joins.
        arrival: Any = ATTENDANCE.c.arrival_at
        if self.engine.dialect.name == "sqlite":
            arrival = func.coalesce(ATTENDANCE.c.arrival_at, ATTENDANCE.c.arrival_at)
        in_range = (
            REFERRAL.c.site == site,
            REFERRAL.c.status != "voided",
            arrival >= start,
            arrival < end,
        )
        stmt = (
            select(
                REFERRAL.c.id,
                ATTENDANCE.c.arrival_at,
                ATTENDANCE.c.age_at_arrival,
                ATTENDANCE.c.sex,
                REFERRAL.c.detection_reasons_json,
                REFERRAL.c.injury_category,
            )
            .select_from(joined)
            .where(*in_range)
        )
        consent_stmt = (
            select(
                CONSENT.c.referral_id,
                CONSENT.c.outcome,
                CONSENT.c.giver,
                CONSENT.c.not_approached_reason,
                CONSENT.c.recorded_at,
            )
            .select_from(CONSENT.join(joined, REFERRAL.c.id == CONSENT.c.referral_id))
            .where(*in_range)
            .order_by(CONSENT.c.referral_id, CONSENT.c.seq)
        )
        # re-attendance is read only for the cohorts a year before the months asked for
        cohort_end = last.shifted(-12).end()
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            histories: defaultdict[str, list[Any]] = defaultdict(list)
            for record in conn.execute(consent_stmt):
                histories[record.referral_id].append(record)
            later = self._violent_returns(conn, site, in_range[1], arrival, start, cohort_end)
        facts = []
        for r in rows:
            in_cohort = r.arrival_at < cohort_end
            consent = _approach(histories.get(r.id, ()))
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=r.arrival_at,
                    age_at_arrival=r.age_at_arrival,
                    sex=r.sex,
                    candidate_rule=_signal_kind(r.detection_reasons_json),
                    injury_category=_injury(r.injury_category),
                    approached_at=consent.approached_at,
                    consent_outcome=consent.outcome,
                    consent_giver=consent.giver,
                    not_approached_reason=consent.not_approached_reason,
                    safeguarding_override=consent.override,
                    reattended_violent_12m=in_cohort
                    and _reattended(later.get(r.id, ()), r.arrival_at),
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
        for referral_id, when in conn.execute(stmt):
            found[referral_id].append(when)
        return found


@dataclass(frozen=True)
class _Approach:
    outcome: ConsentOutcome | None = None
    giver: ConsentGiver | None = None
    not_approached_reason: str | None = None
    override: bool = False
    approached_at: datetime | None = None


def _approach(history: Iterable[Any]) -> _Approach:
    """A referral's consent history (in order) as the report counts it."""
    records = list(history)
    if not records:
        return _Approach()
    outcomes = [r.outcome for r in records]
    approached = [r.recorded_at for r in records if r.outcome in _APPROACH_OUTCOMES]
    override = ConsentOutcome.SAFEGUARDING_OVERRIDE.value in outcomes
    if ConsentOutcome.GIVEN.value in outcomes:
        first_given = next(r for r in records if r.outcome == ConsentOutcome.GIVEN.value)
        giver = ConsentGiver(first_given.giver) if first_given.giver in _GIVERS else None
        return _Approach(ConsentOutcome.GIVEN, giver, None, override, min(approached))
    if ConsentOutcome.DECLINED.value in outcomes:
        return _Approach(ConsentOutcome.DECLINED, None, None, override, min(approached))
    if ConsentOutcome.NOT_APPROACHED.value in outcomes:
        reason = [r.not_approached_reason for r in records if r.outcome == "not_approached"][-1]
        return _Approach(ConsentOutcome.NOT_APPROACHED, None, reason, override, None)
    return _Approach(None, None, None, override, None)


_APPROACH_OUTCOMES = frozenset({"given", "declined", "withdrawn"})
_GIVERS = frozenset(g.value for g in ConsentGiver)


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
    try:
        return InjuryCategory(value) if value else None
    except ValueError:
        return InjuryCategory.OTHER
