"""Onward referrals in the database: the directory of services, the Tasks, their history and
the outbox of deliveries.

- `onward_service`: the directory (`domain.onward.Service`). A webhook's shared secret is
  encrypted with the key ring (`SECRET_CONTEXT`), so key rotation covers it.
- `onward_task`: one row per onward referral sent to a service; its `id` is the FHIR Task id
  (made once, never changed). `version` counts changes (the Task's `meta.versionId`).
- `onward_task_event`: every status the Task took, who moved it, reason and outcome.
- `outbox`: deliveries to send (`deliver` the referral, `cancel` it). Written in the same
  transaction as the change that caused it; the worker claims due rows with a lease
  (`lease_until`), so a crashed worker's claim runs out and another sends it. States:
  `pending` (to send, at `next_attempt_at`), `sent`, `dead` (gave up: an administrator may
  retry it), `stopped` (consent was withdrawn before it went).

Nothing identifiable is kept here: the message is built at send time from the encrypted
attendance, so a withdrawal or retention erasure also reaches deliveries still waiting.

Migration: `storage/migrations/versions/0007_onward.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, LargeBinary, Table, Text, and_, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from consent.keyring import KeyRing
from referral_gateway.domain.onward import (
    Channel,
    Mover,
    Service,
    ShareableField,
    TaskMove,
    TaskStatus,
)
from referral_gateway.storage.keystore import EncryptedColumn, register_encrypted_column
from referral_gateway.storage.types import UtcDateTime

SECRET_CONTEXT = "onward.webhook_secret"  # noqa: S105 (associated data, not a secret)


class OnwardServiceRow(SQLModel, table=True):
    __tablename__ = "onward_service"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    code: str = Field(max_length=20)
    offers: str = Field(sa_column=Column(Text, nullable=False))
    channel: str = Field(max_length=10)
    endpoint: str | None = Field(default=None, max_length=500)
    fields: str = Field(max_length=300)  # comma-separated ShareableField values
    key_id: str | None = Field(default=None, max_length=64)
    secret_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    secret_key_id: str | None = Field(default=None, max_length=32)
    active: bool = True
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class OnwardTaskRow(SQLModel, table=True):
    __tablename__ = "onward_task"

    id: str = Field(primary_key=True, max_length=36)
    referral_id: str = Field(foreign_key="referral.id", max_length=36, index=True)
    service_id: str = Field(foreign_key="onward_service.id", max_length=40, index=True)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    outcome: str | None = Field(default=None, max_length=500)
    requested_by: str = Field(max_length=36)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    version: int = 1


class OnwardTaskEventRow(SQLModel, table=True):
    __tablename__ = "onward_task_event"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="onward_task.id", max_length=36, index=True)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    outcome: str | None = Field(default=None, max_length=500)
    by: str = Field(max_length=10)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="onward_task.id", max_length=36, index=True)
    kind: str = Field(max_length=10)
    idempotency_key: str = Field(max_length=80, unique=True)
    state: str = Field(max_length=10, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


SERVICES: Table = OnwardServiceRow.__table__  # type: ignore[attr-defined]
TASKS: Table = OnwardTaskRow.__table__  # type: ignore[attr-defined]
EVENTS: Table = OnwardTaskEventRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]

register_encrypted_column(
    EncryptedColumn(
        "onward_service.secret_enc", SERVICES, "secret_enc", "secret_key_id", SECRET_CONTEXT
    )
)


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    STOPPED = "stopped"


class OutboxKind(enum.StrEnum):
    DELIVER = "deliver"
    CANCEL = "cancel"


@dataclass(frozen=True)
class OnwardTask:
    id: str
    referral_id: str
    service_id: str
    status: TaskStatus
    reason: str | None
    outcome: str | None
    requested_by: str
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class TaskEvent:
    status: TaskStatus
    reason: str | None
    outcome: str | None
    by: Mover
    at: datetime


@dataclass(frozen=True)
class OutboxItem:
    id: int
    task_id: str
    kind: OutboxKind
    idempotency_key: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    referral_id: str = ""
    service_id: str = ""


# -- directory ----------------------------------------------------------------------------------


class ServiceDirectory:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def save(
        self, conn: Connection, service: Service, *, secret: str | None, now: datetime
    ) -> None:
        """Add the service, or replace its entry (a secret of None keeps the old one)."""
        values: dict[str, Any] = {
            "name": service.name,
            "code": service.code,
            "offers": service.offers,
            "channel": service.channel.value,
            "endpoint": service.endpoint,
            "fields": ",".join(sorted(f.value for f in service.fields)),
            "key_id": service.key_id,
            "active": service.active,
        }
        if secret is not None:
            values["secret_enc"] = self.keyring.encrypt_text(secret, context=SECRET_CONTEXT)
            values["secret_key_id"] = self.keyring.active_key_id
        exists = conn.execute(select(SERVICES.c.id).where(SERVICES.c.id == service.id)).first()
        if exists:
            conn.execute(update(SERVICES).where(SERVICES.c.id == service.id).values(**values))
        else:
            conn.execute(SERVICES.insert().values(id=service.id, created_at=now, **values))

    def get(self, conn: Connection, service_id: str) -> Service | None:
        row = conn.execute(select(SERVICES).where(SERVICES.c.id == service_id)).first()
        return None if row is None else _service(row)

    def all(self, conn: Connection, *, active_only: bool = False) -> list[Service]:
        stmt = select(SERVICES).order_by(SERVICES.c.name)
        if active_only:
            stmt = stmt.where(SERVICES.c.active.is_(True))
        return [_service(r) for r in conn.execute(stmt)]

    def secret(self, conn: Connection, service_id: str) -> str | None:
        token = conn.execute(
            select(SERVICES.c.secret_enc).where(SERVICES.c.id == service_id)
        ).scalar_one_or_none()
        if token is None:
            return None
        return self.keyring.decrypt_text(token, context=SECRET_CONTEXT)


def _service(row: Any) -> Service:
    return Service(
        id=row.id,
        name=row.name,
        code=row.code,
        offers=row.offers,
        channel=Channel(row.channel),
        endpoint=row.endpoint,
        fields=frozenset(ShareableField(f) for f in row.fields.split(",") if f),
        key_id=row.key_id,
        active=bool(row.active),
    )


# -- tasks --------------------------------------------------------------------------------------


def insert_task(
    conn: Connection,
    *,
    task_id: str,
    referral_id: str,
    service_id: str,
    status: TaskStatus,
    requested_by: str,
    now: datetime,
) -> None:
    conn.execute(
        TASKS.insert().values(
            id=task_id,
            referral_id=referral_id,
            service_id=service_id,
            status=status.value,
            requested_by=requested_by,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    add_event(conn, task_id, TaskMove(status), by=Mover.GATEWAY, now=now)


def get_task(conn: Connection, task_id: str, *, lock: bool = False) -> OnwardTask | None:
    stmt = select(TASKS).where(TASKS.c.id == task_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else _task(row)


def tasks_of(conn: Connection, referral_id: str) -> list[OnwardTask]:
    rows = conn.execute(
        select(TASKS).where(TASKS.c.referral_id == referral_id).order_by(TASKS.c.created_at)
    )
    return [_task(r) for r in rows]


def set_task_status(
    conn: Connection, task_id: str, move: TaskMove, *, by: Mover, now: datetime
) -> None:
    conn.execute(
        update(TASKS)
        .where(TASKS.c.id == task_id)
        .values(
            status=move.status.value,
            reason=move.reason,
            outcome=move.outcome,
            updated_at=now,
            version=TASKS.c.version + 1,
        )
    )
    add_event(conn, task_id, move, by=by, now=now)


def add_event(conn: Connection, task_id: str, move: TaskMove, *, by: Mover, now: datetime) -> None:
    conn.execute(
        EVENTS.insert().values(
            task_id=task_id,
            status=move.status.value,
            reason=move.reason,
            outcome=move.outcome,
            by=by.value,
            at=now,
        )
    )


def task_history(conn: Connection, task_id: str) -> list[TaskEvent]:
    rows = conn.execute(select(EVENTS).where(EVENTS.c.task_id == task_id).order_by(EVENTS.c.id))
    return [TaskEvent(TaskStatus(r.status), r.reason, r.outcome, Mover(r.by), r.at) for r in rows]


def _task(row: Any) -> OnwardTask:
    return OnwardTask(
        id=row.id,
        referral_id=row.referral_id,
        service_id=row.service_id,
        status=TaskStatus(row.status),
        reason=row.reason,
        outcome=row.outcome,
        requested_by=row.requested_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


# -- outbox -------------------------------------------------------------------------------------


def enqueue(conn: Connection, *, task_id: str, kind: OutboxKind, now: datetime) -> None:
    """A delivery to send, in the caller's transaction. Its idempotency key is the Task id
    and the kind: the same delivery always carries the same key."""
    conn.execute(
        OUTBOX.insert().values(
            task_id=task_id,
            kind=kind.value,
            idempotency_key=f"{task_id}:{kind.value}",
            state=OutboxState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def stop_pending(conn: Connection, task_ids: Sequence[str], *, kind: OutboxKind) -> int:
    """Stop deliveries of `kind` not yet sent (pending or dead) for these Tasks."""
    if not task_ids:
        return 0
    result = conn.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.task_id.in_(list(task_ids)),
            OUTBOX.c.kind == kind.value,
            OUTBOX.c.state.in_([OutboxState.PENDING.value, OutboxState.DEAD.value]),
        )
        .values(state=OutboxState.STOPPED.value, lease_until=None)
    )
    return int(result.rowcount or 0)


def delivered(conn: Connection, task_id: str, kind: OutboxKind) -> bool:
    """Was a delivery of `kind` for the Task sent, or may it still be in flight?"""
    row = conn.execute(
        select(OUTBOX.c.state, OUTBOX.c.attempts).where(
            OUTBOX.c.task_id == task_id, OUTBOX.c.kind == kind.value
        )
    ).first()
    return row is not None and (row.state == OutboxState.SENT.value or row.attempts > 0)


def claim_due(conn: Connection, *, now: datetime, lease: timedelta, limit: int) -> list[OutboxItem]:
    """Pending deliveries due at `now` whose lease (if any) ran out, leased to the caller."""
    due = and_(
        OUTBOX.c.state == OutboxState.PENDING.value,
        OUTBOX.c.next_attempt_at <= now,
        or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= now),
    )
    stmt = select(OUTBOX.c.id).where(due).order_by(OUTBOX.c.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = [r.id for r in conn.execute(stmt)]
    if not ids:
        return []
    conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(lease_until=now + lease))
    return items(conn, ids=ids)


def items(
    conn: Connection,
    *,
    ids: Sequence[int] | None = None,
    states: Sequence[OutboxState] | None = None,
    task_ids: Sequence[str] | None = None,
) -> list[OutboxItem]:
    stmt = select(OUTBOX, TASKS.c.referral_id, TASKS.c.service_id).join(
        TASKS, TASKS.c.id == OUTBOX.c.task_id
    )
    if ids is not None:
        stmt = stmt.where(OUTBOX.c.id.in_(list(ids)))
    if states is not None:
        stmt = stmt.where(OUTBOX.c.state.in_([s.value for s in states]))
    if task_ids is not None:
        stmt = stmt.where(OUTBOX.c.task_id.in_(list(task_ids)))
    return [
        OutboxItem(
            id=r.id,
            task_id=r.task_id,
            kind=OutboxKind(r.kind),
            idempotency_key=r.idempotency_key,
            state=OutboxState(r.state),
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            last_error=r.last_error,
            created_at=r.created_at,
            sent_at=r.sent_at,
            referral_id=r.referral_id,
            service_id=r.service_id,
        )
        for r in conn.execute(stmt.order_by(OUTBOX.c.id))
    ]


def mark_sent(conn: Connection, item_id: int, *, now: datetime) -> None:
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == item_id, OUTBOX.c.state == OutboxState.PENDING.value)
        .values(
            state=OutboxState.SENT.value,
            attempts=OUTBOX.c.attempts + 1,
            sent_at=now,
            lease_until=None,
            last_error=None,
        )
    )


def mark_failed(conn: Connection, item_id: int, *, error: str, retry_at: datetime | None) -> None:
    """One more failed attempt: try again at `retry_at`, or dead-letter when it is None."""
    values: dict[str, Any] = {
        "attempts": OUTBOX.c.attempts + 1,
        "lease_until": None,
        "last_error": error[:200],
    }
    if retry_at is None:
        values["state"] = OutboxState.DEAD.value
    else:
        values["next_attempt_at"] = retry_at
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == item_id, OUTBOX.c.state == OutboxState.PENDING.value)
        .values(**values)
    )


def mark_stopped(conn: Connection, item_id: int, *, why: str) -> None:
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == item_id, OUTBOX.c.state == OutboxState.PENDING.value)
        .values(state=OutboxState.STOPPED.value, lease_until=None, last_error=why[:200])
    )


def retry_dead(conn: Connection, item_ids: Sequence[int] | None, *, now: datetime) -> int:
    """Dead deliveries back to pending, due now, their attempts counted afresh."""
    stmt = update(OUTBOX).where(OUTBOX.c.state == OutboxState.DEAD.value)
    if item_ids is not None:
        stmt = stmt.where(OUTBOX.c.id.in_(list(item_ids)))
    result = conn.execute(
        stmt.values(state=OutboxState.PENDING.value, attempts=0, next_attempt_at=now)
    )
    return int(result.rowcount or 0)
