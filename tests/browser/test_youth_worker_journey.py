"""A youth worker's evening on a phone, in a real browser against the real gateway: sign in,
watch a stabbed sixteen-year-old appear on the queue as the ED registers him over MLLP (no
reload), see his discharge and its undoing (A03, A13) arrive the same way, claim, record
consent (after a mistake the form explains), see the details unlock, log a face-to-face
contact, close with an outcome. Each page passes axe-core's WCAG A/AA checks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS, SITE, Stack, sign_in
from tests.spine.harness import msa

pytestmark = pytest.mark.browser


def stabbed_sixteen_year_old(now: datetime) -> Visit:
    # ADT A01 with a stab wound complaint: what the feed must turn into a candidate
    return Visit(
        person=Person(
            mrn="MRN0042001",
            nhs_number="9990000026",
            family="Testington",
            given="Sam",
            birth_date=date(now.year - 16, 1, 2),
            sex="M",
        ),
        visit_number="V0042001",
        site=SITE,
        arrival=now,
        area="MAJORS",
        bay="B7",
        complaint="stabbed in left thigh",
    )


def test_a_candidate_appears_live_and_is_worked_to_closure_on_a_phone(stack: Stack, phone):
    ARTIFACTS.mkdir(exist_ok=True)
    page = phone
    sign_in(page, stack.url)
    page.wait_for_selector("#queue[data-live='on']")  # the live stream is open
    assert "0 referrals" in page.inner_text("#queue")
    page.evaluate("window.stillTheSamePage = true")

    now = datetime.now(UTC).replace(microsecond=0)
    visit = stabbed_sixteen_year_old(now)
    mllp = MllpClient("127.0.0.1", stack.mllp_port)
    ack = mllp.send(adt("A01", visit, "CTRL-WEB-1", sent=now))
    assert msa(ack) == ("AA", "CTRL-WEB-1")

    card = page.locator("article.card")
    card.wait_for()  # within the default 10 s, without a reload
    assert page.evaluate("window.stillTheSamePage") is True
    text = card.inner_text()
    for fact in ("MAJORS, bay B7", "16", "Male", "Bladed", "In department", "New"):
        assert fact in text, fact
    assert "Testington" not in page.content()
    assert "1 new referral" in page.inner_text("#live-status")
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "queue-phone-360.png"), full_page=True)
    assert_accessible(page, "the queue with a card")

    # the ED discharges him, then undoes it (A13): the card follows, still without a reload
    with mllp:
        assert msa(mllp.send(adt("A03", visit, "CTRL-WEB-2", sent=now, discharge=now)))[0] == "AA"
        page.locator("article.card .badge", has_text="Discharged").wait_for()
        assert "left the department" in page.inner_text("#live-status")
        assert msa(mllp.send(adt("A13", visit, "CTRL-WEB-3", sent=now)))[0] == "AA"
        page.locator("article.card .badge", has_text="In department").wait_for()
    assert page.evaluate("window.stillTheSamePage") is True

    card.get_by_role("button", name="Claim").click()
    page.wait_for_url("**/referrals/*?done=claimed")
    assert "Claimed by Ash" in page.inner_text("main")
    assert "Locked." in page.inner_text("#identity")
    assert_accessible(page, "a claimed referral, details locked")

    # a mistake first: the form says what to do, next to the field
    page.get_by_role("button", name="Record the outcome").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "Choose the outcome of the approach." in summary.inner_text()
    summary.get_by_role("link", name="Choose the outcome of the approach.").click()
    assert page.evaluate("document.activeElement.id") == "consent-outcome"
    assert_accessible(page, "the consent form with an error")

    page.get_by_label("Consent given").check()
    page.get_by_label("The young person (aged 16 or over)").check()
    assert page.get_by_label("Young person's age in years").input_value() == "16"
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url("**?done=consent")
    identity = page.inner_text("#identity")
    for detail in ("Sam", "Testington", "9990000026", "1 Example Street", "stabbed in left thigh"):
        assert detail in identity, detail
    assert "Testington" not in page.title() and "Testington" not in page.url
    assert_accessible(page, "a consented referral, details unlocked")

    page.get_by_label("Face to face").check()
    page.get_by_label("What happened").select_option("engaged")
    page.get_by_role("button", name="Log the contact attempt").click()
    page.wait_for_url("**?done=contact")
    assert "face to face, spoke, and they engaged" in page.inner_text("main").lower()

    page.get_by_label("Outcome").select_option("support_completed")
    page.get_by_role("button", name="Close the referral").click()
    page.wait_for_url("**?done=closed")
    main = page.inner_text("main")
    assert "Referral closed." in main and "Six-month follow-up due" in main
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "referral-phone-360.png"), full_page=True)
    assert_accessible(page, "a closed referral")

    with stack.web.engine.connect() as conn:
        actions = [e.action.value for e in stack.running.gateway.audit.entries(conn)]
    assert "unlock" in actions and "view_identifiable" in actions


def no_sideways_scroll(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"
