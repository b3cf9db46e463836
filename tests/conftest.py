"""Fixtures shared by every test: key rings, databases (SQLite and the real PostgreSQL that
the test command starts), clocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from consent.keyring import KeyRing
from referral_gateway.storage.database import make_engine, migrate
from tests.leakcheck import LeakCheck

# Property tests (hostile input, disclosure) run a bounded, repeatable number of examples in
# the suite; RG_HYPOTHESIS_PROFILE=explore searches longer with fresh randomness.
settings.register_profile(
    "suite",
    max_examples=60,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=2_000, deadline=None)
settings.load_profile(os.environ.get("RG_HYPOTHESIS_PROFILE", "suite"))


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("leakcheck"):
        check = LeakCheck()
        check.install()
        config.pluginmanager.register(check, "leakcheck")


@pytest.fixture(autouse=True)
def no_identifier_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test if a synthetic identifier reached a log record, a URL or an error
    response while it ran (tests/leakcheck.py)."""
    yield
    check: LeakCheck | None = request.config.pluginmanager.get_plugin("leakcheck")
    leaks = check.take(request.node.nodeid) if check is not None else []
    if check is not None and not check.still_listening():
        pytest.fail(
            "this test took the leak check's log handler away (logging reconfigured): "
            "configure logging without removing handlers it did not add",
            pytrace=False,
        )
    if leaks:
        shown = "\n".join(str(leak) for leak in leaks[:10])
        pytest.fail(f"synthetic identifiers leaked ({len(leaks)}):\n{shown}", pytrace=False)


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def _postgres_admin_url() -> str | None:
    url = os.environ.get("RG_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI"):
        pytest.fail("RG_TEST_POSTGRES_URL is not set: the test command starts PostgreSQL")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = _postgres_admin_url()
    if not admin:
        pytest.skip("no PostgreSQL (run the suite with deploy/test.sh)")
    name = "rg_test_" + uuid.uuid4().hex[:10]
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _drop_database(engine, name)
        engine.dispose()


def _drop_database(engine, name: str) -> None:
    """Drop a test database, ending our own leftover connections first (autovacuum workers
    are not ours to end: retry until they are gone)."""
    import time

    for attempt in range(20):
        try:
            with engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND usename = current_user "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except Exception:
            if attempt == 19:
                raise
            time.sleep(0.25)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate(eng)
    yield eng
    eng.dispose()


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 14, 22, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()
