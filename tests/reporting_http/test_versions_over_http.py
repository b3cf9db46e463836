"""Issue 17, the hub's sending side over real HTTP: two site gateways, one of them serving
two sites, and a hub, each the real command line in a Python process of its own with its
own SQLite database.

Gateway A serves RXA01 and RXC03 and signs each site's month with that site's key
(`[sites.X.programme]` in its site file); gateway B serves RXB02 with the default key
(RG_PROGRAMME_KEY_ID). Every site's month arrives; late arrivals at RXA01 are re-issued as
a correction, which the hub shows as version 2 with its reason; a staging copy of gateway B
with the production key cannot overwrite the month the hub holds."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from referral_gateway.domain.report_period import latest_due_month
from referral_gateway.storage.database import make_engine, migrate
from tests.reporting.spine_rows import Visit, assault, write
from tests.reporting_http.test_hub_alone import Hub, add_account, first_sign_in
from tests.reporting_http.test_hub_over_http import ROOT, cli, environment, hub_process

SITE_A, SITE_B, SITE_C = "RXA01", "RXB02", "RXC03"
SECRETS = {
    "a-1": "a-secret-of-at-least-32-characters!",
    "b-1": "b-secret-of-at-least-32-characters!",
    "c-1": "c-secret-of-at-least-32-characters!",
}
SITE_OF = {"a-1": SITE_A, "b-1": SITE_B, "c-1": SITE_C}
OPS_TOKEN = "versions-over-http-ops-token-0123456789"
READER = {"Authorization": f"Bearer {OPS_TOKEN}"}  # a script reading the hub's downloads


@pytest.fixture
def hub(tmp_path):
    keys = tmp_path / "hub-keys.toml"
    keys.write_text(
        "".join(
            f'[[key]]\nid = "{k}"\nsite = "{SITE_OF[k]}"\nsecret = "{s}"\n\n'
            for k, s in SECRETS.items()
        )
    )
    add_account(tmp_path / "hub", "pat", "programme_lead", (SITE_A,))
    with hub_process(tmp_path / "hub", keys, RG_OPS_TOKEN=OPS_TOKEN) as url:
        yield url


def add_attendances(data_dir: Path, site: str, candidates: int, others: int, *, day: int) -> None:
    """Synthetic attendances of `site` in the month that is due now, on its `day`th day."""
    data_dir.mkdir(exist_ok=True)
    engine = make_engine(f"sqlite:///{data_dir / 'gateway.db'}")
    migrate(engine)
    start = latest_due_month(datetime.now(UTC)).start() + timedelta(days=day - 1, hours=1)
    write(
        engine,
        [assault(site, start + timedelta(minutes=20 * i)) for i in range(candidates)]
        + [Visit(site, start + timedelta(minutes=i)) for i in range(others)],
    )
    engine.dispose()


def run(*args: str, **env: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run(
        cli(*args), cwd=ROOT, env=environment(**env), capture_output=True, timeout=120
    )
    out = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, out, proc.stderr.decode()


def test_every_sites_month_arrives_and_a_correction_is_version_2_with_its_reason(tmp_path, hub):
    month = str(latest_due_month(datetime.now(UTC)))
    endpoint = f"{hub}/api/hub/reports"

    # gateway A: two sites, a key each, read from files beside its site file
    gateway_a = tmp_path / "gateway-a"
    add_attendances(gateway_a, SITE_A, candidates=23, others=100, day=3)
    add_attendances(gateway_a, SITE_C, candidates=9, others=30, day=4)
    (gateway_a / "keys").mkdir()
    for key_id in ("a-1", "c-1"):
        (gateway_a / "keys" / f"{key_id}.key").write_text(SECRETS[key_id] + "\n")
    site_file = gateway_a / "gateway.toml"
    site_file.write_text(
        f'[sites.{SITE_A}.programme]\nkey_id = "a-1"\nkey_file = "keys/a-1.key"\n\n'
        f'[sites.{SITE_C}.programme]\nkey_id = "c-1"\nkey_file = "keys/c-1.key"\n'
    )
    env_a = {"RG_PROGRAMME_ENDPOINT": endpoint, "RG_CONFIG_FILE": str(site_file)}
    # gateway B: one site, the default key
    gateway_b = tmp_path / "gateway-b"
    add_attendances(gateway_b, SITE_B, candidates=12, others=40, day=5)
    env_b = {
        "RG_PROGRAMME_ENDPOINT": endpoint,
        "RG_PROGRAMME_KEY_ID": "b-1",
        "RG_PROGRAMME_SECRET": SECRETS["b-1"],
    }

    pushes = [
        subprocess.Popen(
            cli("report-push", "--data-dir", str(d)),
            cwd=ROOT,
            env=environment(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for d, env in ((gateway_a, env_a), (gateway_b, env_b))
    ]
    outputs = []
    for p in pushes:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
        outputs.append([(r["site"], r["month"], r["result"]) for r in json.loads(out)])
    assert outputs == [
        [(SITE_A, month, "sent"), (SITE_C, month, "sent")],
        [(SITE_B, month, "sent")],
    ]

    totals = httpx.get(f"{hub}/hub/totals.json", params={"month": month}, headers=READER).json()
    assert totals["sites"] == [SITE_A, SITE_B, SITE_C]
    assert [(v["site"], v["version"], v["key_id"]) for v in totals["versions"]] == [
        (SITE_A, 1, "a-1"),
        (SITE_B, 1, "b-1"),
        (SITE_C, 1, "c-1"),
    ]
    candidates = {(t["measure"], t["breakdown"]): t for t in totals["totals"]}[("candidates", "")]
    # candidates 23 -> 25, 12 -> 10, 9 -> 10
    assert (candidates["known_total"], candidates["sites_suppressed"]) == (45, 0)

    # late arrivals at RXA01 after the freeze: 33 candidates now, 35 as shown
    add_attendances(gateway_a, SITE_A, candidates=10, others=0, day=20)
    code, out, err = run(
        "report-reissue",
        "--data-dir",
        str(gateway_a),
        "--site",
        SITE_A,
        "--month",
        month,
        "--reason",
        "late A08 updates from the ED system",
        **env_a,
    )
    assert code == 0, err[-2000:]
    assert [(r["site"], r["version"], r["result"]) for r in out] == [(SITE_A, 2, "sent")]

    after = httpx.get(f"{hub}/hub/totals.json", params={"month": month}, headers=READER).json()
    assert [(v["site"], v["version"], v["reason"]) for v in after["versions"]] == [
        (SITE_A, 2, "late A08 updates from the ED system"),
        (SITE_B, 1, None),
        (SITE_C, 1, None),
    ]
    candidates = {(t["measure"], t["breakdown"]): t for t in after["totals"]}[("candidates", "")]
    assert candidates["known_total"] == 55  # 35 + 10 + 10: the current version counts
    lead = first_sign_in(Hub(hub, tmp_path / "hub", tmp_path / "hub-keys.toml"), "pat")
    page = lead.get("/hub", params={"month": month}).text
    lead.close()
    assert "version 2: late A08 updates from the ED system" in page
    assert f"{SITE_A}: 2 versions of" in page and "first report" in page

    # a second run of gateway A (a restart) sends nothing again
    code, out, err = run("report-push", "--data-dir", str(gateway_a), **env_a)
    assert code == 0, err[-2000:]
    assert {r["result"] for r in out} == {"skipped"}

    # a staging copy of gateway B with the production key and figures of its own
    staging = tmp_path / "staging-b"
    add_attendances(staging, SITE_B, candidates=30, others=0, day=6)
    code, out, err = run("report-push", "--data-dir", str(staging), **env_b)
    assert code == 1
    assert [(r["site"], r["result"], r["detail"]) for r in out] == [
        (SITE_B, "failed", "programme endpoint answered 409 (month_already_received)")
    ]
    code, out, err = run("report-push", "--data-dir", str(staging), **env_b)  # an hour on
    assert [(r["site"], r["result"]) for r in out] == [(SITE_B, "refused")]  # not sent again
    final = httpx.get(f"{hub}/hub/totals.json", params={"month": month}, headers=READER).json()
    assert final == after
