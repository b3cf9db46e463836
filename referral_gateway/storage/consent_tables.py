"""The tables of consent: consent records, the audit trail and the key ring's canary.

- `consent_record`: a referral's consent history, one row per record, never updated except
  that retention erases `details_enc` (the free text) with the rest of the identifiable data.
  The free text a record keeps (Gillick assessment, not-approached detail, override reason,
  authoriser name) may describe the young person, so it is encrypted like identity.
- `audit_entry`: the hash-chained audit trail (`consent.audit`). `seq` is the primary key, so
  two appenders that raced past the lock could never both extend the chain.
- `key_canary`: one known plaintext encrypted with the key ring, checked at start-up, so a
  wrong key ring is caught before it writes anything.

Migration: `storage/migrations/versions/0004_consent_store.py`, which imports this module so
the tables are registered with `SQLModel.metadata` whenever Alembic runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, LargeBinary, Table, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class ConsentRecordRow(SQLModel, table=True):
    __tablename__ = "consent_record"
    __table_args__ = (UniqueConstraint("referral_id", "seq", name="uq_consent_referral_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", max_length=36, index=True)
    seq: int
    outcome: str = Field(max_length=30)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    giver: str | None = Field(default=None, max_length=40)
    young_person_age: int | None = None
    not_approached_reason: str | None = Field(default=None, max_length=40)
    authoriser_role: str | None = Field(default=None, max_length=120)
    override_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    supersedes: int | None = None
    # given consent covers onward sharing / the override says the referral must go on
    # (migration 0007_onward)
    onward_sharing: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # free text (JSON, encrypted): gillick_assessment, not_approached_detail, override_reason,
    # authoriser_name. NULL when the record has none, or once retention erased it.
    details_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)
    details_erased_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


CONSENT: Table = ConsentRecordRow.__table__  # type: ignore[attr-defined]


class AuditEntryRow(SQLModel, table=True):
    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    actor: str = Field(max_length=80)
    action: str = Field(max_length=30)
    subject: str = Field(max_length=120, index=True)
    why: str = Field(max_length=200)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class KeyCanaryRow(SQLModel, table=True):
    __tablename__ = "key_canary"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
