"""`referral-gateway users`: accounts from the command line, the password never an argument."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.database import make_engine
from tests.web.builders import FAST_HASHER

ROOT = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "referral_gateway.entrypoints.cli",
            *args,
            "--data-dir",
            str(data_dir),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_users_add_reads_the_password_from_stdin_and_the_account_can_sign_in(tmp_path):
    done = cli(
        tmp_path,
        "users",
        "add",
        "--username",
        "Ash.Worker",
        "--role",
        "youth_worker",
        "--site",
        "RXA01",
        "--site",
        "rxb02",
        stdin="a long enough secret\n",
    )
    assert done.returncode == 0, done.stderr
    assert "created ash.worker (youth_worker) for RXA01, RXB02" in done.stdout
    assert "a long enough secret" not in done.stdout + done.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    store = AccountStore(engine, hasher=FAST_HASHER)
    signed = store.authenticate(
        "ash.worker", "a long enough secret", address="127.0.0.1", now=datetime.now(UTC)
    )
    engine.dispose()
    assert signed.user is not None and signed.user.sites == {"RXA01", "RXB02"}


def test_there_is_no_password_argument():
    done = subprocess.run(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", "users", "add", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--password" not in done.stdout


def test_a_bad_account_is_refused_with_what_to_fix(tmp_path):
    done = cli(
        tmp_path, "users", "add", "--username", "ash", "--role", "youth_worker", stdin="short\n"
    )
    assert done.returncode == 2
    assert "sites: A youth worker needs at least one site." in done.stderr
    assert "password: Use a password of at least 12 characters." in done.stderr


def test_list_disable_and_set_password(tmp_path):
    cli(
        tmp_path,
        "users",
        "add",
        "--username",
        "lead",
        "--role",
        "team_lead",
        "--site",
        "RXA01",
        stdin="a long enough secret\n",
    )
    assert cli(tmp_path, "users", "disable", "--username", "lead").returncode == 0
    listing = cli(tmp_path, "users", "list").stdout
    assert "lead" in listing and "team_lead" in listing and "disabled" in listing
    changed = cli(
        tmp_path, "users", "set-password", "--username", "lead", stdin="another long secret\n"
    )
    assert changed.returncode == 0 and "password set for lead" in changed.stdout
