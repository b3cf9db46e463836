"""Engines and schema migrations."""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool

from consent.keyring import KeyRing

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key around schema upgrades (any fixed 64-bit number; "migrate" in ASCII)
_PG_MIGRATION_LOCK_KEY = 0x6D696772617465


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_checkpoints: bool = True,
    **kwargs: Any,
) -> Engine:
    """An engine for SQLite (WAL, busy timeout, foreign keys) or PostgreSQL.

    `sqlite_checkpoints=False` leaves WAL checkpoints to other connections (the pipeline's),
    so that the connection acknowledging messages never pays for one."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if kwargs.pop("null_pool", False) else None,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={_sync_mode(sqlite_synchronous)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if not sqlite_checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=10, **kwargs)


def make_derived_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for work that can always be recomputed from durable data: the pipeline's
    effects. Its commits skip the flush to disk (SQLite synchronous=NORMAL in WAL mode,
    PostgreSQL synchronous_commit=off). After a power cut the newest of them may be lost,
    whole and with their "processed" marks, so those messages are simply processed again;
    a process crash loses nothing. The inbox itself is always written durably."""
    if url.startswith("sqlite"):
        return make_engine(url, sqlite_synchronous="NORMAL", **kwargs)
    engine = make_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _async_commit(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET synchronous_commit TO off")
        cur.close()
        dbapi_conn.commit()

    return engine


class WriteGate:
    """One writer at a time for one SQLite file, across threads and processes.

    A lock in this process queues its threads; an exclusive `flock` on a file beside the
    database (`<db>-gate`) queues the processes (the serve process and its pipeline
    process, or a `replay` running beside `serve`). Both wake the next writer the moment
    the last one lets go. The lock file holds nothing and may be deleted when no gateway
    runs."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> WriteGate:
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _file(self) -> int:
        # a forked child shares the parent's open file, and so its lock: open its own
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


_GATES: dict[str, WriteGate] = {}
_GATES_LOCK = threading.Lock()


def write_gate(engine: Engine) -> AbstractContextManager[Any]:
    """Taken around the busiest writers' transactions (intake, pipeline, FHIR writer).

    SQLite allows one writer at a time, and a connection that finds the database locked
    sleeps in growing steps (up to 100 ms) before it looks again, so an acknowledgement
    could wait long after the lock was free. Queuing on a `WriteGate` instead wakes the
    next writer the moment the last one commits. PostgreSQL locks rows, not the database,
    and an in-memory SQLite database has one process: there the gate is open."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    database = engine.url.database
    if not database or database == ":memory:":
        return nullcontext()
    gate = _GATES.get(database)
    if gate is None:
        path = Path(database).resolve()
        with _GATES_LOCK:
            gate = _GATES.setdefault(database, WriteGate(path.with_name(path.name + "-gate")))
    return gate


def _sync_mode(value: str) -> str:
    mode = value.upper()
    if mode not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError("sqlite synchronous must be OFF, NORMAL, FULL or EXTRA")
    return mode


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, *, keyring: KeyRing | None = None) -> None:
    """Bring the schema to the newest version. Migrations only add or transform: an upgrade
    never drops data. Steps that encrypt existing rows use `keyring`; without it (or with
    another ring) they stop with a `KeyRingError` saying what to do, before they change
    anything, if there are rows to encrypt.

    On PostgreSQL the upgrade holds an advisory lock for its transaction: instances starting
    at once on one database migrate one after another, and the later ones, reading the
    version only once they hold the lock, find nothing left to do. (SQLite is one instance.)"""
    cfg = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        cfg.attributes["keyring"] = keyring
        command.upgrade(cfg, "heads")


def schema_is_current(engine: Engine) -> bool:
    heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads


def storage_unavailable(exc: BaseException) -> bool:
    """The database could not do the work (disk full, connection lost, server stopped,
    locked), as opposed to something about the data itself. The pipeline leaves its batch
    pending on such a failure (never blaming a message, which would wait in the error store
    until someone reprocessed it); the FHIR routes answer 503, as for a refused write."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
