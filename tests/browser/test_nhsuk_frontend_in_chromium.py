"""The NHS.UK frontend in Chromium at 360 px: its stylesheet and script load under the strict
content security policy (no refused script, style or font, nothing missing), its components
start (the header's menu, the error summary taking focus), and every item of the role's
navigation can be reached on a phone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Stack, sign_in
from tests.browser.test_pages_fit_a_phone import SIDEWAYS

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
    # (the queue's live stream is cut when the page is left: not a failure)
    page.on(
        "requestfailed",
        lambda r: None if r.url.endswith("/queue/events") else problems.append(f"failed: {r.url}"),
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
    for name, path in (
        ("Follow-ups", "/follow-ups"),
        ("Manual referral", "/referrals/new"),
        ("Alerts", "/alerts"),
        ("Queue", "/queue"),
    ):
        link = page.locator(".nhsuk-header__navigation").get_by_role("link", name=name)
        if not link.is_visible():  # moved under the header's "More" menu on a narrow screen
            page.get_by_role("button", name="More").click()
        link.click()
        page.wait_for_url(stack.url + path)
