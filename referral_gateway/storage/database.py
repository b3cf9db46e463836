"""Engines and schema migrations."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).with_name("migrations")


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


_GATES: dict[str, threading.Lock] = {}
_GATES_LOCK = threading.Lock()


def write_gate(engine: Engine) -> AbstractContextManager[Any]:
    """Taken around the busiest writers' transactions (intake, pipeline, FHIR writer).

    SQLite allows one writer at a time, and a connection that finds the database locked
    sleeps in growing steps (up to 100 ms) before it looks again, so an acknowledgement
    could wait long after the lock was free. Queuing on a lock in this process instead
    wakes the next writer the moment the last one commits. PostgreSQL locks rows, not the
    database: there the gate is open."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url.database)
    with _GATES_LOCK:
        gate = _GATES.setdefault(key, threading.Lock())
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


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest version. Migrations only add or transform: an upgrade
    never drops data."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def schema_is_current(engine: Engine) -> bool:
    heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads
