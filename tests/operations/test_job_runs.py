"""`JobRuns` on PostgreSQL, in one process: a slot runs once, a held job gives way, old runs
are pruned; on SQLite the job just runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.job_runs import JobRuns, RunResult, interval_slot, lock_key

NOW = datetime(2026, 6, 1, 9, 0, 10, tzinfo=UTC)


@pytest.fixture
def pg(postgres_url):
    engine = make_engine(postgres_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_slot_that_ran_is_not_run_again_by_another_instance(pg):
    ran = []
    a = JobRuns(pg, holder="a:1", now=lambda: NOW)
    b = JobRuns(pg, holder="b:2", now=lambda: NOW)
    slot = interval_slot(NOW, 30)
    assert a.run_once("job", slot, lambda: ran.append("a")) is RunResult.RAN
    assert b.run_once("job", slot, lambda: ran.append("b")) is RunResult.DONE
    assert (
        b.run_once("job", interval_slot(NOW + timedelta(seconds=30), 30), lambda: ran.append("b"))
        is RunResult.RAN
    )
    assert ran == ["a", "b"]


@pytest.mark.postgres
def test_a_job_held_by_another_instance_gives_way(pg):
    other = pg.connect()
    other.execute(text("select pg_advisory_lock(:k)"), {"k": lock_key("job")})
    try:
        result = JobRuns(pg, now=lambda: NOW).run_once("job", "s", lambda: pytest.fail("ran"))
    finally:
        other.close()
    assert result is RunResult.BUSY


@pytest.mark.postgres
def test_a_failed_run_counts_as_its_slots_run_and_old_runs_are_pruned(pg):
    runs = JobRuns(pg, now=lambda: NOW)

    def boom() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        runs.run_once("job", "s", boom)
    assert runs.run_once("job", "s", lambda: None) is RunResult.DONE
    later = JobRuns(pg, now=lambda: NOW + timedelta(days=8))
    assert later.prune() == 1


def test_on_sqlite_the_job_just_runs(sqlite_url):
    engine = make_engine(sqlite_url)
    migrate(engine)
    ran = []
    runs = JobRuns(engine)
    assert runs.run_once("job", "s", lambda: ran.append(1)) is RunResult.RAN
    assert runs.run_once("job", "s", lambda: ran.append(2)) is RunResult.RAN
    assert ran == [1, 2]
    engine.dispose()
