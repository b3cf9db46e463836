"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache
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
    if rows:
        conn.execute(_add_counts_statement(conn.dialect.name, table, tuple(keys)), rows)


@lru_cache(maxsize=16)
def _add_counts_statement(dialect: str, table: Table, keys: tuple[str, ...]) -> Any:
    """Built once per table: building it cost more than running it."""
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return ins.on_conflict_do_update(
        index_elements=list(keys), set_={"n": table.c.n + ins.excluded.n}
    )
