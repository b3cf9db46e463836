"""Casework in the database: claims and assignments, contact attempts, support, onward
referrals and signposting, closure, follow-up, and case notes (encrypted).

A referral's casework state is its `referral.status` plus one `referral_case` row, written
together. Writes are compare-and-set on the state that was read (`version`), so two workers
claiming the same referral at once cannot both win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Column, Index, LargeBinary, Table, and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from consent.keyring import KeyRing
from referral_gateway.domain.casework import (
    Case,
    ClosureOutcome,
    ContactAttempt,
    ContactMethod,
    ContactOutcome,
    FollowUpOutcome,
    OnwardKind,
    OnwardReferral,
    ServiceType,
    SupportTier,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.storage.dialect import insert_ignoring_duplicates
from referral_gateway.storage.errors import ConcurrentChange
from referral_gateway.storage.keystore import EncryptedColumn, register_encrypted_column
from referral_gateway.storage.types import UtcDateTime

NOTE_CONTEXT = "casework.note"


class ReferralCaseRow(SQLModel, table=True):
    __tablename__ = "referral_case"

    referral_id: str = Field(primary_key=True, foreign_key="referral.id", max_length=36)
    version: int = 1
    assigned_to: str | None = Field(default=None, max_length=36, index=True)
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    escalated_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    support_tier: str | None = Field(default=None, max_length=10)
    support_started_on: date | None = None
    support_review_on: date | None = None
    closed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    closure_outcome: str | None = Field(default=None, max_length=40)
    closed_by: str | None = Field(default=None, max_length=36)
    follow_up_due_on: date | None = Field(default=None, index=True)
    follow_up_done_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    follow_up_outcome: str | None = Field(default=None, max_length=40)
    updated_by: str | None = Field(default=None, max_length=36)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ContactAttemptRow(SQLModel, table=True):
    __tablename__ = "contact_attempt"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", max_length=36, index=True)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    method: str = Field(max_length=20)
    outcome: str = Field(max_length=30)
    recorded_by: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class OnwardReferralRow(SQLModel, table=True):
    __tablename__ = "onward_referral"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", max_length=36, index=True)
    kind: str = Field(max_length=20)
    service_type: str = Field(max_length=40)
    on_date: date
    recorded_by: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class CaseNoteRow(SQLModel, table=True):
    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", max_length=36, index=True)
    body_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)
    author: str = Field(max_length=36)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


CASES: Table = ReferralCaseRow.__table__  # type: ignore[attr-defined]
CONTACTS: Table = ContactAttemptRow.__table__  # type: ignore[attr-defined]
ONWARD: Table = OnwardReferralRow.__table__  # type: ignore[attr-defined]
NOTES: Table = CaseNoteRow.__table__  # type: ignore[attr-defined]

# key rotation, the start-up key check and key usage cover the notes too
register_encrypted_column(
    EncryptedColumn("case_note.body_enc", NOTES, "body_enc", "key_id", NOTE_CONTEXT)
)

# the queue filters on site and status and sorts by creation time; one index serves it
QUEUE_INDEX = Index(
    "ix_referral_site_status_created", REFERRAL.c.site, REFERRAL.c.status, REFERRAL.c.created_at
)


@dataclass(frozen=True)
class LoadedCase:
    case: Case
    version: int  # 0: no referral_case row yet
    attendance_id: int


@dataclass(frozen=True)
class StoredContact:
    attempt: ContactAttempt
    recorded_at: datetime


@dataclass(frozen=True)
class StoredOnward:
    onward: OnwardReferral
    recorded_at: datetime


@dataclass(frozen=True)
class CaseNote:
    id: int
    author: str
    at: datetime
    body: str  # "" once erased
    erased: bool = False  # retention took the body; the note's author and time stay

    def __repr__(self) -> str:  # a note is about a young person
        return f"CaseNote(id={self.id}, at={self.at.isoformat()})"


class CaseStore:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    # -- state -----------------------------------------------------------------------------
    def load(self, conn: Connection, referral_id: str) -> LoadedCase | None:
        row = conn.execute(
            select(
                REFERRAL.c.id,
                REFERRAL.c.site,
                REFERRAL.c.status,
                REFERRAL.c.created_at,
                REFERRAL.c.attendance_id,
                CASES,
            )
            .select_from(REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id))
            .where(REFERRAL.c.id == referral_id)
        ).first()
        if row is None:
            return None
        return LoadedCase(case_from_row(row), row.version or 0, row.attendance_id)

    def save(
        self, conn: Connection, before: LoadedCase, after: Case, *, by: str, now: datetime
    ) -> None:
        """Write `after` if the referral is still as `before` found it; else raise
        ConcurrentChange (the caller's transaction should roll back)."""
        if after.referral_id != before.case.referral_id:
            raise ValueError("a case can only be saved over itself")
        values = {
            "assigned_to": after.assigned_to,
            "claimed_at": after.claimed_at,
            "escalated_at": after.escalated_at,
            "support_tier": after.support_tier.value if after.support_tier else None,
            "support_started_on": after.support_started_on,
            "support_review_on": after.support_review_on,
            "closed_at": after.closed_at,
            "closure_outcome": after.closure_outcome.value if after.closure_outcome else None,
            "closed_by": by if after.closed_at and not before.case.closed_at else None,
            "follow_up_due_on": after.follow_up_due_on,
            "follow_up_done_at": after.follow_up_done_at,
            "follow_up_outcome": (
                after.follow_up_outcome.value if after.follow_up_outcome else None
            ),
            "updated_by": by,
            "updated_at": now,
        }
        if values["closed_by"] is None:
            values.pop("closed_by")
        if before.version == 0:
            inserted = conn.execute(
                insert_ignoring_duplicates(conn, CASES, ["referral_id"])
                .values(referral_id=after.referral_id, version=1, **values)
                .returning(CASES.c.referral_id)
            ).first()
            if inserted is None:  # someone else wrote the first row meanwhile
                raise ConcurrentChange(after.referral_id)
        else:
            done = conn.execute(
                update(CASES)
                .where(
                    CASES.c.referral_id == after.referral_id,
                    CASES.c.version == before.version,
                )
                .values(version=before.version + 1, **values)
            )
            if done.rowcount != 1:
                raise ConcurrentChange(after.referral_id)
        if after.status is not before.case.status:
            done = conn.execute(
                update(REFERRAL)
                .where(
                    REFERRAL.c.id == after.referral_id,
                    REFERRAL.c.status == before.case.status.value,
                )
                .values(status=after.status.value, updated_at=now)
            )
            if done.rowcount != 1:
                raise ConcurrentChange(after.referral_id)

    # -- contact attempts ------------------------------------------------------------------
    def add_contact(self, conn: Connection, attempt: ContactAttempt, *, now: datetime) -> None:
        conn.execute(
            insert(CONTACTS).values(
                referral_id=attempt.referral_id,
                at=attempt.at,
                method=attempt.method.value,
                outcome=attempt.outcome.value,
                recorded_by=attempt.recorded_by,
                recorded_at=now,
            )
        )

    def contacts(self, conn: Connection, referral_id: str) -> list[StoredContact]:
        rows = conn.execute(
            select(CONTACTS)
            .where(CONTACTS.c.referral_id == referral_id)
            .order_by(CONTACTS.c.at, CONTACTS.c.id)
        ).all()
        return [
            StoredContact(
                ContactAttempt(
                    r.referral_id,
                    r.at,
                    ContactMethod(r.method),
                    ContactOutcome(r.outcome),
                    r.recorded_by,
                ),
                r.recorded_at,
            )
            for r in rows
        ]

    # -- onward referrals and signposting --------------------------------------------------
    def add_onward(self, conn: Connection, onward: OnwardReferral, *, now: datetime) -> None:
        conn.execute(
            insert(ONWARD).values(
                referral_id=onward.referral_id,
                kind=onward.kind.value,
                service_type=onward.service_type.value,
                on_date=onward.on,
                recorded_by=onward.recorded_by,
                recorded_at=now,
            )
        )

    def onwards(self, conn: Connection, referral_id: str) -> list[StoredOnward]:
        rows = conn.execute(
            select(ONWARD)
            .where(ONWARD.c.referral_id == referral_id)
            .order_by(ONWARD.c.on_date, ONWARD.c.id)
        ).all()
        return [
            StoredOnward(
                OnwardReferral(
                    r.referral_id,
                    OnwardKind(r.kind),
                    ServiceType(r.service_type),
                    r.on_date,
                    r.recorded_by,
                ),
                r.recorded_at,
            )
            for r in rows
        ]

    # -- notes -----------------------------------------------------------------------------
    def add_note(
        self, conn: Connection, referral_id: str, body: str, *, author: str, now: datetime
    ) -> None:
        conn.execute(
            insert(NOTES).values(
                referral_id=referral_id,
                body_enc=self.keyring.encrypt_text(body, context=NOTE_CONTEXT),
                key_id=self.keyring.active_key_id,
                author=author,
                at=now,
            )
        )

    def note_count(self, conn: Connection, referral_id: str) -> int:
        return len(conn.execute(select(NOTES.c.id).where(NOTES.c.referral_id == referral_id)).all())

    def notes(self, conn: Connection, referral_id: str) -> list[CaseNote]:
        """Decrypted notes: call only after the consent policy allowed `case_notes`."""
        rows = conn.execute(
            select(NOTES).where(NOTES.c.referral_id == referral_id).order_by(NOTES.c.at)
        ).all()
        return [
            CaseNote(
                r.id,
                r.author,
                r.at,
                self.keyring.decrypt_text(r.body_enc, context=NOTE_CONTEXT)
                if r.body_enc is not None
                else "",
                erased=r.body_enc is None,
            )
            for r in rows
        ]


def mark_escalations(conn: Connection, *, cutoff: datetime, now: datetime) -> list[tuple[str, str]]:
    """Mark new, unclaimed referrals created before `cutoff` as escalated; returns the
    (referral id, site) of each newly escalated one."""
    rows = conn.execute(
        select(REFERRAL.c.id, REFERRAL.c.site, CASES.c.version)
        .select_from(REFERRAL.outerjoin(CASES, CASES.c.referral_id == REFERRAL.c.id))
        .where(
            REFERRAL.c.status == ReferralStatus.NEW.value,
            REFERRAL.c.created_at < cutoff,
            or_(
                CASES.c.referral_id.is_(None),
                and_(CASES.c.escalated_at.is_(None), CASES.c.assigned_to.is_(None)),
            ),
        )
        .limit(500)
    ).all()
    done: list[tuple[str, str]] = []
    for r in rows:
        if r.version is None:
            marked = (
                conn.execute(
                    insert_ignoring_duplicates(conn, CASES, ["referral_id"])
                    .values(referral_id=r.id, version=1, escalated_at=now, updated_at=now)
                    .returning(CASES.c.referral_id)
                ).first()
                is not None
            )
        else:
            marked = (
                conn.execute(
                    update(CASES)
                    .where(CASES.c.referral_id == r.id, CASES.c.version == r.version)
                    .values(escalated_at=now, version=r.version + 1, updated_at=now)
                ).rowcount
                == 1
            )
        if marked:
            done.append((r.id, r.site))
    return done


def assigned_to(conn: Connection, referral_id: str) -> str | None:
    """Who the referral is assigned to (the consent policy's need-to-know), or None. The
    `assignments` lookup of `services.sharing.Sharing`."""
    value = conn.execute(
        select(CASES.c.assigned_to).where(CASES.c.referral_id == referral_id)
    ).scalar()
    return str(value) if value is not None else None


def case_from_row(row: object) -> Case:
    """A `Case` from a row holding the referral's id, site, status and created_at and the
    (possibly absent) referral_case columns."""
    m = row._mapping  # type: ignore[attr-defined]
    return Case(
        referral_id=m["id"],
        site=m["site"],
        status=ReferralStatus(m["status"]),
        created_at=m["created_at"],
        assigned_to=m.get("assigned_to"),
        claimed_at=m.get("claimed_at"),
        escalated_at=m.get("escalated_at"),
        support_tier=SupportTier(m["support_tier"]) if m.get("support_tier") else None,
        support_started_on=m.get("support_started_on"),
        support_review_on=m.get("support_review_on"),
        closed_at=m.get("closed_at"),
        closure_outcome=(
            ClosureOutcome(m["closure_outcome"]) if m.get("closure_outcome") else None
        ),
        follow_up_due_on=m.get("follow_up_due_on"),
        follow_up_done_at=m.get("follow_up_done_at"),
        follow_up_outcome=(
            FollowUpOutcome(m["follow_up_outcome"]) if m.get("follow_up_outcome") else None
        ),
    )


def reasons_of(detection_reasons_json: str) -> list[dict[str, str]]:
    try:
        value = json.loads(detection_reasons_json or "[]")
    except ValueError:
        return []
    return [r for r in value if isinstance(r, dict)]
