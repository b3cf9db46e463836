"""A real `referral-gateway serve`, killed with SIGKILL while onward deliveries wait in its
outbox: after a restart each is sent once. The directory entry is made with the command
line, and the outbox is read back with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.serve_process import ServeProcess, start_serve
from referral_gateway.config import Settings
from referral_gateway.domain.clock import system_clock
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage import onward as store
from referral_gateway.storage.audit_store import AuditAnchor, AuditStore
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.keystore import open_keyring
from referral_gateway.wiring.onward import build_onward
from tests.consent_store.builders import WORKER, Assignments
from tests.onward.builders import consented_referral
from tests.onward.conftest import Receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def cli(data_dir: Path, database_url: str, *args: str) -> str:
    env = dict(os.environ, RG_DATA_DIR=str(data_dir), RG_DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_deliveries_waiting_when_serve_is_killed_are_each_sent_once_after_restart(
    tmp_path, database_url
):
    data_dir = tmp_path / "gw"
    data_dir.mkdir()
    receiver = Receiver(tmp_path / "received.jsonl")
    engine = make_engine(database_url)
    migrate(engine)
    keyring = open_keyring(engine, data_dir / "keyring.json", create=True, now=system_clock())
    out = cli(
        data_dir,
        database_url,
        *("services", "add", "--id", "wexcombe-youth", "--name", "Wexcombe Youth Service"),
        *("--code", "ZZW01", "--offers", "Mentoring", "--channel", "fhir"),
        *("--endpoint", f"{receiver.url}/fhir", "--fields", "nhs_number,age"),
    )
    assert "added service 'wexcombe-youth'" in out
    assert out.strip().splitlines()[-1].startswith("rgf_")  # its token, for Task updates
    assignments = Assignments()
    sharing = Sharing(
        engine,
        keyring,
        AuditStore(AuditAnchor(data_dir / "audit-head.json")),
        assignments=assignments,
    )
    onward = build_onward(
        Settings(), engine, keyring, sharing, system_clock, announce=lambda n: None
    )
    now = datetime.now(UTC)
    tasks = []
    for visit in ("V1", "V2", "V3"):
        rid = consented_referral(onward, sharing, assignments, now, visit_number=visit)
        tasks.append(onward.refer(WORKER, rid, "wexcombe-youth", now=now).id)

    def attempts() -> list[int]:
        with engine.connect() as conn:
            return [i.attempts for i in store.items(conn)]

    fast = {"RG_OUTBOX_INTERVAL_SECONDS": "0.3", "RG_OUTBOX_BACKOFF_SECONDS": "0.5"}
    serve: ServeProcess | None = start_serve(data_dir, database_url, fast)
    try:
        # tried while the service is down
        wait_for(lambda: all(a >= 1 for a in attempts()), timeout=40)
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(10)
        assert receiver.entries() == []

        receiver.start()
        serve = start_serve(data_dir, database_url, fast)
        wait_for(lambda: receiver.taken() and len(receiver.taken()) >= len(tasks))
        time.sleep(1.5)  # a few more passes: nothing else may arrive
    finally:
        if serve is not None:
            serve.proc.send_signal(signal.SIGKILL)
            serve.proc.wait(10)
        receiver.kill()

    taken = [e["key"].rsplit(":", 1)[1] for e in receiver.taken()]
    assert Counter(taken) == Counter({t: 1 for t in tasks})
    listed = json.loads(cli(data_dir, database_url, "outbox", "list", "--json"))
    assert {(i["task_id"], i["state"]) for i in listed} == {(t, "sent") for t in tasks}
    engine.dispose()
