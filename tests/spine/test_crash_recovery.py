"""Kill the gateway with SIGKILL mid-stream, restart it, resend what was not acknowledged:
every acknowledged message is stored and processed exactly once, and the outcome is the
same as a run that never crashed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import SyntheticEd
from bench.serve_process import free_port, start_serve
from consent.keyring import KeyRing
from referral_gateway.config import Settings
from referral_gateway.entrypoints.replay import replay_files
from referral_gateway.storage.attendances import IDENTITY_CONTEXT
from referral_gateway.storage.database import make_engine
from referral_gateway.wiring.gateway import build_gateway
from tests.spine.harness import frame, msa

pytestmark = pytest.mark.slow

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def start_server(data_dir: Path, database_url: str, mllp_port: int) -> subprocess.Popen[bytes]:
    return start_serve(
        data_dir, database_url, mllp_port=mllp_port, log_file=data_dir.parent / "serve.log"
    ).proc


def control_id(message: str) -> str:
    return message.split("\r", 1)[0].split("|")[9]


def outcome(database_url: str, ring: Path) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """(visit number, referral status, attendance status) of every referral, the visit
    number read from the encrypted identity with the gateway's key ring (the stored visit
    key is a blind index, different under each ring); and the inbox's states."""
    keyring = KeyRing.load(ring)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        referrals = sorted(
            (
                json.loads(keyring.decrypt_text(r.identity_enc, context=IDENTITY_CONTEXT))[
                    "visit_number"
                ],
                r.status,
                r.att,
            )
            for r in conn.execute(
                text(
                    "select a.identity_enc, r.status, a.status as att from referral r "
                    "join attendance a on a.id = r.attendance_id"
                )
            )
        )
        states = dict(
            conn.execute(text("select state, count(*) from inbound_message group by state")).all()
        )
    engine.dispose()
    return referrals, states


def test_acknowledged_messages_survive_sigkill_and_are_processed_exactly_once(
    tmp_path, database_url
):
    messages = list(SyntheticEd(seed=42, start=START, assault_share=0.3).stream(120))
    port = free_port()
    server = start_server(tmp_path / "data", database_url, port)
    acked: list[str] = []
    kill_after = len(messages) // 3
    killer: threading.Thread | None = None
    client = MllpClient("127.0.0.1", port)
    for message in messages:
        try:
            code, echoed = msa(client.send(message))
        except OSError:
            break  # the server is gone: everything from here on was not acknowledged
        assert code == "AA"
        acked.append(echoed)
        if len(acked) == kill_after:  # kill while messages are still in flight
            killer = threading.Thread(
                target=lambda: (time.sleep(0.05), os.kill(server.pid, signal.SIGKILL))
            )
            killer.start()
    client.close()
    assert killer is not None
    killer.join()
    server.wait(10)
    assert kill_after <= len(acked) < len(messages), "the kill must land mid-stream"

    server = start_server(tmp_path / "data", database_url, port)
    try:
        with MllpClient("127.0.0.1", port) as client:
            for message in messages:
                if control_id(message) not in acked:
                    assert msa(client.send(message)) == ("AA", control_id(message))
        engine = make_engine(database_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if not conn.execute(
                    text("select count(*) from inbound_message where state = 'pending'")
                ).scalar():
                    break
            time.sleep(0.1)
        with engine.connect() as conn:
            rows = conn.execute(
                text("select message_key, state, attempts from inbound_message")
            ).all()
        engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)

    by_key = {r.message_key: r for r in rows}
    assert len(rows) == len(messages) == len(by_key)  # every message stored, once
    assert {r.state for r in rows} <= {"processed", "filtered"}
    assert {r.attempts for r in rows} == {1}  # processed exactly once

    clean_dir = tmp_path / "clean"
    feed = clean_dir / "feed.hl7"
    clean_dir.mkdir()
    feed.write_bytes(b"".join(frame(m)[1:-2] + b"\n" for m in messages))
    clean_url = f"sqlite:///{clean_dir / 'clean.db'}"
    replay_files(Settings(data_dir=clean_dir, database_url=clean_url), [feed], progress=False)
    crashed_referrals, _ = outcome(database_url, tmp_path / "data" / "keyring.json")
    clean_referrals, _ = outcome(clean_url, clean_dir / "keyring.json")
    assert crashed_referrals == clean_referrals
    assert crashed_referrals  # the feed did contain candidates


def test_a_gateway_restarted_with_a_pending_inbox_finishes_the_work(tmp_path, database_url):
    """Messages stored but not yet processed when the process died are processed on restart."""
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    gateway = build_gateway(settings)
    gateway.intake.start()
    from adapters.hl7.channel import Hl7Intake

    intake = Hl7Intake(gateway.intake, gateway.clock)
    messages = list(SyntheticEd(seed=3, start=START).stream(10))
    for m in messages:
        for item in intake.receive(m.encode()):
            gateway.intake.store(item.arrival)
    gateway.intake.stop()
    gateway.engine.dispose()  # "crash" before the pipeline ran

    restarted = build_gateway(settings).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, states = outcome(database_url, tmp_path / "keyring.json")
            if "pending" not in states:
                break
            time.sleep(0.1)
    finally:
        restarted.stop()
    _, states = outcome(database_url, tmp_path / "keyring.json")
    assert "pending" not in states and sum(states.values()) == len(messages)
