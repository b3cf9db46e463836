"""Scheduled jobs run once across instances.

On PostgreSQL each job has an advisory lock (`pg_try_advisory_lock`, session-level, on a
connection held for the run) and a row per run in `job_run`:

- a run takes the job's lock or gives way (another instance is running it now: "busy");
- holding the lock, it skips a slot that already has a finished run ("done"), so two
  instances firing at the same scheduled moment run the job once;
- an unfinished run found while holding the lock was left by an instance that died (the
  server lets go of a dead session's locks): it is marked "abandoned" and run again for
  its slot ("took_over").

On SQLite one instance is the rule (`serve` locks its data directory): the job just runs.
"""

from __future__ import annotations

import enum
import hashlib
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, and_, delete, insert, select, text, update
from sqlalchemy.engine import Engine

from referral_gateway.storage.operations_tables import JobRunRow

JOB_RUN: Table = JobRunRow.__table__  # type: ignore[attr-defined]


class RunResult(enum.StrEnum):
    RAN = "ran"
    TOOK_OVER = "took_over"  # ran a slot whose instance died mid-run
    DONE = "done"  # the slot already ran elsewhere
    BUSY = "busy"  # another instance holds the job now


def this_instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_key(job: str) -> int:
    """The job's advisory-lock key: a signed 64-bit number from its name."""
    return int.from_bytes(hashlib.sha256(f"rg-job:{job}".encode()).digest()[:8], "big", signed=True)


def interval_slot(now: datetime, seconds: int) -> str:
    """The scheduled moment an interval job's run belongs to: `now` floored to a multiple
    of `seconds` since the epoch (the scheduler fires every instance on those multiples)."""
    epoch = int(now.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobRuns:
    def __init__(
        self,
        engine: Engine,
        *,
        holder: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.holder = holder or this_instance()
        self.now = now
        self.shared = engine.dialect.name == "postgresql"

    def prune(self, keep: timedelta = timedelta(days=7)) -> int:
        """Forget finished runs older than `keep` (the table would grow by a row a run)."""
        if not self.shared:
            return 0
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(JOB_RUN).where(
                    JOB_RUN.c.outcome.is_not(None), JOB_RUN.c.started_at < self.now() - keep
                )
            )
        return int(gone.rowcount or 0)

    def run_once(self, job: str, slot: str | None, fn: Callable[[], object]) -> RunResult:
        """Run `fn` for `slot` unless another instance is running the job or has run that
        slot; first take over a run of the job left unfinished by a dead instance. With
        `slot` None only such a takeover is done (the sweep for rarely fired jobs)."""
        if not self.shared:
            if slot is None:
                return RunResult.DONE
            fn()
            return RunResult.RAN
        key = lock_key(job)
        with self.engine.connect() as lock:
            held = lock.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            lock.commit()  # the lock is the session's; no transaction stays open
            if not held:
                return RunResult.BUSY
            try:
                return self._run_locked(job, slot, fn)
            finally:
                lock.execute(text("select pg_advisory_unlock(:k)"), {"k": key})
                lock.commit()

    def _run_locked(self, job: str, slot: str | None, fn: Callable[[], object]) -> RunResult:
        result = RunResult.RAN
        with self.engine.begin() as conn:
            left = conn.execute(
                select(JOB_RUN.c.id, JOB_RUN.c.slot)
                .where(JOB_RUN.c.job == job, JOB_RUN.c.finished_at.is_(None))
                .where(JOB_RUN.c.outcome.is_(None))
                .order_by(JOB_RUN.c.id.desc())
                .limit(1)
            ).first()
            if left is not None:  # we hold the lock: whoever started it is gone
                conn.execute(
                    update(JOB_RUN).where(JOB_RUN.c.id == left.id).values(outcome="abandoned")
                )
                slot, result = left.slot, RunResult.TOOK_OVER
            elif (
                slot is None
                or conn.execute(
                    select(JOB_RUN.c.id).where(
                        and_(
                            JOB_RUN.c.job == job,
                            JOB_RUN.c.slot == slot,
                            JOB_RUN.c.outcome.in_(("ok", "failed")),
                        )
                    )
                ).first()
            ):
                return RunResult.DONE
            run_id = conn.execute(
                insert(JOB_RUN)
                .values(job=job, slot=slot, holder=self.holder, started_at=self.now())
                .returning(JOB_RUN.c.id)
            ).scalar_one()
        outcome = "failed"
        try:
            fn()
            outcome = "ok"
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    update(JOB_RUN)
                    .where(JOB_RUN.c.id == run_id)
                    .values(finished_at=self.now(), outcome=outcome)
                )
        return result
