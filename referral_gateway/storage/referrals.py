"""A referral's row as the consent and retention services read and change it, and the
identifiable details of its attendance (encrypted at rest: `IDENTITY_CONTEXT`).

Small statements, each run inside the caller's transaction (`conn`); the rules that decide
what to read or change stay in the services and the domain.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from consent.keyring import KeyRing
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.attendances import ATTENDANCE, IDENTITY_CONTEXT, REFERRAL


@dataclass(frozen=True)
class ReferralRef:
    """Who a referral is for, where, and where it stands."""

    id: str
    site: str
    status: ReferralStatus
    attendance_id: int


def find_referral(conn: Connection, referral_id: str, *, lock: bool = False) -> ReferralRef | None:
    """The referral, or None. `lock` holds its row until the transaction ends (PostgreSQL;
    SQLite's unit of work already holds the database)."""
    stmt = select(
        REFERRAL.c.id, REFERRAL.c.site, REFERRAL.c.status, REFERRAL.c.attendance_id
    ).where(REFERRAL.c.id == referral_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        return None
    return ReferralRef(row.id, row.site, ReferralStatus(row.status), row.attendance_id)


def referral_sites(conn: Connection, referral_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(referral id, site) of those of `referral_ids` that exist."""
    rows = conn.execute(
        select(REFERRAL.c.id, REFERRAL.c.site).where(REFERRAL.c.id.in_(list(referral_ids)))
    ).all()
    return [(r.id, r.site) for r in rows]


def set_referral_status(
    conn: Connection, referral_id: str, status: ReferralStatus, *, now: datetime
) -> None:
    conn.execute(
        update(REFERRAL)
        .where(REFERRAL.c.id == referral_id)
        .values(status=status.value, updated_at=now)
    )


def identity_token(conn: Connection, attendance_id: int) -> bytes | None:
    """The attendance's encrypted identifiable details; None once retention erased them."""
    token: bytes | None = conn.execute(
        select(ATTENDANCE.c.identity_enc).where(ATTENDANCE.c.id == attendance_id)
    ).scalar_one()
    return token


def decrypt_identity(keyring: KeyRing, token: bytes) -> dict[str, Any]:
    """The identifiable details an `identity_token` holds: nhs_number, family_name,
    given_names, birth_date (ISO), address, phone, free_text."""
    ident: dict[str, Any] = json.loads(keyring.decrypt_text(token, context=IDENTITY_CONTEXT))
    return ident
