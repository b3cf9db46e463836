"""FHIR resources as the gateway keeps them, API clients of sending systems, poll watermarks.

Resources are partitioned by site (the ODS code an API token or a configured source is bound
to): `Encounter/123` from one ED is not `Encounter/123` from another. Only the current
version of each resource is kept; every version that was written is also an inbox row
(`channel = "fhir"`, `message_key = "Type/id/_history/version"`), which is what the pipeline
processes.

Content is encrypted (`fhir_resource.content`: a Patient is identifiable, and Encounters and
Conditions carry free text). The keys the gateway searches on are keyed hashes: identifiers
(`identifier=system|value` for conditional create) and the references that tie a Condition
or Observation to its Encounter and an Encounter to its Patient.

API tokens are random 256-bit secrets; only their SHA-256 is stored (a slow password hash
adds nothing for secrets of that strength and would cost every request).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeEngine

from consent.keyring import KeyRing
from referral_gateway.storage.dialect import insert_ignoring_duplicates
from referral_gateway.storage.errors import ApiClientError, ConcurrentWrite
from referral_gateway.storage.fhir_tables import (
    FhirApiClientRow,
    FhirIdentifierRow,
    FhirPollStateRow,
    FhirResourceRow,
)
from referral_gateway.storage.inbox import INBOX, Arrival, MessageCounts
from referral_gateway.storage.types import UtcDateTime

CONTENT_CONTEXT = "fhir_resource.content"
_IDENTIFIER_PURPOSE = "fhir_identifier"
_REFERENCE_PURPOSE = "fhir_reference"
_CONTENT_PURPOSE = "fhir_content"


RESOURCE: Table = FhirResourceRow.__table__  # type: ignore[attr-defined]
IDENTIFIER: Table = FhirIdentifierRow.__table__  # type: ignore[attr-defined]
API_CLIENT: Table = FhirApiClientRow.__table__  # type: ignore[attr-defined]
POLL_STATE: Table = FhirPollStateRow.__table__  # type: ignore[attr-defined]


# -- resources ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredResource:
    site: str
    resource_type: str
    resource_id: str
    version: int
    last_updated: datetime
    content_hash: str
    content: dict[str, Any]

    def __repr__(self) -> str:
        return (
            f"StoredResource({self.resource_type}/{self.resource_id}/_history/{self.version}, "
            f"site={self.site!r})"
        )


@dataclass(frozen=True)
class CurrentVersion:
    version: int
    content_hash: str
    status: str | None


@dataclass(frozen=True)
class ResourceWrite:
    """A new version of a resource, ready to store. `payload` is its JSON (with meta)."""

    site: str
    resource_type: str
    resource_id: str
    version: int
    last_updated: datetime
    status: str | None
    content_hash: str
    payload: bytes
    identifier_keys: frozenset[str]  # from `identifier_keys`, for `identifier=` lookups
    subject: str | None  # "Patient/123"
    encounter: str | None  # "Encounter/456"
    sender: str

    def __repr__(self) -> str:
        return f"ResourceWrite({self.resource_type}/{self.resource_id}/_history/{self.version})"


@dataclass(frozen=True)
class PreparedWrites:
    """Resource versions as rows, ready for `FhirResourceStore.write_many`."""

    inserts: list[dict[str, Any]]
    updates: list[tuple[dict[str, Any], dict[str, Any], int, str]]  # row, where, base, name
    identifier_rows: list[dict[str, Any]]


class FhirResourceStore:
    """Reads and writes resources. Writes happen inside a caller's transaction (the FHIR
    writer's); reads are also offered on their own connection for the pipeline's decoder."""

    def __init__(self, engine: Engine, keyring: KeyRing) -> None:
        self.engine = engine
        self.keyring = keyring

    # keyed hashes ------------------------------------------------------------------------
    def content_hash(self, canonical: str) -> str:
        return self.keyring.blind_index(canonical, purpose=_CONTENT_PURPOSE)

    def identifier_keys(self, site: str, resource_type: str, system: str, value: str) -> list[str]:
        """A resource's identifier is found by `system|value` and by `value` alone."""
        keys = [self.identifier_key(site, resource_type, "*", value)]
        keys.append(self.identifier_key(site, resource_type, system, value))
        return keys

    def identifier_key(self, site: str, resource_type: str, system: str, value: str) -> str:
        return self.keyring.blind_index(
            f"{site}|{resource_type}|{system}|{value}", purpose=_IDENTIFIER_PURPOSE
        )

    def reference_key(self, site: str, reference: str) -> str:
        return self.keyring.blind_index(f"{site}|{reference}", purpose=_REFERENCE_PURPOSE)

    # reads -------------------------------------------------------------------------------
    # Plain SQL: these run several times per message on the hot paths (the writer, the
    # pipeline's decoder), where building SQLAlchemy expressions cost more than the query.
    def current(
        self, conn: Connection, site: str, resource_type: str, resource_id: str
    ) -> StoredResource | None:
        row = conn.execute(
            _CURRENT, {"site": site, "type": resource_type, "id": resource_id}
        ).first()
        return self._to_stored(row._mapping) if row is not None else None

    def version_of(
        self, conn: Connection, site: str, resource_type: str, resource_id: str
    ) -> CurrentVersion | None:
        """The current version, content hash and status, without decrypting anything."""
        found = self.versions_of(conn, site, resource_type, [resource_id])
        return found.get(resource_id)

    def versions_of(
        self, conn: Connection, site: str, resource_type: str, resource_ids: Sequence[str]
    ) -> dict[str, CurrentVersion]:
        rows = conn.execute(
            _VERSIONS, {"site": site, "type": resource_type, "ids": list(resource_ids)}
        )
        return {
            r.resource_id: CurrentVersion(int(r.version), str(r.content_hash), r.status)
            for r in rows
        }

    def ids_by_identifier(
        self, conn: Connection, site: str, resource_type: str, system: str | None, value: str
    ) -> list[str]:
        """Ids of resources with this identifier; `system` None matches any system."""
        key = self.identifier_key(site, resource_type, "*" if system is None else system, value)
        return sorted(self.ids_by_keys(conn, site, resource_type, [key]).get(key, set()))

    def ids_by_keys(
        self, conn: Connection, site: str, resource_type: str, keys: Sequence[str]
    ) -> dict[str, set[str]]:
        """Resource ids per identifier key (from `identifier_key`)."""
        found: dict[str, set[str]] = {}
        for r in conn.execute(
            _IDS_BY_KEYS, {"site": site, "type": resource_type, "keys": list(keys)}
        ):
            found.setdefault(r.key_hash, set()).add(r.resource_id)
        return found

    def referencing(
        self,
        conn: Connection,
        site: str,
        resource_type: str | tuple[str, ...],
        *,
        subject: str | None = None,
        encounter: str | None = None,
        limit: int = 50,
    ) -> list[StoredResource]:
        """Resources of `resource_type` (one or several) whose subject or encounter is the
        given reference, newest first."""
        types = [resource_type] if isinstance(resource_type, str) else list(resource_type)
        if subject is not None:
            stmt, ref = _BY_SUBJECT, subject
        elif encounter is not None:
            stmt, ref = _BY_ENCOUNTER, encounter
        else:
            raise ValueError("referencing() needs a subject or an encounter")
        rows = conn.execute(
            stmt,
            {"site": site, "types": types, "key": self.reference_key(site, ref), "limit": limit},
        )
        return [self._to_stored(r._mapping) for r in rows]

    # writes ------------------------------------------------------------------------------
    def prepare_writes(self, writes: Sequence[tuple[ResourceWrite, int | None]]) -> PreparedWrites:
        """Each write as the rows to store (content encrypted): done before the write gate
        is taken, so the transaction holding it only runs statements."""
        inserts, updates, keys = [], [], []
        for w, base in writes:
            row = self._row(w)
            if base is None:
                inserts.append(row)
            else:
                where = {"b_site": w.site, "b_type": w.resource_type, "b_id": w.resource_id}
                updates.append((row, where, base, f"{w.resource_type}/{w.resource_id}"))
            keys += [
                {
                    "site": w.site,
                    "resource_type": w.resource_type,
                    "key_hash": k,
                    "resource_id": w.resource_id,
                }
                for k in sorted(w.identifier_keys)
            ]
        return PreparedWrites(inserts, updates, keys)

    @staticmethod
    def write_many(conn: Connection, prepared: PreparedWrites) -> None:
        """Store each write as its resource's current version. An update applies only if
        the database still holds the version it was based on, so two processes writing the
        same resource cannot both win; the loser raises ConcurrentWrite and its writer
        decides again."""
        for row, where, base, name in prepared.updates:
            done = conn.execute(_UPDATE_RESOURCE, {**row, **where, "b_version": base})
            if done.rowcount != 1:
                raise ConcurrentWrite(f"{name} changed while being written")
            conn.execute(_DELETE_IDENTIFIERS, where)
        if prepared.inserts:
            conn.execute(insert(RESOURCE), prepared.inserts)
        if prepared.identifier_rows:
            conn.execute(insert(IDENTIFIER), prepared.identifier_rows)

    def _row(self, w: ResourceWrite) -> dict[str, Any]:
        return {
            "site": w.site,
            "resource_type": w.resource_type,
            "resource_id": w.resource_id,
            "version": w.version,
            "last_updated": w.last_updated,
            "status": w.status,
            "content_hash": w.content_hash,
            "subject_key": self.reference_key(w.site, w.subject) if w.subject else None,
            "encounter_key": self.reference_key(w.site, w.encounter) if w.encounter else None,
            "content_enc": self.keyring.encrypt(w.payload, context=CONTENT_CONTEXT),
            "key_id": self.keyring.active_key_id,
            "sender": w.sender,
        }

    # the lookups the pipeline's decoder uses, each on its own connection ---------------------
    def get(self, site: str, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = self.current(conn, site, resource_type, resource_id)
        return found.content if found else None

    def find_by_identifier(
        self, site: str, resource_type: str, system: str | None, value: str
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            ids = self.ids_by_identifier(conn, site, resource_type, system, value)
            found = [self.current(conn, site, resource_type, i) for i in ids]
        return [f.content for f in found if f is not None]

    def referencing_content(
        self,
        site: str,
        resource_type: str | tuple[str, ...],
        *,
        subject: str | None = None,
        encounter: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            found = self.referencing(
                conn, site, resource_type, subject=subject, encounter=encounter, limit=limit
            )
        return [f.content for f in found]

    def _to_stored(self, row: Any) -> StoredResource:
        content = json.loads(self.keyring.decrypt(row["content_enc"], context=CONTENT_CONTEXT))
        return StoredResource(
            site=row["site"],
            resource_type=row["resource_type"],
            resource_id=row["resource_id"],
            version=row["version"],
            last_updated=row["last_updated"],
            content_hash=row["content_hash"],
            content=content,
        )


_TYPES: dict[str, TypeEngine[Any]] = {"last_updated": UtcDateTime(), "content_enc": LargeBinary()}
_CURRENT = text(
    "SELECT site, resource_type, resource_id, version, last_updated, content_hash, content_enc "
    "FROM fhir_resource "
    "WHERE site = :site AND resource_type = :type AND resource_id = :id"
).columns(**_TYPES)
_VERSIONS = text(
    "SELECT resource_id, version, content_hash, status FROM fhir_resource "
    "WHERE site = :site AND resource_type = :type AND resource_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_IDS_BY_KEYS = text(
    "SELECT key_hash, resource_id FROM fhir_identifier "
    "WHERE site = :site AND resource_type = :type AND key_hash IN :keys"
).bindparams(bindparam("keys", expanding=True))
_BY_SUBJECT = (
    text(
        "SELECT site, resource_type, resource_id, version, last_updated, content_hash, content_enc "
        "FROM fhir_resource WHERE site = :site AND resource_type IN :types "
        "AND subject_key = :key ORDER BY last_updated DESC LIMIT :limit"
    )
    .bindparams(bindparam("types", expanding=True))
    .columns(**_TYPES)
)
_BY_ENCOUNTER = (
    text(
        "SELECT site, resource_type, resource_id, version, last_updated, content_hash, content_enc "
        "FROM fhir_resource WHERE site = :site AND resource_type IN :types "
        "AND encounter_key = :key ORDER BY last_updated DESC LIMIT :limit"
    )
    .bindparams(bindparam("types", expanding=True))
    .columns(**_TYPES)
)
_WHERE_RESOURCE = (
    (RESOURCE.c.site == bindparam("b_site"))
    & (RESOURCE.c.resource_type == bindparam("b_type"))
    & (RESOURCE.c.resource_id == bindparam("b_id"))
    & (RESOURCE.c.version == bindparam("b_version"))
)
_UPDATE_RESOURCE = (
    update(RESOURCE)
    .where(_WHERE_RESOURCE)
    .values(
        {
            c: bindparam(c)
            for c in (
                "version",
                "last_updated",
                "status",
                "content_hash",
                "subject_key",
                "encounter_key",
                "content_enc",
                "key_id",
                "sender",
            )
        }
    )
)
_DELETE_IDENTIFIERS = delete(IDENTIFIER).where(
    IDENTIFIER.c.site == bindparam("b_site"),
    IDENTIFIER.c.resource_type == bindparam("b_type"),
    IDENTIFIER.c.resource_id == bindparam("b_id"),
)


# -- the inbox, inside the FHIR writer's transaction --------------------------------------
def insert_arrivals(
    conn: Connection, arrivals: Sequence[Arrival], rows: Sequence[dict[str, Any]]
) -> MessageCounts:
    """Insert new resource versions (`rows`: their `inbox_row`s) into the inbox in one
    statement; returns the counts to add. Their keys ("Type/id/_history/version") are new
    by construction: a conflict would mean a version was written twice, and the first row
    is kept."""
    counts: MessageCounts = Counter()
    if not arrivals:
        return counts
    for a in arrivals:
        counts[(a.channel, a.sender, a.received_at.date(), "received")] += 1
        if a.state == "filtered":
            counts[(a.channel, a.sender, a.received_at.date(), "filtered")] += 1
    conn.execute(
        insert_ignoring_duplicates(conn, INBOX, ["channel", "sender", "message_key"]), list(rows)
    )
    return counts


# -- API clients ---------------------------------------------------------------------------
TOKEN_PREFIX = "rgf_"  # noqa: S105  (marks our tokens in logs and secret scanners)


@dataclass(frozen=True)
class ApiClient:
    id: int
    name: str
    site: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiClientStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, *, name: str, site: str, now: datetime) -> tuple[ApiClient, str]:
        """A new client and its token. The token is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            taken = conn.execute(select(API_CLIENT.c.id).where(API_CLIENT.c.name == name)).first()
            if taken is not None:
                raise ApiClientError(f"a client named {name!r} already exists")
            key = conn.execute(
                insert(API_CLIENT).values(
                    name=name, site=site, token_hash=hash_token(token), created_at=now
                )
            ).inserted_primary_key
            assert key is not None
            new_id = key[0]
        return ApiClient(int(new_id), name, site, now, None), token

    def authenticate(self, token: str) -> ApiClient | None:
        """The client holding `token`, revoked or not; None for an unknown token."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(API_CLIENT).where(API_CLIENT.c.token_hash == hash_token(token))
            ).first()
        return _client(row) if row is not None else None

    def revoke(self, name: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                update(API_CLIENT)
                .where(API_CLIENT.c.name == name, API_CLIENT.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        return bool(n)

    def all(self) -> list[ApiClient]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(API_CLIENT).order_by(API_CLIENT.c.name)).all()
        return [_client(r) for r in rows]


def _client(row: Any) -> ApiClient:
    return ApiClient(
        id=row.id,
        name=row.name,
        site=row.site,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


# -- poll watermarks -------------------------------------------------------------------------
@dataclass(frozen=True)
class PollState:
    source: str
    watermark: str | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    resume_url: str | None = None  # a poll cut short by its page limit carries on here
    pending_watermark: str | None = None  # newest lastUpdated read of the unfinished search
    related_watermark: str | None = None  # newest lastUpdated of the late-diagnosis search

    def __repr__(self) -> str:  # the resume URL is the source's, not for logs
        return (
            f"PollState({self.source!r}, watermark={self.watermark!r}, "
            f"failures={self.failures}, resuming={self.resume_url is not None})"
        )


class PollStateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, source: str) -> PollState:
        with self.engine.connect() as conn:
            row = conn.execute(select(POLL_STATE).where(POLL_STATE.c.source == source)).first()
        if row is None:
            return PollState(source)
        return PollState(
            source=row.source,
            watermark=row.watermark,
            failures=row.failures,
            next_attempt_at=row.next_attempt_at,
            last_run_at=row.last_run_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            resume_url=row.resume_url,
            pending_watermark=row.pending_watermark,
            related_watermark=row.related_watermark,
        )

    def save(self, state: PollState) -> None:
        values = {
            "watermark": state.watermark,
            "failures": state.failures,
            "next_attempt_at": state.next_attempt_at,
            "last_run_at": state.last_run_at,
            "last_success_at": state.last_success_at,
            "last_error": state.last_error[:300] if state.last_error else None,
            "resume_url": state.resume_url,
            "pending_watermark": state.pending_watermark,
            "related_watermark": state.related_watermark,
        }
        with self.engine.begin() as conn:
            n = conn.execute(
                update(POLL_STATE).where(POLL_STATE.c.source == state.source).values(values)
            ).rowcount
            if not n:
                conn.execute(insert(POLL_STATE).values(source=state.source, **values))
