"""The NHS.UK frontend in Chromium at 360 px: its stylesheet and script load under the strict
content security policy (no refused script, style or font, nothing missing), its components
start (the header's menu, the error summary taking focus), and every item of the role's
navigation can be reached on a phone."""

from __future__ import annotations

import pytest

from consent.policy import Role
from tests.browser.axe import assert_accessible
from tests.browser.conftest import SITE, Stack, go_to, sign_in
from tests.browser.test_pages_fit_a_phone import SIDEWAYS, sign_in_as
from tests.web.builders import add_account

pytestmark = pytest.mark.browser

NHS_BLUE = "rgb(0, 94, 184)"


def test_pages_load_the_frontend_with_nothing_refused_or_missing(stack: Stack, phone):
    page = phone
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    # (a request cut off because the page was left, like the queue's live stream: not a
    # failure; a refused one shows in the console, a missing one as a 4xx)
    page.on(
        "requestfailed",
        lambda r: None if r.failure == "net::ERR_ABORTED" else problems.append(f"failed: {r.url}"),
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    sign_in(page, stack.url)
    for path in ("/queue", "/alerts", "/follow-ups", "/referrals/new"):
        page.goto(stack.url + path)
        page.wait_for_function("document.body.classList.contains('nhsuk-frontend-supported')")
        header = page.evaluate(
            "getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor"
        )
        assert header == NHS_BLUE, path
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert font.lower().startswith("arial"), font
        assert page.evaluate(SIDEWAYS) == [], (path, page.evaluate(SIDEWAYS))
    assert problems == []


def test_a_failed_form_puts_focus_on_the_error_summary(stack: Stack, phone):
    page = phone
    sign_in(page, stack.url)
    page.goto(stack.url + "/alerts")
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_role("button", name="Save alert settings").click()
    page.locator(".nhsuk-error-summary").wait_for()
    page.wait_for_function(
        "document.activeElement && document.activeElement.matches('.nhsuk-error-summary')"
    )
    top = page.evaluate(
        "document.querySelector('.nhsuk-error-summary').getBoundingClientRect().top"
    )
    assert 0 <= top < 740


def test_every_navigation_item_of_the_role_can_be_reached_on_a_phone(stack: Stack, phone):
    page = phone
    sign_in(page, stack.url)
    # four items do not fit beside each other at 360 px: the header offers a "More" menu
    page.locator(".nhsuk-header__menu-toggle").wait_for(state="visible")
    for name, path in (
        ("Follow-ups", "/follow-ups"),
        ("Manual referral", "/referrals/new"),
        ("Alerts", "/alerts"),
        ("Queue", "/queue"),
    ):
        go_to(page, name)
        page.wait_for_url(stack.url + path)


def test_the_pages_no_other_test_opens_fit_a_phone_and_pass_axe(stack: Stack, phone):
    page = phone
    now = stack.running.gateway.clock()
    add_account(stack.web.accounts, "lead", Role.TEAM_LEAD, (SITE,), now=now)
    add_account(stack.web.accounts, "admin", Role.ADMINISTRATOR, (), now=now)

    def check(what: str) -> None:
        assert page.evaluate(SIDEWAYS) == [], (what, page.evaluate(SIDEWAYS))
        assert_accessible(page, what)

    page.goto(stack.url + "/sign-in")
    check("the sign-in page")
    sign_in(page, stack.url)
    for path in ("/follow-ups", "/account/password"):
        page.goto(stack.url + path)
        check(path)
    page.get_by_role("button", name="Set my password").click()  # nothing filled in
    page.locator(".nhsuk-error-summary").wait_for()
    check("the password form with its errors")
    page.goto(stack.url + "/referrals/new")
    page.get_by_role("button", name="Put on the queue").click()  # no concern chosen
    page.locator(".nhsuk-error-summary").wait_for()
    check("the manual referral form with its errors")
    page.get_by_role("button", name="Sign out").click()

    sign_in_as(page, stack, "lead", "/queue")
    page.goto(stack.url + "/overview")
    check("a team lead's overview")
    page.get_by_role("button", name="Sign out").click()

    sign_in_as(page, stack, "admin", "/admin/users")
    page.get_by_role("button", name="Add the account").click()  # nothing filled in
    page.locator(".nhsuk-error-summary").wait_for()
    check("the accounts page with its errors")
    page.goto(stack.url + "/admin/services")
    check("services and outbox")
