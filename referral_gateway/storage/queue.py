"""Read models for the web pages: approach cards, the queue, follow-ups due, counts.

Nothing here reads an encrypted column: every field is on the approach card, which the
consent policy shows before consent.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from consent.keyring import KeyRing
from referral_gateway.domain.caseload import CASELOAD_STATUSES, caseload_order, in_caseload
from referral_gateway.domain.casework import Case
from referral_gateway.domain.detection import candidate_certainty
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.accounts import USERS
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL, AttendanceStore
from referral_gateway.storage.casework import CASES, case_from_row, reasons_of


@dataclass(frozen=True)
class ApproachCard:
    """What a youth worker needs to walk over: no name, no NHS number, no free text."""

    case: Case
    injury_category: str | None
    detection_rule: str
    reasons: list[dict[str, str]]
    source: str
    age: int | None
    sex: str
    ed_area: str | None
    bay: str | None
    arrival_at: datetime | None
    discharge_at: datetime | None
    attendance_status: str
    assignee_name: str | None

    @property
    def referral_id(self) -> str:
        return self.case.referral_id

    @property
    def certainty(self) -> str:
        """ "possible" (a candidate on suspicion only) or "definite"."""
        return candidate_certainty(self.reasons)


@dataclass(frozen=True)
class QueueFilter:
    sites: frozenset[str]
    statuses: frozenset[ReferralStatus]
    assigned_to: str | None = None  # "mine"
    limit: int = 50
    offset: int = 0
    by_urgency: bool = False  # still in the department first, then the longest wait


def _urgency() -> tuple[ColumnElement[Any], ...]:
    """Still in the department (not discharged) first, then the longest wait since arrival
    (the referral's creation when the ED sent no arrival time)."""
    in_department = case((ATTENDANCE.c.status == "in_department", 0), else_=1)
    waiting_since = func.coalesce(ATTENDANCE.c.arrival_at, REFERRAL.c.created_at)
    return (in_department, waiting_since.asc(), REFERRAL.c.id)


def _card_select() -> Select[Any]:
    return select(
        REFERRAL.c.id,
        REFERRAL.c.site,
        REFERRAL.c.status,
        REFERRAL.c.created_at,
        REFERRAL.c.injury_category,
        REFERRAL.c.detection_rule,
        REFERRAL.c.detection_reasons_json,
        ATTENDANCE.c.source,
        ATTENDANCE.c.age_at_arrival,
        ATTENDANCE.c.sex,
        ATTENDANCE.c.ed_area,
        ATTENDANCE.c.bay_enc,
        ATTENDANCE.c.arrival_at,
        ATTENDANCE.c.discharge_at,
        ATTENDANCE.c.status.label("attendance_status"),
        CASES.c.assigned_to,
        CASES.c.claimed_at,
        CASES.c.escalated_at,
        CASES.c.support_tier,
        CASES.c.support_started_on,
        CASES.c.support_review_on,
        CASES.c.closed_at,
        CASES.c.closure_outcome,
        CASES.c.follow_up_due_on,
        CASES.c.follow_up_done_at,
        CASES.c.follow_up_outcome,
        func.coalesce(USERS.c.display_name, USERS.c.username).label("assignee_name"),
        USERS.c.username.label("assignee_username"),
    ).select_from(
        REFERRAL.join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
        .outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id)
        .outerjoin(USERS, USERS.c.id == CASES.c.assigned_to)
    )


def _card(row: Any, keyring: KeyRing) -> ApproachCard:
    return ApproachCard(
        case=case_from_row(row),
        injury_category=row.injury_category,
        detection_rule=row.detection_rule,
        reasons=reasons_of(row.detection_reasons_json),
        source=row.source,
        age=row.age_at_arrival,
        sex=row.sex,
        ed_area=row.ed_area,
        bay=AttendanceStore(keyring).bay(row.bay_enc),
        arrival_at=row.arrival_at,
        discharge_at=row.discharge_at,
        attendance_status=row.attendance_status,
        assignee_name=(row.assignee_name or row.assignee_username) if row.assigned_to else None,
    )


def queue_cards(
    conn: Connection, f: QueueFilter, keyring: KeyRing
) -> tuple[list[ApproachCard], int]:
    """One page of the queue, newest first (or by urgency), and how many match in all."""
    if not f.sites or not f.statuses:
        return [], 0
    where: list[ColumnElement[bool]] = [
        REFERRAL.c.site.in_(sorted(f.sites)),
        REFERRAL.c.status.in_(sorted(s.value for s in f.statuses)),
    ]
    if f.assigned_to is not None:
        where.append(CASES.c.assigned_to == f.assigned_to)
    rows = conn.execute(
        _card_select()
        .where(*where)
        .order_by(
            *(_urgency() if f.by_urgency else (REFERRAL.c.created_at.desc(), REFERRAL.c.id.desc()))
        )
        .limit(f.limit)
        .offset(f.offset)
    ).all()
    count_stmt = select(func.count()).select_from(REFERRAL)
    if f.assigned_to is not None:
        count_stmt = count_stmt.select_from(
            REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id)
        )
    total = conn.execute(count_stmt.where(*where)).scalar_one()
    return [_card(r, keyring) for r in rows], int(total)


def caseload_cards(
    conn: Connection,
    worker_id: str,
    sites: Collection[str],
    keyring: KeyRing,
    *,
    today: date,
    limit: int = 500,
) -> list[ApproachCard]:
    """`worker_id`'s caseload at `sites` (see `domain.caseload`), soonest next action first."""
    if not sites:
        return []
    rows = conn.execute(
        _card_select()
        .where(
            REFERRAL.c.site.in_(sorted(sites)),
            CASES.c.assigned_to == worker_id,
            or_(
                REFERRAL.c.status.in_(sorted(s.value for s in CASELOAD_STATUSES)),
                CASES.c.follow_up_due_on.is_not(None) & CASES.c.follow_up_done_at.is_(None),
            ),
        )
        .order_by(REFERRAL.c.created_at, REFERRAL.c.id)
        .limit(limit)
    ).all()
    cards = [_card(r, keyring) for r in rows]
    mine = [c for c in cards if in_caseload(c.case, worker_id, today=today)]
    return sorted(mine, key=lambda c: caseload_order(c.case))


def approach_card(conn: Connection, referral_id: str, keyring: KeyRing) -> ApproachCard | None:
    row = conn.execute(_card_select().where(REFERRAL.c.id == referral_id)).first()
    return _card(row, keyring) if row is not None else None


def follow_ups_due(
    conn: Connection, sites: Collection[str], keyring: KeyRing, *, due_by: date, limit: int = 200
) -> list[ApproachCard]:
    """Closed referrals whose 6-month follow-up is due by `due_by` and not yet recorded."""
    if not sites:
        return []
    rows = conn.execute(
        _card_select()
        .where(
            REFERRAL.c.site.in_(sorted(sites)),
            REFERRAL.c.status == ReferralStatus.CLOSED.value,
            CASES.c.follow_up_due_on.is_not(None),
            CASES.c.follow_up_due_on <= due_by,
            CASES.c.follow_up_done_at.is_(None),
        )
        .order_by(CASES.c.follow_up_due_on, REFERRAL.c.id)
        .limit(limit)
    ).all()
    return [_card(r, keyring) for r in rows]


def status_counts(conn: Connection, sites: Collection[str]) -> dict[tuple[str, str], int]:
    """Referrals per (site, status): what a programme lead may see, before suppression."""
    if not sites:
        return {}
    rows = conn.execute(
        select(REFERRAL.c.site, REFERRAL.c.status, func.count())
        .where(REFERRAL.c.site.in_(sorted(sites)))
        .group_by(REFERRAL.c.site, REFERRAL.c.status)
    ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def unclaimed_since(conn: Connection, sites: Collection[str], *, before: datetime) -> int:
    """New referrals of `sites` that nobody has claimed and that were made before `before`."""
    if not sites:
        return 0
    return int(
        conn.execute(
            select(func.count())
            .select_from(REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id))
            .where(
                REFERRAL.c.site.in_(sorted(sites)),
                REFERRAL.c.status == ReferralStatus.NEW.value,
                REFERRAL.c.created_at < before,
                CASES.c.assigned_to.is_(None),
            )
        ).scalar_one()
    )


ACTIVE_STATUSES = (
    ReferralStatus.CLAIMED.value,
    ReferralStatus.CONSENTED.value,
    ReferralStatus.IN_SUPPORT.value,
)


@dataclass(frozen=True)
class SiteNow:
    """One site as its team lead sees it now: operational counts, never suppressed."""

    site: str
    unclaimed: int
    oldest_unclaimed: datetime | None  # when the longest-waiting unclaimed one was made
    escalated: list[tuple[str, datetime]]  # unclaimed escalated referrals: id, escalated at
    caseloads: list[tuple[str, int]]  # (staff user id, active cases), most first


def sites_now(conn: Connection, sites: Collection[str]) -> list[SiteNow]:
    """Unclaimed referrals and the oldest wait, unclaimed escalations and each worker's
    active caseload, for each of `sites` (a team lead's own)."""
    unassigned = REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id)
    found: list[SiteNow] = []
    for site in sorted(sites):
        waiting = conn.execute(
            select(func.count(), func.min(REFERRAL.c.created_at))
            .select_from(unassigned)
            .where(
                REFERRAL.c.site == site,
                REFERRAL.c.status == ReferralStatus.NEW.value,
                CASES.c.assigned_to.is_(None),
            )
        ).one()
        escalated = conn.execute(
            select(REFERRAL.c.id, CASES.c.escalated_at)
            .select_from(unassigned)
            .where(
                REFERRAL.c.site == site,
                REFERRAL.c.status == ReferralStatus.NEW.value,
                CASES.c.assigned_to.is_(None),
                CASES.c.escalated_at.is_not(None),
            )
            .order_by(CASES.c.escalated_at)
        ).all()
        loads = conn.execute(
            select(CASES.c.assigned_to, func.count())
            .select_from(CASES.join(REFERRAL, CASES.c.referral_id == REFERRAL.c.id))
            .where(
                REFERRAL.c.site == site,
                REFERRAL.c.status.in_(ACTIVE_STATUSES),
                CASES.c.assigned_to.is_not(None),
            )
            .group_by(CASES.c.assigned_to)
            .order_by(func.count().desc(), CASES.c.assigned_to)
        ).all()
        oldest = waiting[1]
        found.append(
            SiteNow(
                site=site,
                unclaimed=int(waiting[0]),
                oldest_unclaimed=_utc(oldest) if oldest is not None else None,
                escalated=[(r[0], _utc(r[1])) for r in escalated],
                caseloads=[(str(r[0]), int(r[1])) for r in loads],
            )
        )
    return found


def _utc(value: Any) -> datetime:
    """`func.min` over a UtcDateTime column comes back naive (SQLite) or as text."""
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
