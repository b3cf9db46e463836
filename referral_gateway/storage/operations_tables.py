"""Tables of running the gateway: scheduled job runs (once across instances), feed-silence
alarms, the files a replay has finished. Nothing here is identifiable: job names, slots,
instance names, sender names, file paths and counts.
Migrations: storage/migrations/versions/0007_operations.py, 0010_replay_file.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class JobRunRow(SQLModel, table=True):
    """One run of a scheduled job by one instance (PostgreSQL only: on SQLite one instance
    runs everything). `slot` names the scheduled moment; a slot has at most one run with
    outcome "ok" or "failed"; a run whose instance died stays unfinished until another
    instance takes it over and marks it "abandoned"."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_slot", "job", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=80)
    slot: str = Field(max_length=40)
    holder: str = Field(max_length=120)  # host:pid of the instance that ran it
    started_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    outcome: str | None = Field(default=None, max_length=12)  # ok | failed | abandoned


class FeedAlarmRow(SQLModel, table=True):
    """A feed-silence alarm: raised when a sender has been quiet longer than its site's
    pattern allows, cleared when it sends again. The published record alert channels read
    (`storage.feed_alarms.alarms_since`)."""

    __tablename__ = "feed_alarm"
    __table_args__ = (Index("ix_feed_alarm_open", "channel", "sender", "cleared_at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    sender: str = Field(max_length=200)
    site: str = Field(default="", max_length=40)
    raised_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_message_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    allowed_minutes: int
    cleared_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class ReplayFileRow(SQLModel, table=True):
    """A file `replay` has finished: stored and processed. `file_key` is a hash of its path,
    size, modification time and content hash, so a changed file is read again. Only counts
    are kept, never the file's content."""

    __tablename__ = "replay_file"

    file_key: str = Field(primary_key=True, max_length=64)
    path: str = Field(max_length=2000)
    size: int = Field(sa_column=Column(BigInteger(), nullable=False))
    content_hash: str = Field(max_length=64)
    kind: str = Field(max_length=8)  # hl7 | ndjson
    messages: int
    finished_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
