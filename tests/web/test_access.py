"""Access from outside, through HTTP only: site scoping, roles that see no referral, and CSRF
on every form."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from consent.policy import Role
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.web.ui import ROUTERS, SIGN_IN_ROUTERS
from tests.web.builders import SITE_A, SITE_B, Patient
from tests.web.conftest import Web

A_PATIENT = Patient(given="Riley", family="Exampleton", nhs_number="9990000026")
B_PATIENT = Patient(given="Quinn", family="Fictionby", nhs_number="9990001235")


@dataclass
class TwoSites:
    web: Web
    a: str  # a referral at site A
    b: str  # a referral at site B, consented, so it has identifiable details to leak
    ash: StaffUser
    lead_b: StaffUser
    admin: StaffUser


@pytest.fixture
def sites(web: Web) -> TwoSites:
    ash = web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    web.account("lead-a", Role.TEAM_LEAD, (SITE_A,))
    lead_b = web.account("lead-b", Role.TEAM_LEAD, (SITE_B,))
    web.account("prog", Role.PROGRAMME_LEAD, (SITE_A, SITE_B))
    admin = web.account("admin", Role.ADMINISTRATOR, ())
    a = web.ed.stab_wound(site=SITE_A, patient=A_PATIENT)
    b = web.ed.stab_wound(site=SITE_B, patient=B_PATIENT)
    client = web.signed_in("lead-b")
    token = web.token(client, "/queue")
    reply = client.post(
        f"/referrals/{b}/consent",
        data={
            "csrf_token": token,
            "outcome": "given",
            "giver": "young_person_16_plus",
            "young_person_age": "16",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert "Fictionby" in client.get(f"/referrals/{b}").text  # there is something to leak
    return TwoSites(web, a, b, ash, lead_b, admin)


def post_routes(web: Web) -> list[str]:
    """Every form target the web pages mount."""
    return sorted(
        r.path
        for router in (*SIGN_IN_ROUTERS, *ROUTERS)
        for r in router.routes
        if isinstance(r, APIRoute) and "POST" in r.methods
    )


def no_identifiers(body: str) -> None:
    for secret in ("Fictionby", "Quinn", "9990001235", "Exampleton", "9990000026"):
        assert secret not in body
    for spaced in ("999 000 1235", "999 000 0026"):  # as the case page shows NHS numbers
        assert spaced not in body


def test_a_youth_worker_of_site_a_finds_no_page_or_form_of_a_site_b_referral(sites: TwoSites):
    web = sites.web
    client = web.signed_in("ash")
    token = web.token(client, "/queue")
    assert client.get(f"/referrals/{sites.b}").status_code == 404
    referral_forms = [p for p in post_routes(web) if "{referral_id}" in p]
    assert len(referral_forms) >= 10
    for path in referral_forms:
        reply = client.post(path.format(referral_id=sites.b), data={"csrf_token": token})
        assert reply.status_code == 404, path
        no_identifiers(reply.text)
    for query in (
        "",
        "?tab=new",
        "?status=active",
        "?status=consented",
        f"?site={SITE_B}&status=active",
    ):
        assert sites.b not in client.get("/queue" + query).text
        assert sites.b not in client.get("/queue/cards" + query).text
    # and its own site's referral is there
    assert sites.a in client.get("/queue?tab=new").text


def test_a_team_lead_of_site_b_finds_nothing_of_site_a(sites: TwoSites):
    web = sites.web
    client = web.signed_in("lead-b")
    assert client.get(f"/referrals/{sites.a}").status_code == 404
    assert sites.a not in client.get("/queue?status=active").text


def test_a_programme_lead_cannot_open_any_identifiable_page(sites: TwoSites):
    web = sites.web
    client = web.signed_in("prog")
    token = web.token(client, "/overview")
    for path in (
        "/queue",
        "/queue/cards",
        "/follow-ups",
        "/referrals/new",
        f"/referrals/{sites.a}",
        f"/referrals/{sites.b}",
    ):
        reply = client.get(path)
        assert reply.status_code == 403, path
        no_identifiers(reply.text)
    assert client.get("/queue/events").status_code == 401
    for path in post_routes(web):
        if "{referral_id}" in path or path == "/referrals/new":
            reply = client.post(path.format(referral_id=sites.b), data={"csrf_token": token})
            assert reply.status_code == 403, path
            no_identifiers(reply.text)
    overview = client.get("/overview")
    assert overview.status_code == 200
    assert sites.a not in overview.text and sites.b not in overview.text
    no_identifiers(overview.text)


def test_an_administrator_reads_no_referral(sites: TwoSites):
    client = sites.web.signed_in("admin")
    for path in ("/queue", f"/referrals/{sites.b}"):
        reply = client.get(path)
        assert reply.status_code == 403
        no_identifiers(reply.text)


def test_every_form_rejects_a_missing_or_wrong_csrf_token(sites: TwoSites):
    web = sites.web
    lead = web.signed_in("lead-b")
    admin = web.signed_in("admin")
    paths = post_routes(web)
    assert {"/sign-in", "/sign-out", "/referrals/new", "/admin/users"} <= set(paths)
    for path in paths:
        if path == "/sign-in":
            continue  # before any session: below
        client = admin if path.startswith("/admin") else lead
        url = path.format(referral_id=sites.b, user_id=sites.ash.id, notice_id="n-1")
        for data in ({}, {"csrf_token": "forged"}):
            reply = client.post(url, data=data | {"outcome": "closed", "action": "disable"})
            assert reply.status_code == 403, (path, data)
            assert "This form has expired" in reply.text
    # nothing happened: still signed in, the account still active, the referral still open
    assert lead.get("/queue").status_code == 200
    assert web.ctx.accounts.get(sites.ash.id).active  # type: ignore[union-attr]
    assert "Consented" in lead.get(f"/referrals/{sites.b}").text


def test_sign_in_without_the_forms_token_is_refused(sites: TwoSites):
    client: TestClient = sites.web.client()
    reply = client.post("/sign-in", data={"username": "ash", "password": "whatever it is"})
    assert reply.status_code == 403
    assert "rg_session" not in reply.headers.get("set-cookie", "")


def test_signed_out_visitors_are_sent_to_sign_in(sites: TwoSites):
    client = sites.web.client()
    for path in ("/queue", f"/referrals/{sites.a}", "/overview", "/admin/users"):
        reply = client.get(path, follow_redirects=False)
        # back to the page after signing in
        assert (reply.status_code, reply.headers["location"]) == (
            303,
            "/sign-in?next=" + path,
        ), path
    assert client.get("/queue/cards", headers={"X-Live-Update": "1"}).status_code == 401


def test_a_malformed_referral_id_is_not_found_without_reaching_the_database(sites: TwoSites):
    client = sites.web.signed_in("ash")
    assert client.get("/referrals/1%20OR%201=1").status_code == 404
    assert client.get("/referrals/..%2F..%2Fetc").status_code == 404
