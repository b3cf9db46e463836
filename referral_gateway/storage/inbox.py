"""The durable inbox: raw messages committed before they are acknowledged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from consent.keyring import KeyRing
from referral_gateway.storage.database import write_gate
from referral_gateway.storage.dialect import add_counts, insert_ignoring_duplicates
from referral_gateway.storage.tables import FeedCount, InboundMessage

PAYLOAD_CONTEXT = "inbound_message.payload"
REFETCHED_STAGE = "focus"  # error stage of what is fetched again, not processed again

INBOX: Table = InboundMessage.__table__  # type: ignore[attr-defined]
COUNTS: Table = FeedCount.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Arrival:
    """A message as it came in, before storage."""

    channel: str
    sender: str
    message_key: str
    message_type: str
    site: str
    payload: bytes
    received_at: datetime
    state: str = "pending"  # "error" for what could not even be read; "filtered" for what
    # needs no processing of its own (a FHIR resource evaluated with its Encounter);
    # "quarantined" for what came from a source its site does not list (held, not processed,
    # until an administrator releases it)
    error_stage: str | None = None
    error_detail: str | None = None

    def __repr__(self) -> str:  # the payload carries identifiable data
        return f"Arrival({self.channel}, {self.sender!r}, {self.message_key!r}, <payload>)"


@dataclass(frozen=True)
class Stored:
    message_id: int
    duplicate: bool


@dataclass(frozen=True)
class PendingMessage:
    id: int
    channel: str
    sender: str
    site: str
    message_type: str
    payload: bytes
    received_at: datetime

    def __repr__(self) -> str:  # the payload carries identifiable data
        return f"PendingMessage(id={self.id}, {self.channel}, {self.message_type!r}, <payload>)"


class InboxStore:
    def __init__(self, engine: Engine, keyring: KeyRing) -> None:
        self.engine = engine
        self.keyring = keyring

    def store_batch(self, arrivals: Sequence[Arrival]) -> list[Stored]:
        """Commit a group of arrivals in one transaction (see `store_arrivals`); their
        payloads are encrypted before the write gate is taken."""
        rows = [inbox_row(a, self.keyring) for a in arrivals]
        with write_gate(self.engine), self.engine.begin() as conn:
            return store_arrivals(conn, arrivals, rows)

    def fetch_pending(self, limit: int) -> list[PendingMessage]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    INBOX.c.id,
                    INBOX.c.channel,
                    INBOX.c.sender,
                    INBOX.c.site,
                    INBOX.c.message_type,
                    INBOX.c.payload_enc,
                    INBOX.c.received_at,
                )
                .where(INBOX.c.state == "pending")
                .order_by(INBOX.c.id)
                .limit(limit)
            ).all()
        return [
            PendingMessage(
                id=r.id,
                channel=r.channel,
                sender=r.sender,
                site=r.site,
                message_type=r.message_type,
                payload=self.keyring.decrypt(r.payload_enc, context=PAYLOAD_CONTEXT),
                received_at=r.received_at,
            )
            for r in rows
        ]

    def state_of(self, message_id: int) -> str | None:
        with self.engine.connect() as conn:
            state = conn.execute(select(INBOX.c.state).where(INBOX.c.id == message_id)).scalar()
        return None if state is None else str(state)

    def requeue_errors(self, *, ids: Sequence[int] | None = None) -> int:
        """Put errored messages back in the queue. Returns how many. A notified FHIR
        resource its source did not serve (stage "focus") is not the pipeline's to redo:
        its fetches start again instead (storage.focus_retries)."""
        stmt = update(INBOX).where(INBOX.c.state == "error", INBOX.c.payload_enc.is_not(None))
        if ids:
            stmt = stmt.where(INBOX.c.id.in_(list(ids)))
        with self.engine.begin() as conn:
            n = conn.execute(
                stmt.where(INBOX.c.error_stage.is_distinct_from(REFETCHED_STAGE)).values(
                    state="pending", error_stage=None, error_detail=None
                )
            ).rowcount
            m = conn.execute(
                stmt.where(INBOX.c.error_stage == REFETCHED_STAGE).values(attempts=0)
            ).rowcount
        return int(n or 0) + int(m or 0)

    def release_quarantined(self, *, ids: Sequence[int] | None = None) -> int:
        """Let messages held in quarantine (an unknown source for a known facility) be
        processed: back in the queue. `ids` None releases them all. Returns how many."""
        stmt = update(INBOX).where(INBOX.c.state == "quarantined")
        if ids is not None:
            stmt = stmt.where(INBOX.c.id.in_(list(ids)))
        with write_gate(self.engine), self.engine.begin() as conn:
            n = conn.execute(stmt.values(state="pending", error_detail=None)).rowcount
        return int(n or 0)


MessageCounts = Counter[tuple[str, str, date, str]]
"""(channel, sender, day, metric) -> how many: received, duplicate, filtered, errored, ..."""


def count_messages(conn: Connection, counts: MessageCounts) -> None:
    """Add to the per-sender, per-day message counts, within `conn`'s transaction."""
    add_counts(
        conn,
        COUNTS,
        [
            {"channel": c, "sender": s, "day": d, "metric": m, "n": n}
            for (c, s, d, m), n in counts.items()
        ],
        keys=["channel", "sender", "day", "metric"],
    )


_CLAIM = (
    update(INBOX)
    .where(INBOX.c.id.in_(bindparam("ids", expanding=True)), INBOX.c.state == "pending")
    .values(attempts=INBOX.c.attempts + 1)
    .returning(INBOX.c.id)
)
_MARK = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("_id"))
    .values(
        state=bindparam("state"),
        outcome=bindparam("outcome"),
        error_stage=bindparam("error_stage"),
        error_detail=bindparam("error_detail"),
        processed_at=bindparam("processed_at"),
    )
)

MessageMark = dict[str, Any]
"""What processing a message ended in, for `mark_messages` (made by `message_mark`)."""


def claim_messages(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Claim pending messages for processing within `conn`'s transaction (counting the
    attempt). Returns the ids claimed: a message another worker finished meanwhile is not
    pending any more, so it is left out and not done twice."""
    return set(conn.execute(_CLAIM, {"ids": list(ids)}).scalars())


def message_mark(
    message_id: int,
    state: str,
    outcome: str | None,
    stage: str | None,
    detail: str | None,
    now: datetime,
) -> MessageMark:
    """state: processed | filtered | error; `detail` (an error's) is cut to 1,000 characters."""
    return {
        "_id": message_id,
        "state": state,
        "outcome": outcome,
        "error_stage": stage,
        "error_detail": detail[:1000] if detail else None,
        "processed_at": now,
    }


def mark_messages(conn: Connection, marks: Sequence[MessageMark]) -> None:
    """Record what processing each message ended in, within `conn`'s transaction."""
    if marks:
        conn.execute(_MARK, list(marks))


def inbox_row(a: Arrival, keyring: KeyRing) -> dict[str, Any]:
    """An arrival as an inbox row, its payload encrypted."""
    return {
        "channel": a.channel,
        "sender": a.sender,
        "message_key": a.message_key,
        "message_type": a.message_type,
        "site": a.site,
        "received_at": a.received_at,
        "payload_enc": keyring.encrypt(a.payload, context=PAYLOAD_CONTEXT),
        "key_id": keyring.active_key_id,
        "state": a.state,
        "outcome": "filtered" if a.state == "filtered" else None,
        "processed_at": a.received_at if a.state == "filtered" else None,
        "error_stage": a.error_stage,
        "error_detail": a.error_detail,
        "attempts": 0,
    }


def store_arrivals(
    conn: Connection, arrivals: Sequence[Arrival], rows: Sequence[dict[str, Any]]
) -> list[Stored]:
    """Insert arrivals (`rows`: their `inbox_row`s) into the inbox within `conn`'s
    transaction, counting them per sender and day. A repeat of (channel, sender,
    message_key) is not stored again: it comes back as a duplicate of the first."""
    results: list[Stored] = []
    counts: MessageCounts = Counter()
    stmt = insert_ignoring_duplicates(conn, INBOX, ["channel", "sender", "message_key"]).returning(
        INBOX.c.id
    )
    for a, values in zip(arrivals, rows, strict=True):
        row = conn.execute(stmt, values).first()
        day = a.received_at.date()
        if row is not None:
            results.append(Stored(row[0], duplicate=False))
            counts[(a.channel, a.sender, day, "received")] += 1
            if a.state == "error":
                counts[(a.channel, a.sender, day, "errored")] += 1
        else:
            existing = conn.execute(
                select(INBOX.c.id).where(
                    INBOX.c.channel == a.channel,
                    INBOX.c.sender == a.sender,
                    INBOX.c.message_key == a.message_key,
                )
            ).scalar_one()
            results.append(Stored(existing, duplicate=True))
            counts[(a.channel, a.sender, day, "duplicate")] += 1
    count_messages(conn, counts)
    return results
