"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignoring_duplicates(conn: Connection, table: Table, index_elements: list[str]) -> Any:
    ins = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    return ins.on_conflict_do_nothing(index_elements=index_elements)


def add_counts(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, keys: list[str]
) -> None:
    """Upsert rows adding their `n` to the existing counts."""
    if not rows:
        return
    ins = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    stmt = ins.on_conflict_do_update(index_elements=keys, set_={"n": table.c.n + ins.excluded.n})
    conn.execute(stmt, rows)
