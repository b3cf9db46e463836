"""A programme lead on a phone at the standalone hub (`referral-gateway hub` in its own
process), in a real browser: opening the hub sends them to sign in, the first sign-in asks
for their own password, and the dashboard shows which expected sites have not reported the
month, at 360 px wide without sideways scrolling, each page checked with axe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from referral_gateway.domain.report_period import latest_finished_month
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS
from tests.reporting_http.test_hub_alone import (
    FIRST_PASSWORD,
    OWN_PASSWORD,
    SITE_A,
    SITE_B,
    SITE_C,
    Hub,
    a_report,
    push,
    running_hub,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(tmp_path) -> Iterator[Hub]:
    with running_hub(tmp_path) as running:
        yield running


def fits_a_phone(page, what: str) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{what} is {width}px wide on a 360px screen"


def test_a_programme_lead_signs_in_to_the_hub_and_sees_the_missing_sites_on_a_phone(
    hub: Hub, phone
):
    ARTIFACTS.mkdir(exist_ok=True)
    month = latest_finished_month(datetime.now(UTC))
    assert push(hub, a_report(SITE_A, month), "a-phone").status_code == 202
    page = phone

    page.goto(hub.url + "/hub")
    page.wait_for_url(hub.url + "/sign-in?next=/hub")  # and back to /hub after sign-in
    fits_a_phone(page, "the hub's sign-in page")
    page.screenshot(path=str(ARTIFACTS / "hub-sign-in-phone-360.png"), full_page=True)
    assert_accessible(page, "the hub's sign-in page")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill(FIRST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(hub.url + "/account/password")
    assert_accessible(page, "the hub's first-sign-in password page")
    page.get_by_label("Current password").fill(FIRST_PASSWORD)
    page.get_by_label("New password (at least 12 characters)").fill(OWN_PASSWORD)
    page.get_by_label("New password again").fill(OWN_PASSWORD)
    page.get_by_role("button", name="Set my password").click()

    page.wait_for_url(hub.url + "/hub?done=password_set")
    assert page.get_by_label("Month", exact=True).input_value() == str(month)
    expected = page.get_by_role("table", name="Sites expected to report")
    assert (
        expected.get_by_role("row", name=SITE_A).inner_text().split("\t")[1].startswith("Received ")
    )
    for site in (SITE_B, SITE_C):
        assert "Missing" in expected.get_by_role("row", name=site).inner_text()
    assert "2 of 3 expected sites have not reported" in page.inner_text("main")
    # the figures: site A's candidates as published, in the table that scrolls on its own
    received = page.get_by_role("region", name="Reports received")
    figures = received.get_by_role("row", name=SITE_A).get_by_role("cell").all_inner_texts()
    assert figures[:2] == ["500", "40"]  # screened and candidates, as site A published them
    fits_a_phone(page, "the hub's dashboard")
    page.screenshot(path=str(ARTIFACTS / "hub-dashboard-phone-360.png"), full_page=True)
    assert_accessible(page, "the hub's dashboard")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(hub.url + "/sign-in?done=signed_out")
