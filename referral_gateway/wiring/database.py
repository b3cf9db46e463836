"""The database, and the key ring, for the commands that run no gateway (users, tokens, keys,
audit, reports): opened from the settings and migrated. `build_gateway` opens its own (three
engines, each tuned for its writer)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from referral_gateway.config import Settings
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.keystore import WatchedKeyRing, migration_keyring, open_keyring


def open_database(settings: Settings) -> Engine:
    """The settings' database, migrated (the data directory made first, for SQLite), with the
    key ring's file, when it can be read, for migrations that encrypt existing rows."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine, keyring=migration_keyring(settings.resolved_keyring_file))
    except Exception:
        engine.dispose()
        raise
    return engine


def open_database_and_keyring(settings: Settings) -> tuple[Engine, WatchedKeyRing]:
    """The database and the existing key ring (never created here; a wrong ring fails on the
    canary with a KeyRingError saying what to do)."""
    engine = open_database(settings)
    try:
        keyring = open_keyring(
            engine, settings.resolved_keyring_file, create=False, now=datetime.now(UTC)
        )
    except Exception:
        engine.dispose()
        raise
    return engine, keyring
