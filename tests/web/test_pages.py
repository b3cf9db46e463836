"""The pages a youth worker uses, through HTTP: the queue, claiming, recording the approach
with messages a person can act on, the unlock, casework to closure, manual referrals, and the
security properties every page keeps."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from consent.audit import AuditAction
from consent.policy import Role
from referral_gateway.storage.audit_store import AUDIT
from tests.web.builders import SITE_A, SITE_B, Patient
from tests.web.conftest import Web

YOUNG = Patient(given="Skyler", family="Madeup", nhs_number="9990000026", age=17)
URLS = re.compile(r'(?:href|action|src)="([^"]*)"')


@pytest.fixture
def ash(web: Web):  # type: ignore[no-untyped-def]
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    client = web.signed_in("ash")
    client.token = lambda page="/queue": web.token(client, page)  # type: ignore[attr-defined]
    return client


def post(client, path: str, **data: str):  # type: ignore[no-untyped-def]
    page = "/queue" if not path.startswith("/referrals/") else path.rsplit("/", 1)[0]
    if path == "/referrals/new":
        page = "/referrals/new"
    return client.post(path, data=data | {"csrf_token": client.token(page)}, follow_redirects=False)


def test_new_shows_approach_cards_longest_wait_first_and_no_name(web: Web, ash):
    older = web.ed.stab_wound(patient=YOUNG, area="RESUS", bay="R2")
    web.clock.advance(minutes=7)
    newer = web.ed.stab_wound(area="MAJORS", bay="B4")
    page = ash.get("/queue?tab=new").text
    assert page.index(older) < page.index(newer)
    card = page[page.index(older) :]
    for fact in (
        "RESUS, bay R2",
        "17",
        "Male",
        "Bladed",
        "In department",
        "7 min ago",
        "The ED coded it as stab wound",  # why, in the case page's plain words
    ):
        assert fact in card, fact
    assert "Madeup" not in page and "9990000026" not in page


def test_the_queue_tells_a_possible_assault_from_a_definite_one(web: Web, ash):
    suspected = web.ed.stab_wound(codes=(), text=("head lac, found in street ?assault",))
    stated = web.ed.stab_wound(codes=(), text=("punched to face by unknown male",))
    page = ash.get("/queue?tab=new").text
    cards = {
        rid: page[page.index(rid) :][: page[page.index(rid) :].index("</article>")]
        for rid in (suspected, stated)
    }
    assert "as a possible assault (suspected: question mark)" in cards[suspected]
    assert "The triage note says &#39;punched&#39;" in cards[stated]
    possible = '<strong class="nhsuk-tag nhsuk-tag--yellow">Possible assault</strong>'
    assert possible in cards[suspected]
    assert "possible" not in cards[stated].lower()


def test_claiming_from_the_queue_puts_the_referral_in_my_name(web: Web, ash):
    rid = web.ed.stab_wound()
    reply = post(ash, f"/referrals/{rid}/claim")
    assert reply.headers["location"] == f"/referrals/{rid}?done=claimed"
    page = ash.get(reply.headers["location"]).text
    assert "Claimed: the referral is in your name." in page and "Claimed by Ash" in page
    mine = ash.get("/queue?mine=1").text
    assert rid in mine
    assert rid not in ash.get("/queue?status=new").text


def test_a_consent_form_without_an_outcome_says_what_to_do_next_to_the_field(web: Web, ash):
    rid = web.ed.stab_wound()
    refused = post(ash, f"/referrals/{rid}/consent", giver="young_person_16_plus")
    assert refused.status_code == 303
    reply = ash.get(refused.headers["location"])
    assert "Choose the outcome of the approach." in reply.text
    assert 'href="#consent-outcome"' in reply.text and 'id="consent-outcome"' in reply.text
    assert 'aria-describedby="consent-outcome-error"' in reply.text


def test_a_fourteen_year_old_cannot_be_recorded_as_consenting_as_sixteen_plus(web: Web, ash):
    rid = web.ed.stab_wound()
    reply = post(
        ash,
        f"/referrals/{rid}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="14",
        fields_for="given",
    )
    assert reply.status_code == 303
    reply = ash.get(reply.headers["location"])
    assert "Gillick competent" in reply.text
    assert 'value="given" checked' in reply.text  # what was entered is kept


def test_an_override_without_its_reason_and_authoriser_is_refused_field_by_field(web: Web, ash):
    rid = web.ed.stab_wound()
    refused = post(
        ash,
        f"/referrals/{rid}/consent",
        outcome="safeguarding_override",
        fields_for="safeguarding_override",
    )
    reply = ash.get(refused.headers["location"])
    for message in (
        "Enter the safeguarding reason",
        "Enter the name of the person who authorised",
        "Enter when the override was authorised",
    ):
        assert message in reply.text


def test_after_consent_the_details_appear_and_the_view_is_audited(web: Web, ash):
    rid = web.ed.stab_wound(patient=YOUNG)
    post(ash, f"/referrals/{rid}/claim")
    before = ash.get(f"/referrals/{rid}").text
    assert "Madeup" not in before and "Locked." in before
    reply = post(
        ash,
        f"/referrals/{rid}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="17",
    )
    assert reply.status_code == 303
    page = ash.get(f"/referrals/{rid}").text
    for detail in (
        "Skyler",
        "Madeup",
        "999 000 0026",
        "07700 900123",
        "1 Example Street",
        "stabbed in left thigh",
    ):
        assert detail in page, detail
    with web.ctx.engine.connect() as conn:
        actions = (
            conn.execute(select(AUDIT.c.action).where(AUDIT.c.subject == rid).order_by(AUDIT.c.seq))
            .scalars()
            .all()
        )
    assert actions[-1] == AuditAction.VIEW_IDENTIFIABLE.value
    assert AuditAction.UNLOCK.value in actions


def test_identifiable_pages_keep_identifiers_out_of_titles_and_urls_and_are_not_cached(
    web: Web, ash
):
    rid = web.ed.stab_wound(patient=YOUNG)
    post(ash, f"/referrals/{rid}/claim")
    post(
        ash,
        f"/referrals/{rid}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="17",
    )
    reply = ash.get(f"/referrals/{rid}")
    title = re.search(r"<title>(.*?)</title>", reply.text).group(1)  # type: ignore[union-attr]
    assert title == "Referral \u2013 Referral gateway"
    # a tel: link dials the number (case page, once unlocked): no request carries it
    for url in (u for u in URLS.findall(reply.text) if not u.startswith("tel:")):
        for secret in ("Skyler", "Madeup", "9990000026", "07700"):
            assert secret not in url
    assert reply.headers["cache-control"] == "no-store"


def test_every_page_has_a_strict_content_security_policy_and_no_inline_script(web: Web, ash):
    rid = web.ed.stab_wound()
    for path in ("/sign-in", "/queue", f"/referrals/{rid}", "/referrals/new", "/follow-ups"):
        reply = ash.get(path)
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert not re.search(r"<script(?![^>]*\bsrc=)", reply.text), path
        assert not re.search(r"\son[a-z]+=|\sstyle=", reply.text), path
    assert ash.get("/static/queue.js").status_code == 200


def test_pages_have_landmarks_a_skip_link_and_labelled_fields(web: Web, ash):
    rid = web.ed.stab_wound()
    page = ash.get(f"/referrals/{rid}").text
    assert re.search(r'<a class="nhsuk-skip-link"[^>]*href="#maincontent"', page)
    assert re.search(r'<main class="nhsuk-main-wrapper[^"]*" id="maincontent"', page)
    assert re.search(r'<nav class="nhsuk-header__navigation"[^>]*aria-label="Main"', page)
    assert '<header class="nhsuk-header"' in page and '<footer class="nhsuk-footer"' in page
    labelled = set(re.findall(r'<label[^>]*\sfor="([^"]+)"', page))
    fields = re.findall(
        r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\sid="([^"]+)"', page
    )
    assert fields and set(fields) <= labelled


def test_contact_support_onward_and_closure_take_the_referral_to_its_follow_up(web: Web, ash):
    rid = web.ed.stab_wound()
    post(ash, f"/referrals/{rid}/claim")
    post(
        ash,
        f"/referrals/{rid}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="16",
    )
    local_now = web.clock().astimezone(web.ctx.options.zone)
    when = local_now.strftime("%Y-%m-%dT%H:%M")
    missing = post(ash, f"/referrals/{rid}/contacts", at=when)
    assert missing.status_code == 303
    assert "Choose face to face or phone." in ash.get(missing.headers["location"]).text
    assert (
        post(
            ash, f"/referrals/{rid}/contacts", at=when, method="face_to_face", outcome="engaged"
        ).status_code
        == 303
    )
    assert (
        post(
            ash, f"/referrals/{rid}/support", tier="long", start_on=local_now.date().isoformat()
        ).status_code
        == 303
    )
    assert (
        post(
            ash,
            f"/referrals/{rid}/onward",
            kind="signpost",
            service_type="sport_arts",
            on=local_now.date().isoformat(),
        ).status_code
        == 303
    )
    assert post(ash, f"/referrals/{rid}/notes", note="Keen on boxing club").status_code == 303
    no_outcome = post(ash, f"/referrals/{rid}/close")
    assert no_outcome.status_code == 303
    assert "Choose the outcome of the referral before closing it." in (
        ash.get(no_outcome.headers["location"]).text
    )
    asked = post(ash, f"/referrals/{rid}/close", outcome="support_completed")
    assert asked.headers["location"] == f"/referrals/{rid}/close?outcome=support_completed"
    closed = post(ash, f"/referrals/{rid}/close", outcome="support_completed", confirmed="yes")
    assert closed.headers["location"] == f"/referrals/{rid}?done=closed"
    page = ash.get(f"/referrals/{rid}").text
    for fact in (
        "Face to face, spoke, and they engaged",
        "Long (up to 12 weeks)",
        "Signposted to sport and arts",
        "Keen on boxing club",
        "Support completed",
    ):
        assert fact.lower() in page.lower(), fact
    later = ash.get("/follow-ups").text  # listed from the start, as coming later
    assert rid in later[later.index('id="follow-ups-later"') :]
    web.clock.advance(days=170)  # due in 14 days: listed as due soon
    ash = web.signed_in("ash")
    ash.token = lambda page="/queue": web.token(ash, page)
    soon = ash.get("/follow-ups").text
    assert rid in soon[soon.index('id="follow-ups-soon"') :]
    assert (
        post(ash, f"/referrals/{rid}/follow-up", outcome="reached_no_further_need").status_code
        == 303
    )
    assert rid not in ash.get("/follow-ups").text


def test_a_team_lead_sees_escalations_and_assigns_from_the_queue(web: Web):
    web.account("lead", Role.TEAM_LEAD, (SITE_A,))
    birch = web.account("birch", Role.YOUTH_WORKER, (SITE_A,))
    web.account("far", Role.YOUTH_WORKER, (SITE_B,))
    rid = web.ed.stab_wound()
    lead = web.signed_in("lead")
    assert "Unclaimed: escalated" not in lead.get("/queue").text
    web.clock.advance(minutes=21)
    queue = lead.get("/queue").text
    assert "Unclaimed: escalated" in queue
    assert "1 referral unclaimed for over 20 minutes." in queue
    assert "Birch" in queue and "Far" not in queue  # only workers of the site to choose from
    reply = lead.post(
        f"/referrals/{rid}/assign",
        data={"assignee": birch.id, "back": "queue", "csrf_token": web.token(lead, "/queue")},
        follow_redirects=False,
    )
    assert reply.headers["location"] == "/queue?done=assigned"
    assert (
        "Claimed by" in lead.get("/queue").text
        and "Unclaimed: escalated" not in lead.get("/queue").text
    )


def test_a_manual_referral_for_an_exploitation_concern_joins_the_queue(web: Web, ash):
    local = web.clock().astimezone(web.ctx.options.zone) - timedelta(minutes=40)
    refused = post(ash, "/referrals/new", concern="exploitation")
    assert refused.status_code == 422
    assert "Enter the date of birth, or the age in years" in refused.text
    reply = post(
        ash,
        "/referrals/new",
        site=SITE_A,
        ed_area="Paeds ED",
        bay="3",
        arrival=local.strftime("%Y-%m-%dT%H:%M"),
        concern="exploitation",
        age="14",
        sex="female",
        referrer="ED nurse in charge",
        given_names="Casey",
        family_name="Sampleford",
    )
    assert reply.status_code == 303
    rid = reply.headers["location"].split("/")[2].split("?")[0]
    queue = ash.get("/queue").text
    assert rid in queue and "Exploitation concern" in queue and "Manual" in queue
    assert "Sampleford" not in queue


def test_the_overview_shows_suppressed_counts(web: Web):
    web.account("prog", Role.PROGRAMME_LEAD, (SITE_A,))
    for _ in range(3):
        web.ed.stab_wound()
    page = web.signed_in("prog").get("/overview").text
    # the NHS.UK responsive table: each cell carries its column's heading for a phone
    site_row = rf'scope="row"[^>]*>\s*<span[^>]*>Site </span>{SITE_A}\s*</th>(.*?)</tr>'
    row = re.search(site_row, page, re.S).group(1)  # type: ignore[union-attr]
    first = re.findall(r"<td[^>]*>\s*<span[^>]*>([^<]*)</span>([^<]*?)\s*</td>", row)[0]
    assert first == ("New ", "*")  # 3 new referrals: shown as *


def test_an_administrator_adds_an_account_and_sees_what_was_wrong_first(web: Web):
    web.account("admin", Role.ADMINISTRATOR, ())
    admin = web.signed_in("admin")
    bad = admin.post(
        "/admin/users",
        data={
            "username": "x",
            "role": "youth_worker",
            "password": "short",
            "csrf_token": web.token(admin, "/admin/users"),
        },
    )
    assert bad.status_code == 422 and "at least 12 characters" in bad.text
    good = admin.post(
        "/admin/users",
        data={
            "username": "new.worker",
            "role": "youth_worker",
            "sites": SITE_A,
            "password": "a long enough secret",
            "csrf_token": web.token(admin, "/admin/users"),
        },
    )
    assert good.status_code == 200 and "new.worker" in good.text
