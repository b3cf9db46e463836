"""A write transaction that reads first and writes later, safely on SQLite and PostgreSQL.

SQLite in WAL mode lets a transaction read from a snapshot and fails at once ("database is
locked") when it then tries to write after another connection committed. A unit of work on
SQLite therefore starts with `BEGIN IMMEDIATE`: it takes the write lock first (waiting up to
the busy timeout), so whatever it reads stays true until it commits. On PostgreSQL it is an
ordinary transaction; code that needs serialising takes a row or advisory lock inside it.

Work that must happen only once the transaction is durable (advancing the audit anchor file)
is registered with `after_commit` and runs after the commit, never after a rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


@dataclass
class UnitOfWork:
    conn: Connection
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed."""
        self._after_commit.append(action)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[UnitOfWork]:
    """A transaction: committed when the block ends, rolled back if it raises."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
        uow = UnitOfWork(conn)
        try:
            yield uow
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    for action in uow._after_commit:
        try:
            action()
        except Exception as exc:  # the transaction is committed; report, do not undo
            log.error("after-commit action failed: %s", type(exc).__name__)
