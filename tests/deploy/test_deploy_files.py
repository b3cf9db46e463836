"""The install files say what the operations guide promises. Docker is not run here (no
daemon on the build machine), so the image, the compose file and the unit are read and their
properties checked; `test_read_only_root.py` runs the gateway the way the image does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "referral-gateway.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_image_runs_as_a_numbered_non_root_user_with_a_readiness_healthcheck():
    instructions = dockerfile_instructions()
    users = [arg for name, arg in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    (health,) = [arg for name, arg in instructions if name == "HEALTHCHECK"]
    assert "/health/ready" in health and "curl" not in health


def test_compose_runs_two_read_only_gateways_on_one_postgresql_behind_the_proxy():
    services = compose()["services"]
    gateways = {name: s for name, s in services.items() if "gateway" in name}
    assert len(gateways) == 2
    assert services["db"]["image"].startswith("postgres:")
    assert "proxy" in services
    for service in gateways.values():
        assert service["read_only"] is True
        assert any(t.startswith("/tmp") for t in service["tmpfs"])
        assert service["user"].split(":")[0] not in ("0", "root")
        assert service["environment"]["RG_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@db/" in service["environment"]["RG_DATABASE_URL"]


def test_compose_shares_the_key_ring_volume_and_never_a_data_volume():
    gateways = [s for name, s in compose()["services"].items() if "gateway" in name]
    mounts = [[v.split(":") for v in s["volumes"]] for s in gateways]
    data = [next(src for src, dst, *_ in m if dst == "/var/lib/referral-gateway") for m in mounts]
    keys = [next(src for src, dst, *_ in m if dst == "/etc/referral-gateway/keys") for m in mounts]
    assert len(set(data)) == len(gateways)
    assert len(set(keys)) == 1


def test_the_unit_is_hardened():
    unit = unit_settings()
    expected = {
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "true",
        "SystemCallFilter": "@system-service",
    }
    for key, value in expected.items():
        assert value in unit.get(key, []), key
    assert unit["User"] != ["root"]
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "/etc/referral-gateway/keys" in unit["ReadWritePaths"][0].split()
    assert unit["StateDirectory"] == ["referral-gateway"]  # the data directory, writable


SYSTEMD_ANALYZE = Path("/usr/bin/systemd-analyze")  # Debian's systemd, installed by deploy/test.sh


@pytest.mark.skipif(
    not SYSTEMD_ANALYZE.exists() and not os.environ.get("CI"), reason="no systemd-analyze"
)
def test_systemd_finds_nothing_wrong_with_the_unit_but_the_absent_program():
    found = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(DEPLOY / "referral-gateway.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [
        line
        for line in (found.stdout + found.stderr).splitlines()
        if line.strip() and "/opt/referral-gateway/.venv/bin/referral-gateway" not in line
    ]
    assert complaints == []
