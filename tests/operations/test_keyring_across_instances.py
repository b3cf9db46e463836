"""The key ring across instances: two real gateways (`serve`) on one PostgreSQL. Gateway A
shares the key ring's directory with the `keys` command; gateway B was given a copy of the
ring instead (the mistake `docs/OPERATIONS.md` warns of), so it cannot see a rotation. After
`keys rotate`, A stores under the new key without a restart; B stores nothing under the key
being retired (its sender gets AE and resends) until it is given the current ring, which it
then uses without a restart either. The old key can be retired and nothing is left under it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from consent.keyring import KeyRing
from referral_gateway.storage.database import make_engine
from tests.operations.gateways import serve
from tests.operations.test_metrics import visit
from tests.spine.harness import msa

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def keys(data_dir: Path, keyring: Path, database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", "keys", *args],
        env=dict(
            os.environ,
            RG_DATA_DIR=str(data_dir),
            RG_DATABASE_URL=database_url,
            RG_KEYRING_FILE=str(keyring),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def send(port: int, n: int) -> str:
    message = adt("A04", visit(n, age=30, complaint="fell"), f"K{n}", sent=datetime.now(UTC))
    with MllpClient("127.0.0.1", port) as client:
        return msa(client.send(message))[0]


def payload_keys(database_url: str) -> dict[str, str]:
    """Each stored message's control id and the key its payload is encrypted under."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select message_key, payload_enc from inbound_message"))
            return {str(cid): KeyRing.key_id_of(bytes(tok)) for cid, tok in rows}
    finally:
        engine.dispose()


def test_a_rotation_reaches_a_running_gateway_and_none_writes_under_the_old_key(
    postgres_url, tmp_path
):
    shared = tmp_path / "keys" / "keyring.json"
    shared.parent.mkdir()
    a = serve(tmp_path / "a", postgres_url, keyring_file=shared)
    copy = tmp_path / "b-keys" / "keyring.json"
    copy.parent.mkdir()
    shutil.copy(shared, copy)
    b = serve(tmp_path / "b", postgres_url, keyring_file=copy)
    try:
        old = json.loads(shared.read_text())["active"]
        assert (send(a.mllp_port, 1), send(b.mllp_port, 2)) == ("AA", "AA")

        keys(tmp_path / "cli", shared, postgres_url, "rotate", "--settle", "1.5")
        new = json.loads(shared.read_text())["active"]
        assert new != old
        time.sleep(1.5)  # a gateway looks at the ring's file at most once a second

        assert send(a.mllp_port, 3) == "AA"  # seen by A without a restart
        assert send(b.mllp_port, 4) == "AE"  # B's ring is behind: it stores nothing
        keys(tmp_path / "cli", shared, postgres_url, "retire", old)

        shutil.copy(shared, copy)  # B is given the current ring, and keeps running
        time.sleep(1.5)
        assert send(b.mllp_port, 4) == "AA"  # the sender's resend
        stored = payload_keys(postgres_url)
        assert sorted(stored) == ["K1", "K2", "K3", "K4"]
        assert set(stored.values()) == {new}, stored
    finally:
        b.stop()
        a.stop()
