"""A youth worker's case page, through HTTP: a refused form comes back to the case page's own
address (post/redirect/get) with its error summary and what was typed, kept server-side for
that session only; the consent form in steps; reasons, NHS numbers and phone numbers as a
person reads them; closing with a confirmation; a team lead reopening."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from consent.audit import AuditAction
from consent.policy import Role
from referral_gateway.storage.audit_store import AUDIT
from referral_gateway.storage.casework import CASES
from referral_gateway.storage.form_flash import FORM_FLASH
from tests.web.builders import SITE_A, Patient
from tests.web.conftest import Web, build_web, csrf_of
from tests.web.live import LiveServer

YOUNG = Patient(given="Skyler", family="Madeup", nhs_number="9990000026", age=17)


@pytest.fixture
def ash(web: Web):  # type: ignore[no-untyped-def]
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    return web.signed_in("ash")


def send(client, rid: str, action: str, **data: str):  # type: ignore[no-untyped-def]
    """Post one of the case page's forms, as the page would (with its CSRF token)."""
    token = csrf_of(client.get(f"/referrals/{rid}").text)
    return client.post(
        f"/referrals/{rid}/{action}", data=data | {"csrf_token": token}, follow_redirects=False
    )


def claimed_and_consented(web: Web, client, patient: Patient | None = None) -> str:  # type: ignore[no-untyped-def]
    rid = web.ed.stab_wound(patient=patient)
    assert send(client, rid, "claim").status_code == 303
    reply = send(
        client,
        rid,
        "consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="16",
        fields_for="given",
    )
    assert reply.headers["location"].endswith("?done=consent"), reply.headers["location"]
    return rid


# -- 1. a refused form: back to the case page, onto its error summary ---------------------------


def test_a_refused_consent_form_sends_the_browser_back_to_the_case_page_error_summary(
    web: Web, ash
):
    rid = web.ed.stab_wound()
    reply = send(ash, rid, "consent", giver="young_person_16_plus")
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/referrals/{rid}#error-summary"
    page = ash.get(f"/referrals/{rid}")
    assert page.status_code == 200
    summary = re.search(r'<div class="nhsuk-error-summary[^>]*id="error-summary"[^>]*>', page.text)
    assert summary and 'tabindex="-1"' in summary.group(0)
    assert re.search(
        r'<a href="#consent-outcome">\s*Choose the outcome of the approach.\s*</a>', page.text
    )
    assert 'id="consent-outcome-error"' in page.text
    assert 'aria-describedby="consent-outcome-error"' in page.text
    assert page.text.count('id="error-summary"') == 1


def test_every_refused_case_form_redirects_instead_of_rendering_at_its_post_address(web: Web, ash):
    rid = claimed_and_consented(web, ash)
    for action in ("contacts", "support", "onward", "notes", "close", "release", "follow-up"):
        confirmed = {"confirmed": "yes"} if action == "close" else {}  # past the confirm step
        reply = send(ash, rid, action, **confirmed)
        assert reply.status_code == 303, action
        assert reply.headers["location"] == f"/referrals/{rid}#error-summary", action
        assert 'id="error-summary"' in ash.get(f"/referrals/{rid}").text, action


def test_what_was_typed_comes_back_once_and_never_in_the_url(web: Web, ash):
    rid = web.ed.stab_wound()
    reply = send(
        ash,
        rid,
        "consent",
        outcome="safeguarding_override",
        fields_for="safeguarding_override",
        authoriser_name="Dr Imaginary Fictionperson",
        authoriser_role="Named nurse",
    )
    assert "Fictionperson" not in reply.headers["location"]
    page = ash.get(f"/referrals/{rid}").text
    assert 'value="Dr Imaginary Fictionperson"' in page
    assert "Enter the safeguarding reason for sharing without consent." in page
    again = ash.get(f"/referrals/{rid}").text  # a reload: the form starts afresh
    assert "Fictionperson" not in again and 'id="error-summary"' not in again


def test_a_refused_form_is_kept_for_its_own_session_only_and_for_minutes(web: Web, ash):
    web.account("birch", Role.YOUTH_WORKER, (SITE_A,))
    birch = web.signed_in("birch")
    rid = web.ed.stab_wound()
    override = {"outcome": "safeguarding_override", "fields_for": "safeguarding_override"}
    send(ash, rid, "consent", **override, authoriser_name="Dr Imaginary")
    assert "Dr Imaginary" not in birch.get(f"/referrals/{rid}").text
    assert "Dr Imaginary" in ash.get(f"/referrals/{rid}").text

    send(ash, rid, "consent", **override, authoriser_name="Dr Imaginary")
    web.clock.advance(minutes=6)  # the session is still open (30 minutes idle)
    page = ash.get(f"/referrals/{rid}").text
    assert "Dr Imaginary" not in page and 'id="error-summary"' not in page


def test_a_refused_form_waits_encrypted_and_another_gateway_instance_can_answer_the_get(
    web: Web, ash, keyring
):
    rid = web.ed.stab_wound()
    override = {"outcome": "safeguarding_override", "fields_for": "safeguarding_override"}
    send(ash, rid, "consent", **override, authoriser_name="Dr Imaginary Fictionperson")
    with web.ctx.engine.connect() as conn:
        stored = conn.execute(select(FORM_FLASH.c.payload_enc)).scalars().all()
    assert len(stored) == 1 and b"Fictionperson" not in stored[0]
    other = build_web(web.ctx.engine, keyring, web.clock)  # a second gateway, same database
    other_client = other.client(cookies={"rg_session": ash.cookies.get("rg_session")})
    page = other_client.get(f"/referrals/{rid}").text
    assert 'value="Dr Imaginary Fictionperson"' in page and 'id="error-summary"' in page


# -- 2. the consent form shows only the chosen outcome's fields ---------------------------------

HIDDEN = "nhsuk-radios__conditional--hidden"


def shown_blocks(page: str) -> set[str]:
    """The consent outcomes whose own fields are on screen."""
    blocks = re.findall(
        r'<div class="nhsuk-radios__conditional([^"]*)" id="consent-when-(\w+)"', page
    )
    return {outcome for classes, outcome in blocks if HIDDEN not in classes}


def test_before_an_outcome_is_chosen_no_outcome_fields_show_and_the_button_continues(web: Web, ash):
    rid = web.ed.stab_wound()
    page = ash.get(f"/referrals/{rid}").text
    assert shown_blocks(page) == set()
    assert 'id="consent-when-given"' in page  # there for the script to reveal
    assert re.search(r'id="consent-action"[^>]*>Continue</button>', page)


def test_without_javascript_choosing_an_outcome_first_brings_its_fields_only(web: Web, ash):
    rid = web.ed.stab_wound()
    step = send(ash, rid, "consent", outcome="given", fields_for="")  # none on screen
    assert step.status_code == 303
    assert step.headers["location"] == f"/referrals/{rid}?outcome=given#consent"
    page = ash.get(step.headers["location"]).text
    assert shown_blocks(page) == {"given"}
    assert 'name="fields_for" value="given"' in page
    assert re.search(r'id="consent-action"[^>]*>Record the outcome</button>', page)
    done = send(
        ash,
        rid,
        "consent",
        outcome="given",
        fields_for="given",
        giver="young_person_16_plus",
        young_person_age="16",
    )
    assert done.headers["location"] == f"/referrals/{rid}?done=consent"


def test_a_refused_outcome_comes_back_with_only_its_own_fields(web: Web, ash):
    rid = web.ed.stab_wound()
    send(ash, rid, "consent", outcome="not_approached", fields_for="not_approached")
    page = ash.get(f"/referrals/{rid}").text
    assert shown_blocks(page) == {"not_approached"}
    assert "Choose why the young person was not approached." in page
    assert shown_blocks(ash.get(f"/referrals/{rid}?outcome=nonsense").text) == set()


def test_fields_of_an_outcome_not_chosen_are_not_recorded(web: Web, ash):
    rid = web.ed.stab_wound()
    reply = send(
        ash,
        rid,
        "consent",
        outcome="declined",
        giver="parent_guardian",  # typed under "consent given", then the worker changed their mind
        override_reason="typed under the override, then hidden",
    )
    assert reply.headers["location"] == f"/referrals/{rid}?done=consent"
    page = ash.get(f"/referrals/{rid}").text
    assert "<strong>Declined</strong>, recorded by" in page


def test_the_case_page_comes_in_the_sections_a_worker_needs(web: Web, ash):
    rid = claimed_and_consented(web, ash)
    page = ash.get(f"/referrals/{rid}").text
    nav = page[page.index('aria-label="Sections of this referral"') :].split("</nav>")[0]
    links = re.findall(r'href="#(\w+)"', nav)
    assert links == ["approach", "consent", "contacts", "support", "notes", "close"]
    for section in links:
        assert f'<section aria-labelledby="{section}' in page or f'id="{section}"' in page
    # the forms after the approach are folded away until wanted
    assert re.search(
        r'<details class="nhsuk-details case-form">\s*<summary[^>]*>'
        r"<span[^>]*>Log a contact attempt",
        page,
    )


# -- 3. reasons, NHS numbers and phone numbers as a person reads them --------------------------


def test_the_case_page_says_why_in_plain_words(web: Web, ash):
    rid = web.ed.stab_wound(codes=("425322008",), text=("punched to face",))
    page = ash.get(f"/referrals/{rid}").text
    why = page[page.index("Why on the queue") :].split("</dd>")[0]
    assert "The ED coded it as stab wound (SNOMED CT 425322008)" in why
    assert "The triage note says &#39;punched&#39;" in why
    assert "(implied code)" not in why and "body_part" not in why


def test_once_unlocked_the_nhs_number_is_spaced_and_the_phone_dials(web: Web, ash):
    rid = claimed_and_consented(web, ash, YOUNG)
    page = ash.get(f"/referrals/{rid}").text
    assert '<dd class="pii">999 000 0026</dd>' in page
    assert '<a href="tel:07700900123">07700 900123</a>' in page


def test_before_consent_neither_number_is_on_the_page(web: Web, ash):
    rid = web.ed.stab_wound(patient=YOUNG)
    page = ash.get(f"/referrals/{rid}").text
    assert "tel:" not in page and "999 000 0026" not in page and "9990000026" not in page


# -- 4. closing asks first; a team lead reopens; follow-ups ahead and early ---------------------


def closed_case(web: Web, client) -> str:  # type: ignore[no-untyped-def]
    rid = claimed_and_consented(web, client)
    reply = send(client, rid, "close", outcome="support_completed", confirmed="yes")
    assert reply.headers["location"] == f"/referrals/{rid}?done=closed"
    return rid


def reopens_audited(web: Web, rid: str) -> list[str]:
    with web.ctx.engine.connect() as conn:
        return list(
            conn.execute(
                select(AUDIT.c.actor).where(
                    AUDIT.c.subject == rid, AUDIT.c.action == AuditAction.CASE_REOPENED.value
                )
            ).scalars()
        )


def closed_at(web: Web, rid: str) -> object:
    with web.ctx.engine.connect() as conn:
        return conn.execute(
            select(CASES.c.closed_at).where(CASES.c.referral_id == rid)
        ).scalar_one()


def test_the_close_form_asks_for_confirmation_before_anything_closes(web: Web, ash):
    rid = claimed_and_consented(web, ash)
    page = ash.get(f"/referrals/{rid}").text
    assert f'<form method="get" action="/referrals/{rid}/close"' in page
    confirm = ash.get(f"/referrals/{rid}/close?outcome=support_completed")
    assert confirm.status_code == 200
    assert "Close this referral?" in confirm.text and "Support completed" in confirm.text
    assert 'name="confirmed" value="yes"' in confirm.text
    assert closed_at(web, rid) is None  # asking closed nothing
    unconfirmed = send(ash, rid, "close", outcome="support_completed")
    assert unconfirmed.headers["location"] == f"/referrals/{rid}/close?outcome=support_completed"
    assert closed_at(web, rid) is None
    done = send(ash, rid, "close", outcome="support_completed", confirmed="yes")
    assert done.headers["location"] == f"/referrals/{rid}?done=closed"
    assert closed_at(web, rid) is not None


def test_the_confirm_step_without_an_outcome_returns_to_the_case_page_error(web: Web, ash):
    rid = claimed_and_consented(web, ash)
    reply = ash.get(f"/referrals/{rid}/close?outcome=", follow_redirects=False)
    assert reply.headers["location"] == f"/referrals/{rid}#error-summary"
    page = ash.get(f"/referrals/{rid}").text
    assert re.search(
        r'<a href="#close-outcome">\s*Choose the outcome of the referral before closing it.\s*</a>',
        page,
    )
    assert re.search(
        r"<details class=\"nhsuk-details case-form\" open>\s*<summary[^>]*>"
        r"<span[^>]*>Close the referral",
        page,
    )


def test_a_team_lead_reopens_a_closed_referral_and_the_reopening_is_audited(web: Web, ash):
    lead_user = web.account("lead", Role.TEAM_LEAD, (SITE_A,))
    lead = web.signed_in("lead")
    rid = closed_case(web, ash)
    assert "Reopen the referral" not in ash.get(f"/referrals/{rid}").text
    assert "Reopen the referral" in lead.get(f"/referrals/{rid}").text
    reply = send(lead, rid, "reopen")
    assert reply.headers["location"] == f"/referrals/{rid}?done=reopened"
    page = ash.get(f"/referrals/{rid}").text
    assert "Consented" in page and "Log a contact attempt" in page
    assert closed_at(web, rid) is None
    assert reopens_audited(web, rid) == [lead_user.id]
    again = send(lead, rid, "reopen")  # it is open now
    assert again.headers["location"] == f"/referrals/{rid}#error-summary"
    assert "Only a closed referral can be reopened." in lead.get(f"/referrals/{rid}").text


@pytest.fixture
def live(web: Web) -> Iterator[LiveServer]:
    server = LiveServer(web.app).start()
    yield server
    server.stop()


def test_a_youth_worker_posting_reopen_over_http_is_refused_by_the_server(
    web: Web, ash, live: LiveServer
):
    rid = closed_case(web, ash)
    token = csrf_of(ash.get(f"/referrals/{rid}").text)
    cookie = ash.cookies.get("rg_session")
    with httpx.Client(base_url=live.url, cookies={"rg_session": cookie}, timeout=5) as http:
        reply = http.post(f"/referrals/{rid}/reopen", data={"csrf_token": token})
        assert reply.status_code == 303
        assert reply.headers["location"] == f"/referrals/{rid}#error-summary"
        page = http.get(f"/referrals/{rid}").text
    assert "Only a team lead can reopen a closed referral." in page
    assert closed_at(web, rid) is not None and reopens_audited(web, rid) == []


def test_follow_ups_list_the_coming_ones_and_one_is_recorded_early(web: Web, ash):
    rid = closed_case(web, ash)
    listing = ash.get("/follow-ups").text
    assert rid in listing[listing.index('id="follow-ups-later"') :]
    assert f'href="/referrals/{rid}#close"' in listing
    page = ash.get(f"/referrals/{rid}").text
    assert "Record the follow-up" in page  # months before it is due
    done = send(ash, rid, "follow-up", outcome="reached_no_further_need")
    assert done.headers["location"] == f"/referrals/{rid}?done=follow_up"
    assert rid not in ash.get("/follow-ups").text
