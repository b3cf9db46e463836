"""Two site processes push their month to a hub process over HTTP on loopback.

Every process is the real command line (`referral-gateway hub`, `referral-gateway
report-push`) in its own Python process with its own SQLite database. The site databases
hold synthetic attendances for the month that is due now, so the push is the one the 06:00
job would make today."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from referral_gateway.domain.report_period import latest_due_month
from referral_gateway.domain.report_snapshot import canonical_json
from referral_gateway.report_formats.signing import SigningKey, sign
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.reports import PushStatus, ReportStore
from tests.reporting.spine_rows import Visit, assault, write

ROOT = Path(__file__).resolve().parents[2]
SITE_A, SITE_B = "RXA01", "RXB02"
SECRET_A, SECRET_B = "a-secret-of-at-least-32-characters!", "b-secret-of-at-least-32-characters!"
OPS_TOKEN = "hub-ops-token-for-scripts-0123456789"
SCRIPT = {"Authorization": f"Bearer {OPS_TOKEN}"}  # what a programme office's script sends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "referral_gateway.entrypoints.cli", *args]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RG_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@contextmanager
def hub_process(data_dir: Path, keys: Path, **env: str) -> Iterator[str]:
    """`referral-gateway hub` in a process of its own on a free port, until the block ends:
    its address, once `/health` answers."""
    port = free_port()
    proc = subprocess.Popen(
        cli(
            "hub",
            "--data-dir",
            str(data_dir),
            "--http-port",
            str(port),
            "--hub-keys-file",
            str(keys),
        ),
        cwd=ROOT,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode() if proc.stdout else ""
            proc.kill()
            pytest.fail(f"hub did not start: {out[-2000:]}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def hub(tmp_path):
    keys = tmp_path / "hub-keys.toml"
    keys.write_text(
        f'[[key]]\nid = "a-1"\nsite = "{SITE_A}"\nsecret = "{SECRET_A}"\n\n'
        f'[[key]]\nid = "b-1"\nsite = "{SITE_B}"\nsecret = "{SECRET_B}"\n'
    )
    with hub_process(tmp_path / "hub", keys, RG_OPS_TOKEN=OPS_TOKEN) as url:
        yield url


def site_database(tmp_path: Path, site: str, candidates: int, others: int) -> Path:
    data_dir = tmp_path / site
    data_dir.mkdir()
    engine = make_engine(f"sqlite:///{data_dir / 'gateway.db'}")
    migrate(engine)
    month = latest_due_month(datetime.now(UTC))
    start = month.start() + timedelta(hours=12)
    write(
        engine,
        [assault(site, start + timedelta(hours=i)) for i in range(candidates)]
        + [Visit(site, start + timedelta(minutes=i)) for i in range(others)],
    )
    engine.dispose()
    return data_dir


def push(data_dir: Path, hub_url: str, key_id: str, secret: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli("report-push", "--data-dir", str(data_dir)),
        cwd=ROOT,
        env=environment(
            RG_PROGRAMME_ENDPOINT=f"{hub_url}/api/hub/reports",
            RG_PROGRAMME_KEY_ID=key_id,
            RG_PROGRAMME_SECRET=secret,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finished(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def test_two_sites_push_to_the_hub_which_totals_them_and_refuses_tampering(tmp_path, hub):
    site_a = site_database(tmp_path, SITE_A, candidates=23, others=100)
    site_b = site_database(tmp_path, SITE_B, candidates=12, others=40)
    month = str(latest_due_month(datetime.now(UTC)))

    pushes = [push(site_a, hub, "a-1", SECRET_A), push(site_b, hub, "b-1", SECRET_B)]
    results = [finished(p) for p in pushes]
    assert [[(r["site"], r["month"], r["result"]) for r in res] for res in results] == [
        [(SITE_A, month, "sent")],
        [(SITE_B, month, "sent")],
    ]

    totals = httpx.get(f"{hub}/hub/totals.json", params={"month": month}, headers=SCRIPT).json()
    assert totals["sites"] == [SITE_A, SITE_B]
    by_key = {(t["measure"], t["breakdown"], t["category"]): t for t in totals["totals"]}
    # candidates: 23 -> 25 and 12 -> 10; screened: 123 -> 125 and 52 -> 50
    assert by_key[("candidates", "", "")]["known_total"] == 35
    assert by_key[("screened", "", "")]["known_total"] == 175
    assert (
        "RXA01" in httpx.get(f"{hub}/hub/sites.csv", params={"month": month}, headers=SCRIPT).text
    )

    # the site's own record says sent, and a second run (a restart) sends nothing
    engine = make_engine(f"sqlite:///{site_a / 'gateway.db'}")
    store = ReportStore(engine)
    snapshot = store.snapshots()[0]
    assert store.push_states()[0].status is PushStatus.SENT
    assert [r["result"] for r in finished(push(site_a, hub, "a-1", SECRET_A))] == ["skipped"]
    engine.dispose()

    # tampered on the way: a figure changed after signing
    body = snapshot.envelope()
    headers = sign(body, SigningKey("a-1", SECRET_A.encode()), now=datetime.now(UTC))
    tampered = body.replace(b'"value":25', b'"value":50', 1)
    assert tampered != body
    refused = httpx.post(f"{hub}/api/hub/reports", content=tampered, headers=headers)
    assert (refused.status_code, refused.json()["reason"]) == (401, "bad_signature")

    # a forged report signed with a guessed key
    data = json.loads(body)
    data["report_id"] = "forged-1"
    forged = canonical_json(data)
    guess = SigningKey("a-1", b"not-the-secret-but-long-enough-32b")
    answer = httpx.post(
        f"{hub}/api/hub/reports", content=forged, headers=sign(forged, guess, now=datetime.now(UTC))
    )
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")

    # the captured request replayed as it was
    replay = httpx.post(f"{hub}/api/hub/reports", content=body, headers=headers)
    assert (replay.status_code, replay.json()["outcome"]) == (409, "replay")

    # and nothing changed the totals
    again = httpx.get(f"{hub}/hub/totals.json", params={"month": month}, headers=SCRIPT).json()
    assert again == totals
