"""Retention jobs: erase identifiable data when `consent.retention` says it is due.

Plain functions with the clock passed in; `referral_gateway.jobs` runs them on a schedule,
tests call them directly.

What is erased, and what survives:
- `erase_identifiable`: for each referral whose identifiable data is due (declined, not
  approached, withdrawn, stale, voided; consented ones per the children's/adults' records
  rule once support ended), the attendance's `identity_enc` (name, NHS number, birth date,
  address, phone, free text), the free text of its consent records and the bodies of its
  case notes (the casework's only free text; the note rows, authors and times stay, so
  "3 notes, erased" can still be said). Attendances that never became a candidate lose
  `identity_enc` `voided_days` after their last update.
- `erase_raw_messages`: the raw payload of inbound messages processed or filtered
  `raw_message_days` ago. Messages in the error store keep theirs until reprocessed.
Rows stay, with everything reports count: status, site, age at arrival, birth year, sex,
times, codes, detection, consent outcomes, contact attempts, onward referrals, closure,
feed counts. The keyed hashes of the NHS number
and local id stay too (pseudonymous, needed to count re-attendances); without the key ring
they reveal nothing.

Support ended on the day the case was closed (`referral_case.closed_at`); a voided referral
was voided at its `updated_at` (the referral row keeps no other time for it), and so was
support of a closed referral with no case record (none closes without one today). Each
erasure is audited (`retention_erase`): one entry per referral, one per batch of attendances
or raw messages.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, or_, select, update
from sqlalchemy.engine import Connection, Engine

from consent.audit import AuditAction
from consent.errors import require_aware
from consent.keyring import KeyRing
from consent.retention import (
    ReferralFacts,
    RetentionPolicy,
    RetentionRule,
    identifiable_retention,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.attendances import ATTENDANCE, IDENTITY_CONTEXT, REFERRAL
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import CASES, NOTES
from referral_gateway.storage.consent_store import CONSENT, ConsentStore
from referral_gateway.storage.inbox import INBOX
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work

SYSTEM_ACTOR = "system:retention"
PROCESSED_STATES = ("processed", "filtered")


@dataclass(frozen=True)
class IdentifiableErasure:
    referrals: Counter[str] = field(default_factory=Counter)  # erased, by rule
    attendances: int = 0  # never candidates
    case_notes: int = 0  # note bodies erased with their referrals' identifiable data
    needs_birth_date: tuple[str, ...] = ()  # consented, support ended, no birth date: kept

    @property
    def referrals_erased(self) -> int:
        return sum(self.referrals.values())


def erase_identifiable(
    engine: Engine,
    keyring: KeyRing,
    audit: AuditStore,
    policy: RetentionPolicy,
    *,
    now: datetime,
    batch_size: int = 200,
) -> IdentifiableErasure:
    """Erase the identifiable data that is due at `now`. Safe to run at any time, again and
    concurrently with the gateway: each referral is decided again inside the transaction
    that erases it."""
    require_aware(now, "now")
    consents = ConsentStore(keyring)
    erased: Counter[str] = Counter()
    needs_birth_date: list[str] = []
    notes = 0
    after = ""
    # free text written after the identity went (a consent recorded again later, a note
    # under it) is due with the referral too
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
    while True:
        with engine.connect() as conn:
            ids = [
                r.id
                for r in conn.execute(
                    select(REFERRAL.c.id)
                    .join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
                    .where(
                        or_(ATTENDANCE.c.identity_enc.is_not(None), note_left, details_left),
                        REFERRAL.c.id > after,
                    )
                    .order_by(REFERRAL.c.id)
                    .limit(batch_size)
                )
            ]
        if not ids:
            break
        with unit_of_work(engine) as uow:
            for referral_id in ids:
                rule, n = _erase_referral_if_due(uow, keyring, consents, policy, referral_id, now)
                notes += n
                if rule is RetentionRule.NEEDS_BIRTH_DATE:
                    needs_birth_date.append(referral_id)
                elif rule is not None:
                    erased[rule.value] += 1
                    audit.append(
                        uow,
                        at=now,
                        actor=SYSTEM_ACTOR,
                        action=AuditAction.RETENTION_ERASE,
                        subject=referral_id,
                        why=f"identifiable:{rule.value}",
                    )
        after = ids[-1]
    attendances = _erase_non_candidates(engine, audit, policy, now=now, batch_size=batch_size)
    return IdentifiableErasure(erased, attendances, notes, tuple(needs_birth_date))


def _erase_referral_if_due(
    uow: UnitOfWork,
    keyring: KeyRing,
    consents: ConsentStore,
    policy: RetentionPolicy,
    referral_id: str,
    now: datetime,
) -> tuple[RetentionRule | None, int]:
    """The rule that erased the referral's identifiable data now (NEEDS_BIRTH_DATE when
    it is kept for want of one, None when it is kept), and how many note bodies went."""
    conn = uow.conn
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
        return None, 0
    status = ReferralStatus(row.status)
    history = consents.history(conn, referral_id)
    facts = ReferralFacts(
        candidate_since=row.created_at,
        history=history,
        voided_at=row.updated_at if status is ReferralStatus.VOIDED else None,
        support_ended_on=(row.closed_at or row.updated_at).date()
        if status is ReferralStatus.CLOSED
        else None,
    )
    retention = identifiable_retention(facts, policy)
    if retention.rule is RetentionRule.NEEDS_BIRTH_DATE:
        birth_date = _birth_date(keyring, row.identity_enc)
        if birth_date is None:
            return RetentionRule.NEEDS_BIRTH_DATE, 0
        facts = ReferralFacts(
            candidate_since=facts.candidate_since,
            history=history,
            voided_at=facts.voided_at,
            birth_date=birth_date,
            support_ended_on=facts.support_ended_on,
        )
        retention = identifiable_retention(facts, policy)
    if not retention.due(now):
        return None, 0
    if row.identity_enc is not None:
        _erase_attendance(conn, row.attendance_id)
    consents.erase_details(conn, referral_id, now=now)
    return retention.rule, _erase_case_notes(conn, referral_id)


def _birth_date(keyring: KeyRing, token: bytes | None) -> date | None:
    if token is None:  # erased before: nothing says when the 25th birthday is
        return None
    ident = json.loads(keyring.decrypt_text(token, context=IDENTITY_CONTEXT))
    value = ident.get("birth_date")
    return date.fromisoformat(value) if value else None


def _erase_attendance(conn: Connection, attendance_id: int) -> None:
    conn.execute(
        update(ATTENDANCE)
        .where(ATTENDANCE.c.id == attendance_id)
        .values(identity_enc=None, key_id=None, bay_enc=None)
    )


def _erase_case_notes(conn: Connection, referral_id: str) -> int:
    """Erase the bodies of the referral's case notes; the rows (author, time) stay."""
    done = conn.execute(
        update(NOTES)
        .where(NOTES.c.referral_id == referral_id, NOTES.c.body_enc.is_not(None))
        .values(body_enc=None, key_id=None)
    )
    return int(done.rowcount or 0)


def _erase_non_candidates(
    engine: Engine, audit: AuditStore, policy: RetentionPolicy, *, now: datetime, batch_size: int
) -> int:
    cutoff = now - timedelta(days=policy.voided_days)
    return _erase_in_batches(
        engine,
        audit,
        now=now,
        pick=select(ATTENDANCE.c.id)
        .outerjoin(REFERRAL, REFERRAL.c.attendance_id == ATTENDANCE.c.id)
        .where(
            REFERRAL.c.id.is_(None),
            ATTENDANCE.c.identity_enc.is_not(None),
            ATTENDANCE.c.updated_at <= cutoff,
        )
        .order_by(ATTENDANCE.c.id)
        .limit(batch_size)
        .with_for_update(of=ATTENDANCE),
        erase=lambda ids: (
            update(ATTENDANCE)
            .where(ATTENDANCE.c.id.in_(ids), ATTENDANCE.c.updated_at <= cutoff)
            .values(identity_enc=None, key_id=None, bay_enc=None)
        ),
        subject="attendance",
        why="identifiable:not_candidate",
    )


def erase_raw_messages(
    engine: Engine,
    audit: AuditStore,
    policy: RetentionPolicy,
    *,
    now: datetime,
    batch_size: int = 500,
) -> int:
    """Erase the payload of messages processed or filtered and received `raw_message_days`
    ago or more. Returns how many payloads were erased."""
    require_aware(now, "now")
    cutoff = now - timedelta(days=policy.raw_message_days)
    return _erase_in_batches(
        engine,
        audit,
        now=now,
        pick=select(INBOX.c.id)
        .where(
            INBOX.c.state.in_(PROCESSED_STATES),
            INBOX.c.payload_enc.is_not(None),
            INBOX.c.received_at <= cutoff,
        )
        .order_by(INBOX.c.id)
        .limit(batch_size)
        .with_for_update(),
        erase=lambda ids: (
            update(INBOX)
            .where(INBOX.c.id.in_(ids), INBOX.c.state.in_(PROCESSED_STATES))
            .values(payload_enc=None, key_id=None)
        ),
        subject="inbound_message",
        why="raw_message",
    )


def _erase_in_batches(
    engine: Engine,
    audit: AuditStore,
    *,
    now: datetime,
    pick: Select[Any],
    erase: Callable[[list[int]], Update],
    subject: str,
    why: str,
) -> int:
    """Erase batch after batch (`pick` the ids, `erase` them), each in its own unit of work
    with one audit entry naming how many and the id range, until none is left."""
    total = 0
    while True:
        with unit_of_work(engine) as uow:
            ids = [r.id for r in uow.conn.execute(pick)]
            if not ids:
                return total
            uow.conn.execute(erase(ids))
            audit.append(
                uow,
                at=now,
                actor=SYSTEM_ACTOR,
                action=AuditAction.RETENTION_ERASE,
                subject=subject,
                why=f"{why}:{len(ids)}:ids={ids[0]}-{ids[-1]}",
            )
            total += len(ids)
