"""The FHIR channel's tables: resources (current version, encrypted), identifier keys, API
clients of sending systems, poll watermarks. Kept apart from `fhir_store.py` so that schema
tooling (Alembic's environment, the migration test) can register them with one import and
nothing else. Migration: `migrations/versions/0002_fhir.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from referral_gateway.storage.types import UtcDateTime


class FhirResourceRow(SQLModel, table=True):
    """The current version of one resource at one site."""

    __tablename__ = "fhir_resource"
    __table_args__ = (
        Index("ix_fhir_resource_subject", "site", "resource_type", "subject_key"),
        Index("ix_fhir_resource_encounter", "site", "resource_type", "encounter_key"),
    )

    site: str = Field(primary_key=True, max_length=40)
    resource_type: str = Field(primary_key=True, max_length=40)
    resource_id: str = Field(primary_key=True, max_length=64)
    version: int
    last_updated: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    status: str | None = Field(default=None, max_length=30)  # a code, never identifiable
    content_hash: str = Field(max_length=64)  # keyed: a repeat of the same content is no write
    subject_key: str | None = Field(default=None, max_length=64)
    encounter_key: str | None = Field(default=None, max_length=64)
    content_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(max_length=32)
    sender: str = Field(max_length=200)


class FhirIdentifierRow(SQLModel, table=True):
    """Keyed hashes of a resource's identifiers, for `identifier=` lookups."""

    __tablename__ = "fhir_identifier"

    site: str = Field(primary_key=True, max_length=40)
    resource_type: str = Field(primary_key=True, max_length=40)
    key_hash: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)


class FhirApiClientRow(SQLModel, table=True):
    """A sending system: its name, the site it speaks for and its token's hash."""

    __tablename__ = "fhir_api_client"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    site: str = Field(max_length=40)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class FhirPollStateRow(SQLModel, table=True):
    """Where polling of one configured source has got to."""

    __tablename__ = "fhir_poll_state"

    source: str = Field(primary_key=True, max_length=100)
    watermark: str | None = Field(default=None, max_length=40)  # a FHIR instant, as served
    failures: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_run_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_error: str | None = Field(default=None, max_length=300)
    # a poll cut short by its page limit: the next page, and the newest lastUpdated read so
    # far (the watermark moves to it once the whole search has been read)
    resume_url: str | None = Field(default=None, max_length=2000)
    pending_watermark: str | None = Field(default=None, max_length=40)
    # Conditions and Observations changed after their Encounter was read: read up to here
    related_watermark: str | None = Field(default=None, max_length=40)
