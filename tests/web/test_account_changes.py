"""Account changes from the outside: the real app (`build_app` on a real gateway, SQLite and
PostgreSQL) over HTTP, accounts made with the real `referral-gateway users` command.

The route this closes: an administrator creates (or resets the password of) a team lead for
a site and signs in as it to read the site's referrals. Now an account whose password was
set by someone else reaches only the change-password page until its owner sets their own;
every account change is in the hash-chained audit trail with who made it; and the site's
team leads see a notice when an account gains access to their site."""

from __future__ import annotations

import getpass
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent.audit import AuditAction
from referral_gateway.config import Settings
from referral_gateway.storage.accounts import USERS
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.web import build_app
from tests.web.builders import SITE_A, SITE_B, FakeEd, Patient
from tests.web.conftest import csrf_of

ROOT = Path(__file__).resolve().parents[2]
GIVEN = "given by the admin 1"  # a first password chosen by whoever makes the account
OWN = "chosen by me alone 22"


def cli(data_dir: Path, url: str, *args: str, stdin: str = "") -> str:
    where = ("--data-dir", str(data_dir), "--database-url", url)
    done = subprocess.run(
        [sys.executable, "-m", "referral_gateway.entrypoints.cli", "users", *args, *where],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Site:
    """The real app of one gateway, and a browser per person."""

    def __init__(self, tmp_path: Path, url: str, clock) -> None:  # type: ignore[no-untyped-def]
        self.data_dir, self.url = tmp_path, url
        self.gateway = build_gateway(Settings(data_dir=tmp_path, database_url=url), clock=clock)
        fast = WebOptions(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)
        self.app = build_app(self.gateway, ops_token="t" * 32, web=fast)
        self.ed = FakeEd(self.gateway.engine, self.gateway.keyring, clock)

    def sign_in(self, username: str, password: str) -> tuple[TestClient, str]:
        client = TestClient(self.app)
        token = csrf_of(client.get("/sign-in").text)
        reply = client.post(
            "/sign-in",
            data={"username": username, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        assert reply.status_code == 303, reply.text
        return client, reply.headers["location"]

    def set_own_password(self, client: TestClient, current: str, new: str = OWN) -> None:
        token = csrf_of(client.get("/account/password").text)
        reply = client.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": current,
                "new_password": new,
                "confirm_password": new,
            },
            follow_redirects=False,
        )
        assert reply.status_code == 303, reply.text

    def user_id(self, username: str) -> str:
        with self.gateway.engine.connect() as conn:
            return str(
                conn.execute(select(USERS.c.id).where(USERS.c.username == username)).scalar()
            )

    def account_changes(self) -> list[tuple[str, str, str]]:
        """(actor, account username, why) of every account change in the trail."""
        with self.gateway.engine.connect() as conn:
            entries = self.gateway.audit.entries(conn)
            names = dict(conn.execute(select(USERS.c.id, USERS.c.username)).all())
        return [
            (names.get(e.actor, e.actor), names[e.subject.removeprefix("account:")], e.why)
            for e in entries
            if e.action is AuditAction.ACCOUNT_CHANGE
        ]


@pytest.fixture
def site(tmp_path, database_url, clock):  # type: ignore[no-untyped-def]
    s = Site(tmp_path, database_url, clock)
    yield s
    s.gateway.stop()


def admin_form(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/admin/users").text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def test_an_administrator_cannot_make_a_team_lead_and_read_the_sites_referrals(site: Site):
    me = f"cli:{getpass.getuser()}"
    cli(site.data_dir, site.url, "add", "--username", "root-admin", "--role", "administrator",
        stdin=GIVEN + "\n")  # fmt: skip
    for lead in ("lead-a", "other-lead-a"):
        cli(site.data_dir, site.url, "add", "--username", lead, "--role", "team_lead",
            "--site", SITE_A, stdin=GIVEN + "\n")  # fmt: skip
    referral = site.ed.stab_wound(site=SITE_A, patient=Patient())

    # even the first administrator, made on the command line, must set their own password
    admin, home = site.sign_in("root-admin", GIVEN)
    assert home == "/account/password"
    assert admin.get("/admin/users", follow_redirects=False).headers["location"] == (
        "/account/password"
    )
    site.set_own_password(admin, GIVEN)
    lead, _ = site.sign_in("lead-a", GIVEN)
    site.set_own_password(lead, GIVEN)
    assert lead.get(f"/referrals/{referral}").status_code == 200  # the real team lead can

    # the administrator makes a team lead for the site and signs in as it
    made = admin_form(
        admin, "/admin/users", username="mallory", role="team_lead", sites=SITE_A, password=GIVEN
    )
    assert made.status_code == 303
    mallory, home = site.sign_in("mallory", GIVEN)
    assert home == "/account/password"
    for path in ("/", "/queue", f"/referrals/{referral}", "/follow-ups", "/overview"):
        reply = mallory.get(path, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, "/account/password"), path
    for path in ("/queue/cards", "/queue/events"):
        assert mallory.get(path, headers={"X-Live-Update": "1"}).status_code == 401
    page = mallory.get("/account/password")
    assert page.status_code == 200 and "Set your password" in page.text
    assert "Testington" not in page.text and "/queue" not in page.text

    # the same through a reset of the real team lead's password: their session ends too
    lead_id = site.user_id("lead-a")
    reset = admin_form(admin, f"/admin/users/{lead_id}", action="password", password=GIVEN + "x")
    assert reset.status_code == 303
    assert lead.get("/queue", follow_redirects=False).headers["location"] == (
        "/sign-in?next=/queue"
    )
    as_lead, home = site.sign_in("lead-a", GIVEN + "x")
    assert home == "/account/password"
    assert as_lead.get(f"/referrals/{referral}", follow_redirects=False).status_code == 303

    # every change is in the audit trail with who made it, and the chain still verifies
    assert site.account_changes() == [
        (me, "root-admin", "created role=administrator sites=- must_change_password"),
        (me, "lead-a", f"created role=team_lead sites={SITE_A} must_change_password"),
        (me, "other-lead-a", f"created role=team_lead sites={SITE_A} must_change_password"),
        ("root-admin", "root-admin", "password_changed"),
        ("lead-a", "lead-a", "password_changed"),
        ("root-admin", "mallory", f"created role=team_lead sites={SITE_A} must_change_password"),
        ("root-admin", "lead-a", "password_reset must_change_password"),
    ]
    check = site.gateway.audit.verify(site.gateway.engine)
    assert check.ok, check.problem

    # the site's team leads are told, on their pages
    site.set_own_password(as_lead, GIVEN + "x", new=OWN + "y")
    queue = as_lead.get("/queue").text
    assert "mallory can now work at RXA01 as a team lead, by a change made by root-admin" in queue
    other, _ = site.sign_in("other-lead-a", GIVEN)
    site.set_own_password(other, GIVEN)
    queue = other.get("/queue").text
    assert "mallory can now work at RXA01 as a team lead, by a change made by root-admin" in queue
    assert "The password of lead-a (team lead, RXA01) was set by root-admin" in queue

    # only once mallory's owner sets their own password does the queue open to mallory
    site.set_own_password(mallory, GIVEN)
    assert mallory.get(f"/referrals/{referral}").status_code == 200
    assert site.account_changes()[-1] == ("mallory", "mallory", "password_changed")


def test_role_sites_and_disabling_are_audited_and_a_gained_site_is_told(site: Site):
    cli(site.data_dir, site.url, "add", "--username", "root-admin", "--role", "administrator",
        stdin=GIVEN + "\n")  # fmt: skip
    cli(site.data_dir, site.url, "add", "--username", "lead-b", "--role", "team_lead",
        "--site", SITE_B, stdin=GIVEN + "\n")  # fmt: skip
    cli(site.data_dir, site.url, "add", "--username", "ash", "--role", "youth_worker",
        "--site", SITE_A, stdin=GIVEN + "\n")  # fmt: skip
    admin, _ = site.sign_in("root-admin", GIVEN)
    site.set_own_password(admin, GIVEN)
    lead_b, _ = site.sign_in("lead-b", GIVEN)
    site.set_own_password(lead_b, GIVEN)
    assert "Account changes at your sites" not in lead_b.get("/queue").text
    ash = site.user_id("ash")

    def change(**data: str) -> None:
        assert admin_form(admin, f"/admin/users/{ash}", **data).status_code == 303

    change(action="access", role="youth_worker", sites=f"{SITE_A} {SITE_B}")
    change(action="access", role="team_lead", sites=f"{SITE_A} {SITE_B}")
    change(action="disable")
    change(action="enable")
    refused = admin_form(admin, f"/admin/users/{ash}", action="access", role="team_lead", sites="")
    assert refused.status_code == 422
    cli(site.data_dir, site.url, "set-access", "--username", "ash", "--role", "youth_worker",
        "--site", SITE_A)  # fmt: skip
    cli(site.data_dir, site.url, "disable", "--username", "ash")

    me = f"cli:{getpass.getuser()}"
    assert site.account_changes()[5:] == [
        ("root-admin", "ash", f"sites_changed {SITE_A}->{SITE_A},{SITE_B}"),
        ("root-admin", "ash", "role_changed youth_worker->team_lead"),
        ("root-admin", "ash", "disabled"),
        ("root-admin", "ash", "enabled"),
        (me, "ash", "role_changed team_lead->youth_worker"),
        (me, "ash", f"sites_changed {SITE_A},{SITE_B}->{SITE_A}"),
        (me, "ash", "disabled"),
    ]
    assert site.gateway.audit.verify(site.gateway.engine).ok

    # site B's team lead heard of each time ash gained something there, and of nothing else
    page = lead_b.get("/queue").text
    told = re.findall(r"ash can now work at RXB02 as a (youth worker|team lead)", page)
    assert sorted(told) == ["team lead", "team lead", "youth worker"]  # added, promoted, enabled
    assert "RXA01" not in re.sub(r"<option[^>]*>.*?</option>", "", page)
    token = csrf_of(page)
    ids = re.findall(r'action="/notices/([0-9a-f-]{36})/read"', page)
    for notice in ids:
        done = lead_b.post(
            f"/notices/{notice}/read", data={"csrf_token": token, "back": "/queue"},
            follow_redirects=False,
        )  # fmt: skip
        assert (done.status_code, done.headers["location"]) == (303, "/queue")
    assert "Account changes at your sites" not in lead_b.get("/queue").text
