"""The short form of `bench/faults.py`: a few seconds of a mixed MLLP and FHIR stream into a
real `serve` process per fault (SIGKILL, PostgreSQL stopped and started, a full disk, cut
connections). Whatever happens, nothing acknowledged is lost, nothing is processed twice,
nothing is acknowledged while the database is down, and every reply answers the message just
sent. No timing is asserted."""

from __future__ import annotations

import os

import pytest

from bench import private_postgres
from bench.faults import Outcome, run_scenario

pytestmark = pytest.mark.slow

SECONDS, RATE = 5.0, 60.0


def holds(outcome: Outcome) -> None:
    print("\n".join(outcome.lines()))
    assert outcome.faults >= 1, "the fault must have happened under the stream"
    assert outcome.unsettled == 0 and outcome.rejected == 0
    assert outcome.acknowledged == outcome.messages
    assert outcome.lost == 0
    assert outcome.processed_twice == 0
    assert outcome.acked_while_down == 0
    assert "500" not in outcome.refused_answers
    assert outcome.wrong_control_id == 0
    assert outcome.errors_in_store == {}


def test_nothing_acknowledged_is_lost_or_processed_twice_when_serve_is_sigkilled(tmp_path):
    holds(run_scenario("sigkill", tmp_path, seconds=SECONDS, rate=RATE))


def test_while_postgres_is_down_messages_get_ae_or_503_and_none_is_lost(tmp_path):
    if not private_postgres.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15's initdb is missing: the test command installs it")
        pytest.skip("no PostgreSQL 15 binaries")
    outcome = run_scenario("postgres", tmp_path, seconds=SECONDS, rate=RATE)
    holds(outcome)
    assert outcome.refused_while_down >= 1, "messages must have been sent while it was down"


@pytest.mark.parametrize("mount", [True, False], ids=["tmpfs", "rlimit-fsize"])
def test_a_full_disk_loses_nothing_acknowledged(tmp_path, mount):
    holds(run_scenario("disk-full", tmp_path, seconds=SECONDS, rate=RATE, mount=mount))


def test_connections_cut_mid_frame_or_before_the_ack_lose_nothing_and_duplicate_nothing(
    tmp_path,
):
    holds(run_scenario("cut", tmp_path, seconds=SECONDS, rate=RATE))
