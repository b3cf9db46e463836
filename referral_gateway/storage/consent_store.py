"""Consent histories and the audit trail in the database.

`consent_record` keeps every record of `consent.records` (never updated: a new record
supersedes the one before). The free text a record carries (Gillick assessment, why the young
person was not approached, the override reason and its authoriser) is encrypted together in
`text_enc`.

`audit_entry` is the hash-chained trail of `consent.audit`. Appending reads the chain's head
and writes the next entry in the caller's transaction; on PostgreSQL an advisory lock makes
concurrent appenders queue, and on SQLite the single writer does. If two appenders still meet
(the same `seq`), the database refuses the second and the caller retries its unit of work
(`services.casework.run_unit`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, Table, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from consent.audit import AuditAction, AuditEntry, chain_entry
from consent.keyring import KeyRing
from consent.records import ConsentGiver, ConsentOutcome, ConsentRecord, NotApproachedReason
from referral_gateway.storage.types import UtcDateTime

RECORD_TEXT_CONTEXT = "consent.record.text"
_AUDIT_LOCK_ID = 0x52474155  # "RGAU": the advisory lock serialising audit appends


class ConsentRecordRow(SQLModel, table=True):
    __tablename__ = "consent_record"

    referral_id: str = Field(primary_key=True, foreign_key="referral.id", max_length=36)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    outcome: str = Field(max_length=30)
    recorded_by: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    giver: str | None = Field(default=None, max_length=40)
    young_person_age: int | None = None
    not_approached_reason: str | None = Field(default=None, max_length=40)
    override_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    supersedes: int | None = None
    text_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)


class AuditEntryRow(SQLModel, table=True):
    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    actor: str = Field(max_length=80)
    action: str = Field(max_length=30)
    subject: str = Field(max_length=80, index=True)
    why: str = Field(max_length=200)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


RECORDS: Table = ConsentRecordRow.__table__  # type: ignore[attr-defined]
AUDIT: Table = AuditEntryRow.__table__  # type: ignore[attr-defined]

_TEXT_FIELDS = (
    "gillick_assessment",
    "not_approached_detail",
    "override_reason",
    "authoriser_name",
    "authoriser_role",
)


class ConsentStore:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def history(self, conn: Connection, referral_id: str) -> list[ConsentRecord]:
        rows = conn.execute(
            select(RECORDS).where(RECORDS.c.referral_id == referral_id).order_by(RECORDS.c.seq)
        ).all()
        return [self._record(r) for r in rows]

    def append(self, conn: Connection, record: ConsentRecord) -> None:
        texts = {name: getattr(record, name) for name in _TEXT_FIELDS}
        has_text = any(v is not None for v in texts.values())
        conn.execute(
            insert(RECORDS).values(
                referral_id=record.referral_id,
                seq=record.seq,
                outcome=record.outcome.value,
                recorded_by=record.recorded_by,
                recorded_at=record.recorded_at,
                giver=record.giver.value if record.giver else None,
                young_person_age=record.young_person_age,
                not_approached_reason=(
                    record.not_approached_reason.value if record.not_approached_reason else None
                ),
                override_at=record.override_at,
                supersedes=record.supersedes,
                text_enc=(
                    self.keyring.encrypt_text(json.dumps(texts), context=RECORD_TEXT_CONTEXT)
                    if has_text
                    else None
                ),
                key_id=self.keyring.active_key_id if has_text else None,
            )
        )

    def _record(self, r: Any) -> ConsentRecord:
        texts: dict[str, str | None] = {}
        if r.text_enc is not None:
            texts = json.loads(self.keyring.decrypt_text(r.text_enc, context=RECORD_TEXT_CONTEXT))
        return ConsentRecord(
            referral_id=r.referral_id,
            seq=r.seq,
            outcome=ConsentOutcome(r.outcome),
            recorded_by=r.recorded_by,
            recorded_at=r.recorded_at,
            giver=ConsentGiver(r.giver) if r.giver else None,
            young_person_age=r.young_person_age,
            gillick_assessment=texts.get("gillick_assessment"),
            not_approached_reason=(
                NotApproachedReason(r.not_approached_reason) if r.not_approached_reason else None
            ),
            not_approached_detail=texts.get("not_approached_detail"),
            override_reason=texts.get("override_reason"),
            authoriser_name=texts.get("authoriser_name"),
            authoriser_role=texts.get("authoriser_role"),
            override_at=r.override_at,
            supersedes=r.supersedes,
        )


class AuditTrail:
    """Appends to and reads the hash-chained audit trail."""

    def append(
        self,
        conn: Connection,
        *,
        at: datetime,
        actor: str,
        action: AuditAction,
        subject: str,
        why: str,
    ) -> AuditEntry:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_ID})
        head = conn.execute(select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).first()
        prev = _entry(head) if head is not None else None
        entry = chain_entry(prev, at=at, actor=actor, action=action, subject=subject, why=why)
        conn.execute(
            insert(AUDIT).values(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action.value,
                subject=entry.subject,
                why=entry.why,
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        return entry

    def entries(
        self, conn: Connection, *, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        rows = conn.execute(
            select(AUDIT).where(AUDIT.c.seq > after_seq).order_by(AUDIT.c.seq).limit(limit)
        ).all()
        return [_entry(r) for r in rows]

    def about(self, conn: Connection, subject: str) -> list[AuditEntry]:
        rows = conn.execute(
            select(AUDIT).where(AUDIT.c.subject == subject).order_by(AUDIT.c.seq)
        ).all()
        return [_entry(r) for r in rows]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(AUDIT)).scalar_one())


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(
        seq=r.seq,
        at=r.at,
        actor=r.actor,
        action=AuditAction(r.action),
        subject=r.subject,
        why=r.why,
        prev_hash=r.prev_hash,
        hash=r.hash,
    )
