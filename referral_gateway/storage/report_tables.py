"""Tables of the monthly reports: frozen snapshots, push state, hub receipts.

Nothing here is identifiable: snapshots and receipts hold disclosure-controlled figures.
Migrations: storage/migrations/versions/0005_reports.py, 0011_report_versions.py (versions
with a reason, at the site and at the hub; a push refused for good under one configuration).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class ReportSnapshotRow(SQLModel, table=True):
    """A version of a month's report for a site, frozen once and never changed. Version 1 is
    the scheduled freeze; each re-issue (a correction, with its reason) is the next."""

    __tablename__ = "report_snapshot"
    __table_args__ = (
        UniqueConstraint("site", "month", "version", name="uq_report_snapshot_site_month_version"),
    )

    report_id: str = Field(primary_key=True, max_length=64)
    site: str = Field(max_length=40)
    month: str = Field(max_length=7)  # YYYY-MM
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    reason: str | None = Field(default=None, max_length=500)  # why it was re-issued
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    checksum: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON


class ReportPushRow(SQLModel, table=True):
    """Whether a snapshot reached the programme: pending → sending → sent | failed.
    `lease_until` lets another process take over a send whose process died."""

    __tablename__ = "report_push"

    site: str = Field(primary_key=True, max_length=40)
    month: str = Field(primary_key=True, max_length=7)
    report_id: str = Field(max_length=64)
    status: str = Field(max_length=12)
    attempts: int = 0
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    # set when the hub refused for good (a 4xx other than a replay): the fingerprint of the
    # site's push configuration then; hourly retries skip the month until it changes
    refused_under: str | None = Field(default=None, max_length=64)


class HubReceiptRow(SQLModel, table=True):
    """A signed report a site pushed to this hub. One row per report id: the same id again
    is a replay. Each site and month's receipts are its versions (1, 2, ...), the newest
    current; a version after the first carries the reason the site gave."""

    __tablename__ = "hub_receipt"
    __table_args__ = (
        Index("ix_hub_receipt_month_site", "month", "site"),
        UniqueConstraint("site", "month", "version", name="uq_hub_receipt_site_month_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(max_length=64, unique=True)
    checksum: str = Field(max_length=64)
    site: str = Field(max_length=40)
    month: str = Field(max_length=7)
    key_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    received_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    reason: str | None = Field(default=None, max_length=500)
