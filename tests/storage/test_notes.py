"""Notes between instances on one PostgreSQL (`storage.notes.NoteChannel`): heard by the
others and not by the sender, and heard again after the listening connection is cut."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from referral_gateway.storage.database import make_engine
from referral_gateway.storage.notes import NoteChannel

pytestmark = pytest.mark.postgres


def eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def two_instances(postgres_url):
    engines = [make_engine(postgres_url), make_engine(postgres_url)]
    channels = [NoteChannel(e, "rg_test_notes", max_backoff_s=0.5) for e in engines]
    yield channels
    for channel, engine in zip(channels, engines, strict=True):
        channel.stop()
        engine.dispose()


def test_a_note_is_heard_by_the_other_instance_and_not_by_its_sender(two_instances):
    a, b = two_instances
    heard_a: list[str] = []
    heard_b: list[str] = []
    a.listen(heard_a.append)
    b.listen(heard_b.append)
    assert eventually(lambda: a.listening.is_set() and b.listening.is_set())
    a.send('["new", "r-1", "RXX01", ""]')
    assert eventually(lambda: heard_b == ['["new", "r-1", "RXX01", ""]'])
    time.sleep(0.5)
    assert heard_a == []


def test_the_listener_hears_again_after_its_connection_is_cut(two_instances, postgres_url):
    a, b = two_instances
    heard: list[str] = []
    b.listen(heard.append)
    assert eventually(b.listening.is_set)
    admin = make_engine(postgres_url)
    try:
        with admin.begin() as conn:
            cut = conn.execute(
                text(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where query like 'LISTEN rg_test_notes%' and pid <> pg_backend_pid()"
                )
            ).scalar()
        assert cut == 1
        assert eventually(lambda: not b.listening.is_set(), timeout=5)
        assert eventually(b.listening.is_set)
        a.send("after the cut")
        assert eventually(lambda: heard == ["after the cut"])
    finally:
        admin.dispose()


def test_a_note_that_cannot_be_sent_is_dropped_without_raising(caplog):
    nowhere = make_engine("postgresql+psycopg://rg:rg@127.0.0.1:1/rg")  # nothing listens there
    channel = NoteChannel(nowhere, "rg_test_notes")
    try:
        channel.send("lost")  # returns at once; the pages catch up by themselves
        channel.stop()  # sends (tries to) what is queued
    finally:
        nowhere.dispose()
    assert "1 note(s) to the other instances not sent: OperationalError" in caplog.text


def test_sending_never_waits_for_the_database(postgres_url):
    from sqlalchemy import create_engine

    busy = create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=3)
    channel = NoteChannel(busy, "rg_test_notes")
    held = busy.connect()  # the engine's only connection: a send must wait for it
    try:
        t0 = time.perf_counter()
        channel.send("queued")
        assert time.perf_counter() - t0 < 0.5
    finally:
        held.close()
        channel.stop()
        busy.dispose()
