"""An administrator over real HTTP with the whole app: renames an account along with its
role and sites (audited with no name in the entry), and cannot give an account a site code
the gateway does not know, here or on a new account."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from consent.policy import Role
from referral_gateway.storage.audit_store import AUDIT
from tests.web.builders import SITE_A, SITE_B
from tests.web.conftest import csrf_of
from tests.web.live_site import Site, running_site

UNKNOWN_SITE = "RZZ98"


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    yield from running_site(tmp_path)


def change(admin: httpx.Client, user_id: str, **data: str) -> httpx.Response:
    token = csrf_of(admin.get("/admin/users").text)
    return admin.post(f"/admin/users/{user_id}", data=data | {"csrf_token": token})


def test_an_administrator_renames_an_account_with_its_role_and_sites(site: Site):
    for where in (SITE_A, SITE_B):
        site.web.ed.stab_wound(site=where)
    admin = site.browser("admin", Role.ADMINISTRATOR, ())
    ash = site.web.account("ash", Role.YOUTH_WORKER, (SITE_A,))

    reply = change(
        admin,
        ash.id,
        action="access",
        display_name="Ashley Made-up",
        role="team_lead",
        sites=f"{SITE_A} {SITE_B.lower()}",
    )

    assert reply.status_code == 303
    now = site.web.ctx.accounts.get(ash.id)
    assert now is not None
    assert (now.display_name, now.role, now.sites) == (
        "Ashley Made-up",
        Role.TEAM_LEAD,
        frozenset({SITE_A, SITE_B}),
    )
    assert "Ashley Made-up" in admin.get("/admin/users").text
    with site.running.engine.connect() as conn:
        whys = [r.why for r in conn.execute(select(AUDIT.c.why))]
    assert "name_changed" in whys and not any("Ashley" in w for w in whys)


def test_a_site_code_the_gateway_does_not_know_is_refused_with_the_ones_it_knows(site: Site):
    site.web.ed.stab_wound(site=SITE_A)  # the gateway has seen SITE_A, and no other
    admin = site.browser("admin", Role.ADMINISTRATOR, ())
    ash = site.web.account("ash", Role.YOUTH_WORKER, (SITE_A,))

    changed = change(
        admin, ash.id, action="access", role="youth_worker", sites=f"{SITE_A} {UNKNOWN_SITE}"
    )
    token = csrf_of(admin.get("/admin/users").text)
    added = admin.post(
        "/admin/users",
        data={
            "username": "newbie",
            "role": "youth_worker",
            "sites": UNKNOWN_SITE,
            "password": "a long enough first password",
            "csrf_token": token,
        },
    )

    for reply in (changed, added):
        assert reply.status_code == 422
        assert f"The gateway does not know the site {UNKNOWN_SITE}" in reply.text
        assert f"({SITE_A})" in reply.text
    assert site.web.ctx.accounts.get(ash.id).sites == frozenset({SITE_A})  # type: ignore[union-attr]
    assert site.web.ctx.accounts.by_username("newbie") is None
