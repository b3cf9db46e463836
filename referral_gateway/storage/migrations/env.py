"""Alembic environment: the gateway hands in an open connection (see storage.database)."""

from alembic import context
from sqlmodel import SQLModel

import referral_gateway.storage.tables  # noqa: F401  (registers the tables)

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
