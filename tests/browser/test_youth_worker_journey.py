"""A youth worker's evening on a phone, in a real browser against the real gateway: sign in,
watch a stabbed sixteen-year-old appear on the queue as the ED registers him over MLLP (no
reload), see his discharge and its undoing (A03, A13) arrive the same way, claim, record
consent (after a mistake the form explains), see the details unlock, log a face-to-face
contact, close with an outcome. Each page passes axe-core's WCAG A/AA checks."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from consent.policy import Role
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS, SITE, Stack, sign_in
from tests.spine.harness import msa
from tests.web.builders import add_account

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


def test_a_candidate_appears_live_and_is_worked_to_closure_on_a_phone(stack: Stack, phone, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = phone
    sign_in(page, stack.url)
    assert page.locator("h1").inner_text() == "My caseload"  # nothing of hers yet
    tabs = page.get_by_role("navigation", name="Queue views")
    tabs.get_by_role("link", name="New").click()  # the tabs are links
    page.wait_for_url(stack.url + "/queue?tab=new")
    page.wait_for_selector("#queue[data-live='on']")  # the live stream is open
    assert "0 referrals" in page.inner_text("#queue")
    page.evaluate("window.stillTheSamePage = true")

    now = datetime.now(UTC).replace(microsecond=0)
    visit = stabbed_sixteen_year_old(now)
    mllp = MllpClient("127.0.0.1", stack.mllp_port)
    ack = mllp.send(adt("A01", visit, "CTRL-WEB-1", sent=now))
    assert msa(ack) == ("AA", "CTRL-WEB-1")

    card = page.locator("article.nhsuk-card")
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
        page.locator("article.nhsuk-card .nhsuk-tag", has_text="Discharged").wait_for()
        assert "left the department" in page.inner_text("#live-status")
        assert msa(mllp.send(adt("A13", visit, "CTRL-WEB-3", sent=now)))[0] == "AA"
        page.locator("article.nhsuk-card .nhsuk-tag", has_text="In department").wait_for()
    assert page.evaluate("window.stillTheSamePage") is True

    card.get_by_role("button", name="Claim").click()
    page.wait_for_url("**/referrals/*?done=claimed")
    assert "Claimed by Ash" in page.inner_text("main")
    assert "Locked." in page.inner_text("#identity")
    assert_accessible(page, "a claimed referral, details locked")

    case_url = page.url.split("?")[0]
    # a mistake first: the browser comes back to the case page, onto the error summary
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url(case_url + "#error-summary")
    summary = page.locator("#error-summary")
    assert "Choose the outcome of the approach." in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert in_viewport(page, "#error-summary")
    assert page.url.split("#")[0] == case_url  # the case page's own address, not the POST's
    no_sideways_scroll(page)
    assert_accessible(page, "the consent form with an error")
    summary.get_by_role("link", name="Choose the outcome of the approach.").click()
    assert page.evaluate("document.activeElement.id") == "consent-outcome"

    # only the chosen outcome's fields show
    override_reason = page.get_by_label("Safeguarding reason")
    giver = page.get_by_label("The young person (aged 16 or over)")
    assert not giver.is_visible() and not override_reason.is_visible()
    page.get_by_label("Consent given").check()
    assert giver.is_visible() and not override_reason.is_visible()
    giver.check()
    assert page.get_by_label("Young person's age in years").input_value() == "16"
    assert_accessible(page, "the consent form, consent given chosen")
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url("**?done=consent")
    identity = page.inner_text("#identity")
    for detail in (
        "Sam",
        "Testington",
        "999 000 0026",
        "1 Example Street",
        "stabbed in left thigh",
    ):
        assert detail in identity, detail
    assert "Testington" not in page.title() and "Testington" not in page.url
    assert_accessible(page, "a consented referral, details unlocked")

    page.get_by_text("Log a contact attempt").click()  # folded away until wanted
    page.get_by_label("Face to face").check()
    page.get_by_label("What happened").select_option("engaged")
    page.get_by_role("button", name="Log the contact attempt").click()
    page.wait_for_url("**?done=contact")
    assert "face to face, spoke, and they engaged" in page.inner_text("main").lower()

    page.locator("#close summary").click()
    page.get_by_label("Outcome").select_option("support_completed")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/close?outcome=support_completed")  # asked to confirm first
    assert "Support completed" in page.inner_text("main")
    no_sideways_scroll(page)
    assert_accessible(page, "the confirm step before closing")
    page.get_by_role("button", name="Yes, close the referral").click()
    page.wait_for_url("**?done=closed")
    main = page.inner_text("main")
    assert "Referral closed." in main and "Six-month follow-up due" in main
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "referral-phone-360.png"), full_page=True)
    assert_accessible(page, "a closed referral")

    # a team lead, on their own phone, reopens it (the worker sees no such button)
    assert page.get_by_role("button", name="Reopen the referral").count() == 0
    add_account(
        stack.web.accounts,
        "lee",
        Role.TEAM_LEAD,
        (SITE,),
        display_name="Lee",
        now=stack.running.gateway.clock(),
    )
    lead_context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    lead = lead_context.new_page()
    lead.set_default_timeout(10_000)
    sign_in(lead, stack.url, "lee")
    lead.goto(case_url)
    lead.get_by_role("button", name="Reopen the referral").click()
    lead.wait_for_url("**?done=reopened")
    assert "Consented" in lead.inner_text(".badges")
    no_sideways_scroll(lead)
    assert_accessible(lead, "a reopened referral, as its team lead")
    lead_context.close()

    page.get_by_role("link", name="Follow-ups").click()  # nothing due now it is open again
    page.wait_for_url("**/follow-ups")
    assert "No follow-ups to do." in page.inner_text("main")
    no_sideways_scroll(page)
    assert_accessible(page, "the follow-ups page")

    with stack.web.engine.connect() as conn:
        actions = [e.action.value for e in stack.running.gateway.audit.entries(conn)]
    assert "unlock" in actions and "view_identifiable" in actions


def in_viewport(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    box = page.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
        " return [r.top, r.bottom, window.innerHeight]; }",
        selector,
    )
    top, bottom, height = box
    return top >= 0 and top < height and bottom > 0


def no_sideways_scroll(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"


@pytest.fixture
def phone_without_javascript(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def checker(phone, stack: Stack):  # type: ignore[no-untyped-def]
    """A 360 px page with JavaScript, to run axe and measure a page served to a browser
    without it (Playwright cannot evaluate scripts where JavaScript is off)."""

    def check(page, what: str) -> None:  # type: ignore[no-untyped-def]
        html = re.sub(r"<script[^>]*>.*?</script>", "", page.content(), flags=re.S)
        phone.goto(stack.url + "/sign-in")  # the gateway's origin, for its style sheet
        phone.set_content(html)
        no_sideways_scroll(phone)
        assert_accessible(phone, what)

    return check


def on_screen(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the element's top is within the 740 px viewport (no script needed); a fragment
    scrolls it to a fraction of a pixel above the top (NHS.UK spacing is in rem)."""
    box = page.locator(selector).bounding_box()
    return box is not None and -1 < box["y"] < 740


def test_without_javascript_the_consent_form_comes_in_steps_and_lands_on_its_errors(
    stack: Stack, phone_without_javascript, checker
):
    page = phone_without_javascript
    sign_in(page, stack.url)
    now = datetime.now(UTC).replace(microsecond=0)
    ack = MllpClient("127.0.0.1", stack.mllp_port).send(
        adt("A01", stabbed_sixteen_year_old(now), "CTRL-NOJS-1", sent=now)
    )
    assert msa(ack) == ("AA", "CTRL-NOJS-1")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # no live updates without JavaScript: reloads
        page.goto(stack.url + "/queue?tab=new")  # unclaimed: on New, not her caseload
        if page.locator("article.nhsuk-card").count():
            break
        time.sleep(0.25)
    page.locator("article.nhsuk-card").get_by_role("button", name="Claim").click()
    page.wait_for_url("**/referrals/*?done=claimed")
    case_url = page.url.split("?")[0]

    giver = page.get_by_label("The young person (aged 16 or over)")
    reason = page.get_by_label("Safeguarding reason")
    assert not giver.is_visible() and not reason.is_visible()  # no outcome chosen yet
    page.get_by_label("Consent given").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(case_url + "?outcome=given#consent")
    assert giver.is_visible() and not reason.is_visible()  # that outcome's fields only
    checker(page, "the consent form's second step, without JavaScript")

    page.get_by_label("Young person's age in years").fill("")
    page.get_by_role("button", name="Record the outcome").click()  # who, and the age, missing
    page.wait_for_url(case_url + "#error-summary")
    assert on_screen(page, "#error-summary")  # the fragment brings it into view
    summary = page.inner_text("#error-summary")
    assert "Choose who gave consent." in summary
    assert "Enter the young person's age in years." in summary
    assert giver.is_visible()  # still the chosen outcome's fields, with their messages
    checker(page, "the consent form with errors, without JavaScript")

    giver.check()
    page.get_by_label("Young person's age in years").fill("16")
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url("**?done=consent")
    assert "999 000 0026" in page.inner_text("#identity")
