"""Every role's shift on a phone, in Chromium at 360x740 against the real gateway: each page a
youth worker, a team lead, an administrator and a programme lead can reach (following every
link from their start page) fits without sideways scrolling, and axe checks each (the
`phone` fixture runs it on every page loaded). A youth worker's consented case stays in "My
caseload"; a consent form sent after the session idled out survives signing in again; the
idle warning's "Stay signed in" keeps the session."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from consent.policy import Role
from referral_gateway.storage.accounts import SESSIONS
from referral_gateway.storage.attendances import REFERRAL
from tests.browser.conftest import SITE, Stack, sign_in, start_stack
from tests.browser.test_pages_fit_a_phone import SIDEWAYS
from tests.browser.test_youth_worker_journey import stabbed_sixteen_year_old
from tests.spine.harness import msa
from tests.web.builders import PASSWORD, add_account

pytestmark = pytest.mark.browser

LINKS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href'))"
# not pages: files, machine routes, the API docs (their scripts come from elsewhere)
NOT_PAGES = re.compile(
    r"^/(static|docs|redoc|openapi|sw\.js|manifest|metrics|api/|fhir|health)"
    r"|download|\.(csv|json|html|pdf)(\?|$)"
)
MOST_PAGES = 40
# what scrolls sideways (as SIDEWAYS), except the published report's data tables in a
# labelled, keyboard-scrollable region: two-dimensional data, which WCAG 1.4.10 (reflow)
# exempts; the page around them must still fit
SIDEWAYS_BUT_REPORT_TABLES = """() => {
  const wide = [];
  if (document.documentElement.scrollWidth > window.innerWidth) wide.push("page");
  for (const el of document.querySelectorAll("body *")) {
    const x = getComputedStyle(el).overflowX;
    const reportTable = el.matches("[role=region][tabindex='0']") &&
      el.querySelector("table.figures") !== null;
    if ((x === "auto" || x === "scroll") && el.scrollWidth > el.clientWidth + 1 &&
        !reportTable) {
      wide.push(el.tagName + "." + el.className);
    }
  }
  return wide;
}"""


def a_referral(stack: Stack) -> str:
    """A stabbed sixteen-year-old registered over MLLP; the new referral's id."""
    now = datetime.now(UTC).replace(microsecond=0)
    with MllpClient("127.0.0.1", stack.mllp_port) as mllp:
        ack = mllp.send(adt("A01", stabbed_sixteen_year_old(now), "CTRL-ROLES-1", sent=now))
    assert msa(ack)[0] == "AA"
    for _ in range(200):  # the pipeline runs on its own thread
        with stack.web.engine.connect() as conn:
            rid = conn.execute(select(REFERRAL.c.id)).scalar()
        if rid:
            return str(rid)
        time.sleep(0.05)
    raise AssertionError("no referral from the A01")


def sign_in_as(page, stack: Stack, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(stack.url + "/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def every_page_fits(page, base: str, start: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Follow every link of this site from `start` (breadth first); each page must fit."""
    seen: list[str] = []
    wide: list[str] = []
    failed: list[str] = []  # a link of this site that leads to an error
    todo = list(start)
    while todo and len(seen) < MOST_PAGES:
        path = todo.pop(0)
        response = page.goto(base + path)
        seen.append(path)
        if path != "/no-such-page" and not (response and response.ok):
            failed.append(f"{path}: {response.status if response else 'no answer'}")
        if scrolling := page.evaluate(SIDEWAYS_BUT_REPORT_TABLES):
            wide.append(f"{path}: {scrolling}")
        for href in page.evaluate(LINKS):
            if (
                href.startswith("/")
                and not href.startswith("//")
                and not NOT_PAGES.search(href)
                and href not in seen
                and href not in todo
            ):
                todo.append(href)
    assert not failed, "links to an error:\n" + "\n".join(failed)
    assert not wide, "scrolls sideways on a phone:\n" + "\n".join(wide)
    return seen


@pytest.fixture
def worked(stack: Stack) -> Iterator[tuple[Stack, str]]:
    """The stack with a referral claimed by youth worker "ash", and a colleague of each
    other role."""
    now = stack.running.gateway.clock()
    accounts = stack.web.accounts
    add_account(accounts, "lee", Role.TEAM_LEAD, (SITE,), display_name="Lee", now=now)
    add_account(accounts, "admin", Role.ADMINISTRATOR, (), now=now)
    add_account(accounts, "pat", Role.PROGRAMME_LEAD, (SITE,), display_name="Pat", now=now)
    rid = a_referral(stack)
    ash = accounts.by_username("ash")
    assert ash is not None
    assert stack.web.casework.claim(ash, rid) is None
    yield stack, rid


@pytest.mark.parametrize(
    ("username", "must_see"),
    [
        (
            "ash",
            {"/queue", "/queue?tab=new", "/queue?tab=all", "/follow-ups", "/alerts", "REFERRAL"},
        ),
        ("lee", {"/queue", "/team", "/overview", "/referrals/new", "REFERRAL"}),
        ("admin", {"/admin/users", "/reports"}),
        ("pat", {"/overview", "/reports"}),
    ],
)
def test_every_page_a_role_can_reach_fits_a_phone(worked, phone, username, must_see):
    stack, rid = worked
    sign_in_as(phone, stack, username)
    home = phone.url.removeprefix(stack.url)

    seen = every_page_fits(phone, stack.url, [home, "/account/password", "/no-such-page"])

    wanted = {f"/referrals/{rid}" if p == "REFERRAL" else p for p in must_see}
    assert wanted <= set(seen), sorted(wanted - set(seen))


def test_a_consented_case_stays_in_my_caseload_on_a_phone(worked, phone):
    stack, rid = worked
    sign_in(phone, stack.url)
    card = phone.locator(f"article[data-referral='{rid}']")
    assert "Approach and record the outcome" in card.inner_text()

    record_consent(phone, stack, rid)
    phone.get_by_role("link", name="Queue", exact=True).click()
    phone.wait_for_url(stack.url + "/queue")

    assert phone.locator("h1").inner_text() == "My caseload"
    assert "Next: Make contact and agree support" in card.inner_text()


def fill_consent(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Consent given").check()
    page.get_by_label("The young person (aged 16 or over)").check()


def record_consent(page, stack: Stack, rid: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{stack.url}/referrals/{rid}")
    fill_consent(page)
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_url("**?done=consent")


def test_a_form_sent_after_the_session_idled_out_survives_signing_in_again(worked, phone):
    stack, rid = worked
    sign_in(phone, stack.url)
    phone.goto(f"{stack.url}/referrals/{rid}")
    fill_consent(phone)
    idle = timedelta(minutes=stack.web.options.session_idle_minutes + 1)
    with stack.web.engine.begin() as conn:  # the phone lay in a pocket for half an hour
        conn.execute(update(SESSIONS).values(last_seen_at=datetime.now(UTC) - idle))

    phone.get_by_role("button", name="Record the outcome").click()
    phone.wait_for_url(stack.url + "/sign-in")
    phone.get_by_label("Username").fill("ash")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url(stack.url + "/kept-form")
    assert "Send the form you filled in?" in phone.inner_text("h1")
    wide = phone.evaluate(SIDEWAYS)
    assert wide == []

    phone.get_by_role("button", name="Send it now").click()  # one tap

    phone.wait_for_url(f"{stack.url}/referrals/{rid}?done=consent")
    phone.goto(stack.url + "/queue")
    card = phone.locator(f"article[data-referral='{rid}']")
    assert "Next: Make contact and agree support" in card.inner_text()


@pytest.fixture
def short_idle(tmp_path, sqlite_url) -> Iterator[Stack]:
    """Sessions idle out after a minute, and the warning comes 58 s before."""
    started = start_stack(tmp_path, sqlite_url, session_idle_minutes=1, session_warning_seconds=58)
    try:
        yield started
    finally:
        started.http.stop()
        started.running.stop()


def test_the_idle_warning_offers_to_stay_signed_in_and_does(short_idle: Stack, phone):
    sign_in(phone, short_idle.url)
    with short_idle.web.engine.connect() as conn:
        before = conn.execute(select(SESSIONS.c.last_seen_at)).scalar_one()

    warning = phone.locator("#session-warning")
    warning.wait_for(state="visible")  # about 2 s after the page loaded
    assert "You will be signed out soon" in warning.inner_text()
    wide = phone.evaluate(SIDEWAYS)
    assert wide == []
    phone.get_by_role("button", name="Stay signed in").click()

    warning.wait_for(state="hidden")
    phone.wait_for_selector("#session-warning[data-refreshed]", state="attached")
    with short_idle.web.engine.connect() as conn:
        after = conn.execute(select(SESSIONS.c.last_seen_at)).scalar_one()
    assert after > before


def test_a_case_assigned_to_me_appears_in_my_caseload_without_a_reload(stack: Stack, phone):
    now = stack.running.gateway.clock()
    lead = add_account(stack.web.accounts, "lee", Role.TEAM_LEAD, (SITE,), now=now)
    rid = a_referral(stack)
    sign_in(phone, stack.url)
    phone.wait_for_selector("#queue[data-live='on']")  # the live stream is open
    assert phone.locator("article.nhsuk-card").count() == 0
    phone.evaluate("window.stillTheSamePage = true")

    ash = stack.web.accounts.by_username("ash")
    assert ash is not None
    assert stack.web.casework.assign(lead, rid, ash.id) is None  # the team lead, elsewhere

    card = phone.locator(f"article[data-referral='{rid}']")
    card.wait_for()
    assert "Next: Approach and record the outcome" in card.inner_text()
    assert phone.evaluate("window.stillTheSamePage") is True
