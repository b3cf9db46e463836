from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import referral_gateway.storage.tables  # noqa: F401
from referral_gateway.storage.database import make_engine, migrate, schema_is_current


def test_migrations_build_exactly_the_schema_the_models_describe(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_migrating_twice_changes_nothing_and_leaves_the_schema_current(sqlite_url):
    engine = make_engine(sqlite_url)
    migrate(engine)
    migrate(engine)
    assert schema_is_current(engine)
