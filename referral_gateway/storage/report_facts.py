"""Report facts from the database (the `FactsRepository` of services.reporting).

What the spine tables give today, per candidate referral: arrival, age, sex, the kind of
signal that made it a candidate ("by rule": snomed, icd10, ecds or text), the injury
category, and re-attendance with a violent injury within 12 months, matched across sites by
the keyed NHS-number hash. ED attendances screened are counted in SQL, month by month.

NOT YET READ: the approach, consent, contact, engagement, signposting, onward referral,
closure and follow-up fields. They live in the consent and queue tables, which are not on
this branch yet; until `_casework_facts` reads them, every candidate reports as "awaiting
an outcome" and those figures are 0. See the README's reporting section.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from referral_gateway.domain.report_facts import AssaultDetail, InjuryCategory, ReportFacts
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL

NOT_SCREENED_RULES = ("not_emergency", "cancelled")
ASSAULT_RULE = "assault_signal"
_ASSAULT_MARK = '"kind": "assault"'  # json.dumps of a DetectionReason of kind assault
_ASSAULT_REASON = f"%{_ASSAULT_MARK}%"
_HASH_CHUNK = 500


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
        stmt = (
            select(
                ATTENDANCE.c.arrival_at,
                ATTENDANCE.c.age_at_arrival,
                ATTENDANCE.c.sex,
                ATTENDANCE.c.nhs_number_hash,
                REFERRAL.c.detection_reasons_json,
                REFERRAL.c.injury_category,
            )
            .select_from(REFERRAL.join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id))
            .where(
                REFERRAL.c.site == site,
                REFERRAL.c.status != "voided",
                ATTENDANCE.c.arrival_at >= start,
                ATTENDANCE.c.arrival_at < end,
            )
        )
        # re-attendance is read only for the cohorts a year before the months asked for
        cohort_end = last.shifted(-12).end()
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            hashes = {
                r.nhs_number_hash for r in rows if r.nhs_number_hash and r.arrival_at < cohort_end
            }
            later = self._violent_arrivals(conn, hashes, start)
        facts = []
        for r in rows:
            in_cohort = bool(r.nhs_number_hash) and r.arrival_at < cohort_end
            facts.append(
                ReportFacts(
                    site=site,
                    arrival=r.arrival_at,
                    age_at_arrival=r.age_at_arrival,
                    sex=r.sex,
                    candidate_rule=_signal_kind(r.detection_reasons_json),
                    injury_category=_injury(r.injury_category),
                    reattended_violent_12m=in_cohort
                    and _reattended(later.get(r.nhs_number_hash, ()), r.arrival_at),
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

    def _violent_arrivals(
        self, conn: Any, hashes: set[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """Arrivals since `since` with an assault signal, at any site, of the patients with
        these NHS-number hashes. Looked up by hash in chunks, so the database walks the hash
        index instead of scanning a year of attendances."""
        found: defaultdict[str, list[datetime]] = defaultdict(list)
        ordered = sorted(hashes)
        for i in range(0, len(ordered), _HASH_CHUNK):
            stmt = select(
                ATTENDANCE.c.nhs_number_hash,
                ATTENDANCE.c.arrival_at,
                ATTENDANCE.c.detection_rule,
                ATTENDANCE.c.detection_json,
            ).where(
                ATTENDANCE.c.nhs_number_hash.in_(ordered[i : i + _HASH_CHUNK]),
                ATTENDANCE.c.arrival_at > since,
                ATTENDANCE.c.status != "cancelled",
            )
            for h, arrival, rule, detection in conn.execute(stmt):
                if rule == ASSAULT_RULE or _ASSAULT_MARK in (detection or ""):
                    found[h].append(arrival)
        return found


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
