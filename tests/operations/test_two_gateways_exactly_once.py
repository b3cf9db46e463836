"""Two gateways (`serve`) on one PostgreSQL, both receiving an ED feed, one SIGKILLed
mid-stream: its senders reconnect to the other (as through a TCP load balancer) and resend
what was not acknowledged; what the dead one had acknowledged but not processed is processed
by the survivor's pipeline. Every message is stored once and processed exactly once, and
the referrals are those a clean replay of the same feed makes. (Each scheduled job running
once across two gateways, one dying mid-run: `test_jobs_across_instances.py`.)"""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import SyntheticEd
from referral_gateway.config import Settings
from referral_gateway.entrypoints.replay import replay_files
from referral_gateway.storage.database import make_engine
from tests.operations.gateways import serve
from tests.spine.harness import frame, msa
from tests.spine.test_crash_recovery import START, control_id, outcome
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SENDERS = 4  # connections: two to each gateway at first


def visit_number(message: str) -> str:
    pv1 = next(seg for seg in message.split("\r") if seg.startswith("PV1|"))
    fields = pv1.split("|")
    return fields[19] if len(fields) > 19 else ""


class Sender(threading.Thread):
    """One connection's messages, one at a time; anything not answered AA (a dead gateway,
    a cut connection) is sent again, to the other gateway once this one is gone."""

    def __init__(self, messages: list[str], ports: list[int], acked: list[str]) -> None:
        super().__init__(daemon=True)
        self.messages, self.ports, self.acked = messages, ports, acked
        self.failovers = 0

    def run(self) -> None:
        port = 0
        client: MllpClient | None = None
        for message in self.messages:
            while True:
                try:
                    if client is None:
                        client = MllpClient("127.0.0.1", self.ports[port], timeout=10)
                    code, echoed = msa(client.send(message))
                except (OSError, ConnectionError):
                    code, echoed = "", ""
                if code == "AA" and echoed == control_id(message):
                    self.acked.append(echoed)
                    break
                if client is not None:
                    client.close()
                    client = None
                port, self.failovers = 1, self.failovers + 1  # the balancer's other gateway
                time.sleep(0.05)
        if client is not None:
            client.close()


def test_two_gateways_receiving_one_killed_mid_stream_process_every_message_exactly_once(
    postgres_url, tmp_path
):
    messages = list(SyntheticEd(seed=7, start=START, assault_share=0.3).stream(400))
    keyring = tmp_path / "keyring.json"
    a = serve(tmp_path / "a", postgres_url, keyring_file=keyring)
    b = serve(tmp_path / "b", postgres_url, keyring_file=keyring)
    try:
        # a visit's messages stay on one connection, in order, as one ED system sends them
        shares: list[list[str]] = [[] for _ in range(SENDERS)]
        for m in messages:
            shares[zlib.crc32(visit_number(m).encode()) % SENDERS].append(m)
        acked: list[str] = []
        senders = [
            Sender(
                share, [a.mllp_port, b.mllp_port] if i < 2 else [b.mllp_port, b.mllp_port], acked
            )
            for i, share in enumerate(shares)
        ]
        for s in senders:
            s.start()
        wait_for(lambda: len(acked) >= len(messages) // 3, what="a third of the feed")
        os.kill(a.proc.pid, signal.SIGKILL)  # mid-stream: its senders are still sending
        a.proc.wait(10)
        for s in senders:
            s.join(120)
        assert not any(s.is_alive() for s in senders)
        assert len(acked) == len(messages), "every message acknowledged in the end"
        assert sum(s.failovers for s in senders) >= 2  # both of A's connections moved to B

        engine = make_engine(postgres_url)
        try:
            wait_for(lambda: pending(engine) == 0, timeout=60, what="the inbox processed")
            with engine.connect() as conn:
                rows = conn.execute(
                    text("select message_key, state, attempts from inbound_message")
                ).all()
        finally:
            engine.dispose()
    finally:
        b.stop()
        a.stop()

    assert sorted(r.message_key for r in rows) == sorted(control_id(m) for m in messages)
    assert {r.state for r in rows} <= {"processed", "filtered"}
    assert {r.attempts for r in rows} == {1}  # processed exactly once

    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    feed = clean_dir / "feed.hl7"
    feed.write_bytes(b"".join(frame(m)[1:-2] + b"\n" for m in messages))
    clean_url = f"sqlite:///{clean_dir / 'clean.db'}"
    replay_files(Settings(data_dir=clean_dir, database_url=clean_url), [feed], progress=False)
    referrals, _ = outcome(postgres_url, keyring)
    clean_referrals, _ = outcome(clean_url, clean_dir / "keyring.json")
    assert referrals == clean_referrals
    assert referrals  # the feed did contain candidates


def pending(engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("select count(*) from inbound_message where state = 'pending'")
            ).scalar_one()
        )
