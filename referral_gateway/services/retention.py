"""Retention jobs: erase identifiable data when `consent.retention` says it is due.

Plain functions with the clock passed in; `referral_gateway.entrypoints.jobs` runs them on a
schedule, tests call them directly.

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

The statements that find and erase live in `storage.erasure`; this module decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

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
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.consent_store import ConsentStore
from referral_gateway.storage.erasure import (
    erase_attendance_identity,
    erase_case_note_bodies,
    erase_non_candidate_identities,
    erase_raw_payloads,
    referrals_holding_identifiable_data,
    retention_state,
)
from referral_gateway.storage.referrals import decrypt_identity
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work

SYSTEM_ACTOR = "system:retention"


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
    while True:
        with engine.connect() as conn:
            ids = referrals_holding_identifiable_data(conn, after=after, limit=batch_size)
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
    row = retention_state(conn, referral_id)
    if row is None:
        return None, 0
    status = row.status
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
        erase_attendance_identity(conn, row.attendance_id)
    consents.erase_details(conn, referral_id, now=now)
    return retention.rule, erase_case_note_bodies(conn, referral_id)


def _birth_date(keyring: KeyRing, token: bytes | None) -> date | None:
    if token is None:  # erased before: nothing says when the 25th birthday is
        return None
    value = decrypt_identity(keyring, token).get("birth_date")
    return date.fromisoformat(value) if value else None


def _erase_non_candidates(
    engine: Engine, audit: AuditStore, policy: RetentionPolicy, *, now: datetime, batch_size: int
) -> int:
    cutoff = now - timedelta(days=policy.voided_days)
    return _erase_in_batches(
        engine,
        audit,
        now=now,
        erase_batch=lambda conn: erase_non_candidate_identities(
            conn, updated_before=cutoff, limit=batch_size
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
        erase_batch=lambda conn: erase_raw_payloads(conn, received_before=cutoff, limit=batch_size),
        subject="inbound_message",
        why="raw_message",
    )


def _erase_in_batches(
    engine: Engine,
    audit: AuditStore,
    *,
    now: datetime,
    erase_batch: Callable[[Connection], list[int]],
    subject: str,
    why: str,
) -> int:
    """Erase batch after batch (`erase_batch` erases one and returns its ids), each in its
    own unit of work with one audit entry naming how many and the id range, until none is
    left."""
    total = 0
    while True:
        with unit_of_work(engine) as uow:
            ids = erase_batch(uow.conn)
            if not ids:
                return total
            audit.append(
                uow,
                at=now,
                actor=SYSTEM_ACTOR,
                action=AuditAction.RETENTION_ERASE,
                subject=subject,
                why=f"{why}:{len(ids)}:ids={ids[0]}-{ids[-1]}",
            )
            total += len(ids)
