"""Instances starting at once on one PostgreSQL: each migrates at start, and a PostgreSQL
advisory lock lets one upgrade run at a time, so none fails on another's half-made schema
and the schema ends current."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from referral_gateway.storage.database import make_engine, schema_is_current

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MIGRATE_AT = Path(__file__).with_name("migrate_at.py")
ROOT = Path(__file__).resolve().parents[2]


def test_three_instances_migrating_one_new_database_at_the_same_moment_all_start(postgres_url):
    at = time.time() + 4.0  # time enough for each process to import and connect first
    procs = [
        subprocess.Popen(
            [sys.executable, str(MIGRATE_AT), postgres_url, str(at)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace")[-300:])
    assert failures == []
    engine = make_engine(postgres_url)
    try:
        assert schema_is_current(engine)
    finally:
        engine.dispose()
