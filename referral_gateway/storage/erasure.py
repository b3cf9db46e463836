"""The statements retention runs: find what still holds identifiable data, and erase it.

What is due, and when, is decided by `consent.retention` and `services.retention`; these
functions only read and erase, inside the caller's transaction (`conn`). Erasing sets the
encrypted column and its key id to NULL; every row stays, with what reports count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.casework import CASES, NOTES
from referral_gateway.storage.consent_tables import CONSENT
from referral_gateway.storage.inbox import INBOX

PROCESSED_STATES = ("processed", "filtered")  # messages in the error store keep their payload


@dataclass(frozen=True)
class RetentionState:
    """What retention reads of a referral to decide whether its identifiable data are due."""

    status: ReferralStatus
    created_at: datetime
    updated_at: datetime
    attendance_id: int
    identity_enc: bytes | None
    closed_at: datetime | None  # the case's closure, when it has one


def referrals_holding_identifiable_data(conn: Connection, *, after: str, limit: int) -> list[str]:
    """The next `limit` referral ids after `after`, in id order, whose attendance still holds
    identifiable details, or that have free text left in a consent record or a case note
    (written after the identity went, e.g. a consent recorded again later)."""
    note_left = (
        select(NOTES.c.id)
        .where(NOTES.c.referral_id == REFERRAL.c.id, NOTES.c.body_enc.is_not(None))
        .exists()
    )
    details_left = (
        select(CONSENT.c.id)
        .where(CONSENT.c.referral_id == REFERRAL.c.id, CONSENT.c.details_enc.is_not(None))
        .exists()
    )
    return [
        r.id
        for r in conn.execute(
            select(REFERRAL.c.id)
            .join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
            .where(
                or_(ATTENDANCE.c.identity_enc.is_not(None), note_left, details_left),
                REFERRAL.c.id > after,
            )
            .order_by(REFERRAL.c.id)
            .limit(limit)
        )
    ]


def retention_state(conn: Connection, referral_id: str) -> RetentionState | None:
    """The referral as retention decides on it, its row locked until the transaction ends."""
    row = conn.execute(
        select(
            REFERRAL.c.status,
            REFERRAL.c.created_at,
            REFERRAL.c.updated_at,
            REFERRAL.c.attendance_id,
            ATTENDANCE.c.identity_enc,
            CASES.c.closed_at,
        )
        .join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
        .outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id)
        .where(REFERRAL.c.id == referral_id)
        .with_for_update(of=REFERRAL)
    ).first()
    if row is None:
        return None
    return RetentionState(
        ReferralStatus(row.status),
        row.created_at,
        row.updated_at,
        row.attendance_id,
        row.identity_enc,
        row.closed_at,
    )


def erase_attendance_identity(conn: Connection, attendance_id: int) -> None:
    conn.execute(
        update(ATTENDANCE)
        .where(ATTENDANCE.c.id == attendance_id)
        .values(identity_enc=None, key_id=None, bay_enc=None)
    )


def erase_case_note_bodies(conn: Connection, referral_id: str) -> int:
    """Erase the bodies of the referral's case notes; the rows (author, time) stay.
    Returns how many bodies went."""
    done = conn.execute(
        update(NOTES)
        .where(NOTES.c.referral_id == referral_id, NOTES.c.body_enc.is_not(None))
        .values(body_enc=None, key_id=None)
    )
    return int(done.rowcount or 0)


def erase_non_candidate_identities(
    conn: Connection, *, updated_before: datetime, limit: int
) -> list[int]:
    """Erase the identifiable details of up to `limit` attendances that never became a
    candidate and were last updated at or before `updated_before`. Returns their ids, in
    order ([] when none is left)."""
    ids = [
        r.id
        for r in conn.execute(
            select(ATTENDANCE.c.id)
            .outerjoin(REFERRAL, REFERRAL.c.attendance_id == ATTENDANCE.c.id)
            .where(
                REFERRAL.c.id.is_(None),
                ATTENDANCE.c.identity_enc.is_not(None),
                ATTENDANCE.c.updated_at <= updated_before,
            )
            .order_by(ATTENDANCE.c.id)
            .limit(limit)
            .with_for_update(of=ATTENDANCE)
        )
    ]
    if ids:
        conn.execute(
            update(ATTENDANCE)
            .where(ATTENDANCE.c.id.in_(ids), ATTENDANCE.c.updated_at <= updated_before)
            .values(identity_enc=None, key_id=None, bay_enc=None)
        )
    return ids


def erase_raw_payloads(conn: Connection, *, received_before: datetime, limit: int) -> list[int]:
    """Erase the raw payload of up to `limit` messages processed or filtered and received
    at or before `received_before`. Returns their ids, in order ([] when none is left)."""
    ids = [
        r.id
        for r in conn.execute(
            select(INBOX.c.id)
            .where(
                INBOX.c.state.in_(PROCESSED_STATES),
                INBOX.c.payload_enc.is_not(None),
                INBOX.c.received_at <= received_before,
            )
            .order_by(INBOX.c.id)
            .limit(limit)
            .with_for_update()
        )
    ]
    if ids:
        conn.execute(
            update(INBOX)
            .where(INBOX.c.id.in_(ids), INBOX.c.state.in_(PROCESSED_STATES))
            .values(payload_enc=None, key_id=None)
        )
    return ids
