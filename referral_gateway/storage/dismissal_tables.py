"""The table of not-an-assault marks (its store: storage/dismissals.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Table
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class NotAssaultMarkRow(SQLModel, table=True):
    """Migration: storage/migrations/versions/0011_dismissals.py."""

    __tablename__ = "not_assault_mark"

    referral_id: str = Field(primary_key=True, foreign_key="referral.id", max_length=36)
    site: str = Field(max_length=40, index=True)
    reason: str = Field(max_length=40)
    note_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_id: str | None = Field(default=None, max_length=32)
    marked_by: str = Field(max_length=36)
    marked_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


MARKS: Table = NotAssaultMarkRow.__table__  # type: ignore[attr-defined]
