"""`serve` runs the pipeline in a process of its own: what that process must do from the
outside: process what the listener stored, tell the live queue and come back if it dies
(that it dies with the gateway: tests/spine/test_mllp_process.py, for both of serve's
children)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from referral_gateway.domain.referral import ReferralUpdate
from referral_gateway.storage.views import feed_counts, referral_summaries
from tests.hl7.messages import adt as hl7_message
from tests.spine.harness import msa, sender_site_file, start_gateway
from tests.spine.test_mllp_end_to_end import ARRIVAL, a_visit
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gateway(tmp_path, database_url):
    running = start_gateway(tmp_path, database_url, pipeline_process=True)
    news: list[tuple[str, ReferralUpdate]] = []
    running.gateway.referral_listeners.append(
        lambda heard: news.append((heard.referral_id, heard.update))
    )
    running.news = news  # type: ignore[attr-defined]
    yield running
    running.stop()


def send_stabbing(gateway, visit: str, control_id: str) -> None:
    message = adt("A01", a_visit(complaint="stabbed", visit=visit), control_id, sent=ARRIVAL)
    with MllpClient("127.0.0.1", gateway.port) as client:
        assert msa(client.send(message)) == ("AA", control_id)


def test_a_candidate_made_in_the_pipeline_process_reaches_the_live_queue(gateway):
    send_stabbing(gateway, "V1", "CTRL-1")
    assert wait_until(lambda: len(gateway.news) == 1)
    [referral] = referral_summaries(gateway.gateway.engine)
    assert gateway.news == [(referral["id"], ReferralUpdate.NEW)]


def test_the_serve_side_of_the_gateway_builds_no_pipeline_of_its_own(gateway):
    assert gateway.gateway.pipeline is None
    with pytest.raises(RuntimeError, match="process of its own"):
        gateway.gateway.local_pipeline()


def test_an_application_ack_is_sent_once_the_pipeline_process_has_processed_it(
    tmp_path, database_url
):
    # enhanced mode: no accept ACK asked for (MSH-15 NE), an application ACK always (MSH-16
    # AL), which the listener can only send once the other process reports the message done;
    # the sender reads replies asynchronously, so it takes them on its own connection
    config = sender_site_file(tmp_path, application_acks="same_connection")
    gateway = start_gateway(tmp_path, database_url, pipeline_process=True, config_file=config)
    try:
        message = hl7_message("A01", accept_ack="NE", application_ack="AL", control_id="CTRL-ENH")
        with MllpClient("127.0.0.1", gateway.port) as client:
            assert msa(client.send(message)) == ("AA", "CTRL-ENH")
        [row] = feed_counts(gateway.gateway.engine)
        assert row["received"] == 1 and row["errored"] == 0
    finally:
        gateway.stop()


def test_a_killed_pipeline_process_is_replaced_and_nothing_waiting_is_lost(gateway):
    send_stabbing(gateway, "V1", "CTRL-1")
    assert wait_until(lambda: len(gateway.news) == 1)
    first = gateway.gateway.worker.pid
    os.kill(first, signal.SIGKILL)
    send_stabbing(gateway, "V2", "CTRL-2")  # stored while no pipeline runs
    assert wait_until(lambda: len(referral_summaries(gateway.gateway.engine)) == 2)
    assert gateway.gateway.worker.pid not in (None, first)
    assert wait_until(lambda: len(gateway.news) == 2)


def children_of(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_second_serve_on_the_same_data_directory_refuses_to_start_and_says_why(tmp_path):
    from bench.serve_process import free_port, start_serve

    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    first = start_serve(tmp_path, url)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "referral_gateway.entrypoints.cli", "serve"],
            env={
                **os.environ,
                "RG_DATA_DIR": str(tmp_path),
                "RG_DATABASE_URL": url,
                "RG_HTTP_PORT": str(free_port()),
                "RG_MLLP_PORT": str(free_port()),
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 2
        assert "another `referral-gateway serve` is running" in second.stderr
        assert first.proc.poll() is None  # the first one carries on
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.proc.wait(30)
