"""The tables of the spine: inbox, attendances, referrals, feed counts.

Identifiable data live only in the `*_enc` columns (AES-GCM through the key ring); lookups
use keyed hashes (`*_hash`). Every schema change comes with a migration in
`storage/migrations/versions/`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class InboundMessage(SQLModel, table=True):
    """A raw message exactly as a sender gave it, committed before it is acknowledged.

    state: pending → processed | filtered | error.  `payload_enc` is erased by retention
    once processed; the row (and the counts it carries) survives.
    """

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("channel", "sender", "message_key", name="uq_inbound_sender_key"),
        Index("ix_inbound_state_id", "state", "id"),
        # the last message per sender (feed silence, metrics): one index lookup per sender
        # (migration 0007_operations)
        Index("ix_inbound_sender_received", "channel", "sender", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)  # "hl7v2" | "fhir"
    sender: str = Field(max_length=200)  # MSH-3^MSH-4, or the FHIR token's system name
    message_key: str = Field(max_length=300)  # MSH-10, or Type/id/_history/version
    message_type: str = Field(default="", max_length=40)
    site: str = Field(default="", max_length=40)
    received_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    payload_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)
    state: str = Field(default="pending", max_length=16)
    outcome: str | None = Field(default=None, max_length=40)
    error_stage: str | None = Field(default=None, max_length=20)
    error_detail: str | None = Field(default=None, max_length=1000)
    attempts: int = 0
    processed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class AttendanceRow(SQLModel, table=True):
    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("site", "visit_key", name="uq_attendance_site_visit"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = Field(max_length=40, index=True)
    visit_key: str = Field(max_length=200)  # blind index of site and visit key
    source: str = Field(max_length=16)
    status: str = Field(max_length=20)
    arrival_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), index=True))
    discharge_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    age_at_arrival: int | None = None
    sex: str = Field(default="unknown", max_length=10)
    patient_class: str | None = Field(default=None, max_length=10)
    is_emergency: bool | None = None
    ed_area: str | None = Field(default=None, max_length=80)
    bay_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    codings_json: str = "[]"  # coded reasons/diagnoses: not identifiable
    flags_json: str = "[]"
    detection_rule: str | None = Field(default=None, max_length=40)
    detection_json: str = "{}"
    identity_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)
    nhs_number_hash: str | None = Field(default=None, max_length=64, index=True)
    nhs_number_valid: bool | None = None
    patient_key_hash: str | None = Field(default=None, max_length=64, index=True)
    birth_year: int | None = None
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_message_id: int | None = None


# Monthly counts of screened attendances read this index alone (an index-only scan), never
# the table: a year's report for a site with 500,000 attendances counts them in milliseconds.
# Migration: storage/migrations/versions/0005_reports.py.
_attendance = AttendanceRow.__table__  # type: ignore[attr-defined]
Index(
    "ix_attendance_report_screened",
    _attendance.c.site,
    _attendance.c.arrival_at,
    _attendance.c.status,
    _attendance.c.detection_rule,
)


class ReferralRow(SQLModel, table=True):
    """A candidate referral. Its id is random, so it says nothing about the young person."""

    __tablename__ = "referral"

    id: str = Field(primary_key=True, max_length=36)
    attendance_id: int = Field(foreign_key="attendance.id", unique=True)
    site: str = Field(max_length=40, index=True)
    status: str = Field(max_length=30, index=True)
    detection_rule: str = Field(max_length=40)
    detection_reasons_json: str = "[]"
    injury_category: str | None = Field(default=None, max_length=20)
    valueset_version: str = Field(default="", max_length=40)
    voided_reason: str | None = Field(default=None, max_length=80)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class FeedCount(SQLModel, table=True):
    """Counts per sender per day (UTC): received, duplicate, filtered, errored, candidate."""

    __tablename__ = "feed_count"

    channel: str = Field(primary_key=True, max_length=16)
    sender: str = Field(primary_key=True, max_length=200)
    day: date = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=20)
    n: int = 0


# Tables kept in their own modules register here, so migrations and schema checks see them.
from referral_gateway.storage import dismissal_tables as _dismissal_tables  # noqa: E402, F401
from referral_gateway.storage import form_flash as _form_flash  # noqa: E402, F401
from referral_gateway.storage import operations_tables as _operations_tables  # noqa: E402, F401
from referral_gateway.storage import report_tables as _report_tables  # noqa: E402, F401
