"""Two gateways on one PostgreSQL: each scheduled job runs once per scheduled moment across
both, and a job whose gateway is SIGKILLed mid-run is taken over by the other."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from tests.operations.gateways import serve
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FAST_JOBS = {
    "escalation_interval_seconds": "1",
    "feed_silence_interval_seconds": "1",
    "job_takeover_seconds": "1",
}


def runs(engine, job: str | None = None) -> list:
    with engine.connect() as conn:
        rows = conn.execute(
            text("select job, slot, holder, outcome, finished_at from job_run order by id")
        ).all()
    return [r for r in rows if job is None or r.job == job]


def finished(rows) -> list:
    return [r for r in rows if r.outcome in ("ok", "failed")]


def test_each_scheduled_job_runs_once_per_moment_across_two_gateways_even_when_one_dies_mid_run(
    postgres_url, tmp_path
):
    keyring = tmp_path / "keyring.json"
    first = serve(tmp_path / "a", postgres_url, keyring_file=keyring, **FAST_JOBS)
    second = serve(tmp_path / "b", postgres_url, keyring_file=keyring, **FAST_JOBS)
    gateways = {first.proc.pid: first, second.proc.pid: second}
    engine = create_engine(postgres_url)
    try:
        # both fire every second on the same moments: each moment runs once, by either
        wait_for(lambda: len(finished(runs(engine, "escalate_untouched"))) >= 5, what="5 runs")

        # the escalation job blocks mid-run on a table the test holds, in one gateway
        blocker = engine.connect()
        blocker.execute(text("lock table referral in access exclusive mode"))
        stuck = wait_for(
            lambda: [
                r
                for r in runs(engine, "escalate_untouched")
                if r.outcome is None and r.finished_at is None
            ],
            what="a run in progress",
        )[0]
        victim = gateways[int(stuck.holder.rsplit(":", 1)[1])]
        survivor = next(g for g in gateways.values() if g is not victim)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        blocker.rollback()  # lets go of the table
        blocker.close()

        taken = wait_for(
            lambda: [
                r for r in finished(runs(engine, "escalate_untouched")) if r.slot == stuck.slot
            ],
            what="the stuck slot taken over",
        )
        assert taken[0].holder.endswith(f":{survivor.proc.pid}")
        abandoned = [r for r in runs(engine) if r.outcome == "abandoned"]
        assert [(r.job, r.slot, r.holder) for r in abandoned] == [
            ("escalate_untouched", stuck.slot, stuck.holder)
        ]
        # the survivor goes on alone
        before = len(finished(runs(engine, "escalate_untouched")))
        wait_for(
            lambda: len(finished(runs(engine, "escalate_untouched"))) >= before + 3,
            what="the survivor's runs",
        )
    finally:
        for g in gateways.values():
            g.stop()

    every = runs(engine)
    engine.dispose()
    done = Counter((r.job, r.slot) for r in finished(every))
    assert done, "no job ran"
    assert sum(1 for job, _slot in done if job == "feed_silence") >= 5
    assert [key for key, n in done.items() if n > 1] == []  # no moment ran twice
    catch_ups = [r for r in finished(every) if r.job == "reports.catch_up"]
    assert len(catch_ups) == 1  # the start-up catch-up of two gateways started together
