"""The audit trail in the database (`audit_entry`), with its head anchored in a file.

Appending needs the previous entry's hash, so appends are serialised: on PostgreSQL by a
transaction-scoped advisory lock, on SQLite by the write lock a `unit_of_work` takes at its
start. `seq` is the primary key, so even an append that bypassed the lock could not fork the
chain: it would fail.

The anchor is a small JSON file (by default `<data dir>/audit-head.json`) holding the last
seq and hash, advanced after each commit that appended. The database's writers cannot change
it, so cutting entries off the end, or rewriting the chain from some entry on, shows up in
`verify` as a mismatch with the anchor. A crash between commit and anchor update leaves the
anchor behind the chain, which weakens the check for the newest entries but never raises a
false alarm; the next append brings it up to date.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from consent.audit import (
    AuditAction,
    AuditEntry,
    ChainCheck,
    ChainHead,
    chain_entry,
    verify_chain,
)
from referral_gateway.storage.consent_tables import AuditEntryRow
from referral_gateway.storage.errors import AuditAnchorError
from referral_gateway.storage.unit_of_work import UnitOfWork

AUDIT: Table = AuditEntryRow.__table__  # type: ignore[attr-defined]

# pg_advisory_xact_lock key for audit appends (any fixed 64-bit number; "audit" in ASCII)
_PG_LOCK_KEY = 0x6175646974
ANCHOR_FILE_NAME = "audit-head.json"


class AuditAnchor:
    """The chain head kept outside the database, only ever moved forwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> ChainHead | None:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AuditAnchorError(
                f"The audit anchor {self.path} is unreadable ({type(exc).__name__}). Restore "
                "it from your backup, or move it aside to verify without it."
            ) from None
        try:
            return ChainHead(int(raw["seq"]), str(raw["hash"]))
        except (KeyError, TypeError, ValueError):
            raise AuditAnchorError(f"The audit anchor {self.path} is damaged.") from None

    def advance(self, head: ChainHead) -> None:
        """Record `head` unless the anchor already holds a later entry (appends from several
        threads or processes may commit their anchors out of order)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock, open(lock_path, "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                current = self.read()
            except AuditAnchorError:
                current = None  # a damaged anchor is replaced by the real head
            if current is not None and current.seq >= head.seq:
                return
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"seq": head.seq, "hash": head.hash}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


class AuditStore:
    def __init__(self, anchor: AuditAnchor | None = None) -> None:
        self.anchor = anchor

    # -- writing -------------------------------------------------------------------------
    def append(
        self,
        uow: UnitOfWork,
        *,
        at: datetime,
        actor: str,
        action: AuditAction,
        subject: str,
        why: str,
    ) -> AuditEntry:
        """Add an entry inside the caller's unit of work. Ids and fixed words only: never a
        name, NHS number or anything a user typed (see `consent.audit`)."""
        conn = uow.conn
        if uow.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        prev = self._last(conn)
        entry = chain_entry(prev, at=at, actor=actor, action=action, subject=subject, why=why)
        conn.execute(
            insert(AUDIT).values(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action.value,
                subject=entry.subject,
                why=entry.why,
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        if self.anchor is not None:
            anchor, head = self.anchor, ChainHead(entry.seq, entry.hash)
            uow.after_commit(lambda: anchor.advance(head))
        return entry

    # -- reading -------------------------------------------------------------------------
    def head(self, conn: Connection) -> ChainHead | None:
        last = self._last(conn)
        return ChainHead(last.seq, last.hash) if last else None

    def entries(
        self,
        conn: Connection,
        *,
        subject: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        stmt = select(AUDIT).where(AUDIT.c.seq > after_seq).order_by(AUDIT.c.seq)
        if subject is not None:
            stmt = stmt.where(AUDIT.c.subject == subject)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_entry(r) for r in conn.execute(stmt)]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(AUDIT)).scalar_one())

    def verify(self, engine: Engine, *, page: int = 1000, use_anchor: bool = True) -> ChainCheck:
        """Check the whole chain, page by page, against the anchor when there is one."""
        head = self.anchor.read() if (use_anchor and self.anchor is not None) else None
        return verify_chain(self._stream(engine, page), head=head)

    def _stream(self, engine: Engine, page: int) -> Iterator[AuditEntry]:
        after = 0
        while True:
            with engine.connect() as conn:
                batch = self.entries(conn, after_seq=after, limit=page)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].seq

    def _last(self, conn: Connection) -> AuditEntry | None:
        row = conn.execute(select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).first()
        return _entry(row) if row is not None else None


def _entry(row: object) -> AuditEntry:
    r = row._mapping  # type: ignore[attr-defined]
    try:
        action = AuditAction(r["action"])
    except ValueError:  # edited to a word we never write: keep it, so its hash fails
        action = cast(AuditAction, r["action"])
    return AuditEntry(
        seq=r["seq"],
        at=r["at"],
        actor=r["actor"],
        action=action,
        subject=r["subject"],
        why=r["why"],
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


def anchor_for(data_dir: Path) -> AuditAnchor:
    return AuditAnchor(data_dir / ANCHOR_FILE_NAME)
