"""Pages of this change in Chromium at 360x740: the administrator's accounts page (with long
names and many sites), a team lead's live view, the manual referral form and an error page
neither scroll sideways, and each passes axe-core's WCAG A/AA checks. The administrator
renames an account on the phone."""

from __future__ import annotations

from consent.policy import Role
from tests.browser.axe import assert_accessible
from tests.browser.conftest import SITE, Stack
from tests.web.builders import PASSWORD, add_account


def sign_in_as(page, stack: Stack, username: str, home: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(stack.url + "/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + home)


# what scrolls sideways: the page itself, or any box inside it (a table in a scrolling wrapper)
SIDEWAYS = """() => {
  const wide = [];
  if (document.documentElement.scrollWidth > window.innerWidth) wide.push("page");
  for (const el of document.querySelectorAll("body *")) {
    const x = getComputedStyle(el).overflowX;
    if ((x === "auto" || x === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      wide.push(el.tagName + "." + el.className);
    }
  }
  return wide;
}"""


def fits(page) -> bool:  # type: ignore[no-untyped-def]
    return page.evaluate(SIDEWAYS) == []


def test_the_accounts_page_fits_a_phone_and_renames_an_account(stack: Stack, phone):
    now = stack.running.gateway.clock()
    add_account(stack.web.accounts, "admin", Role.ADMINISTRATOR, (), now=now)
    add_account(
        stack.web.accounts,
        "a.very.long.username.for-a-bank-worker",
        Role.TEAM_LEAD,
        (SITE, "RXX02", "RXX03", "RXX04"),
        display_name="Alexandra Quintessa Featherstonehaugh-Worthington",
        now=now,
    )
    sign_in_as(phone, stack, "admin", "/admin/users")

    assert fits(phone), phone.evaluate(SIDEWAYS)
    assert_accessible(phone, "accounts")

    phone.get_by_text("Change ash").click()
    phone.get_by_label("Name of ash").fill("Ash Renamed")
    phone.get_by_role("button", name="Save name, role and sites").first.click()
    phone.wait_for_url(stack.url + "/admin/users?done=user_changed")
    assert stack.web.accounts.by_username("ash").display_name == "Ash Renamed"  # type: ignore[union-attr]
    assert fits(phone)


def test_a_team_leads_view_the_manual_form_and_an_error_page_fit_a_phone(stack: Stack, phone):
    now = stack.running.gateway.clock()
    add_account(stack.web.accounts, "lee", Role.TEAM_LEAD, (SITE,), display_name="Lee", now=now)
    sign_in_as(phone, stack, "lee", "/queue")
    for path in ("/team", "/referrals/new", "/no-such-page"):
        phone.goto(stack.url + path)
        assert fits(phone), (path, phone.evaluate(SIDEWAYS))
        assert_accessible(phone, path)
    assert "Page not found" in phone.content()
