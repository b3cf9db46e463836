"""A programme lead on a phone, in a real browser against the real gateway with its reports
mounted: sign in, open Reports from the navigation, and see last month's figures for their
site with the funnel and the 12-month trend drawn as SVG, suppressed figures as `*`, at
360 px wide without sideways scrolling. The figures come from synthetic attendance,
referral and consent rows of the year to last month."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from consent.policy import Role
from referral_gateway.domain.report_period import latest_finished_month, trailing_months
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS, SITE, Stack, start_stack
from tests.reporting.spine_rows import Visit, assault, write
from tests.web.builders import PASSWORD, add_account

pytestmark = pytest.mark.browser


def a_year_of_candidates(now: datetime) -> list[Visit]:
    """Each month of the year to last month: 16 to 27 candidates at the site, eight of
    them declining and the rest giving consent; and 300 other ED attendances last month."""
    visits: list[Visit] = []
    months = trailing_months(latest_finished_month(now), 12)
    for i, month in enumerate(months):
        first = month.start() + timedelta(days=2, hours=20)
        for n in range(16 + i):
            outcome = ("declined", None) if n < 8 else ("given", "young_person_16_plus")
            consent = ((*outcome, None, 25 + n),)
            visits.append(assault(SITE, first + timedelta(hours=7 * n), consent=consent))
    last = months[-1].start() + timedelta(days=3)
    visits += [Visit(SITE, last + timedelta(minutes=30 * n)) for n in range(300)]
    return visits


@pytest.fixture
def stack(tmp_path, sqlite_url) -> Iterator[Stack]:
    """The gateway with its report pages, a year of candidates and programme lead "pat"."""
    started = start_stack(tmp_path, sqlite_url)
    write(started.running.gateway.engine, a_year_of_candidates(datetime.now(UTC)))
    add_account(
        started.web.accounts, "pat", Role.PROGRAMME_LEAD, (SITE,), display_name="Pat",
        now=started.running.gateway.clock(),
    )  # fmt: skip
    try:
        yield started
    finally:
        started.http.stop()
        started.running.stop()


def test_a_programme_lead_sees_the_dashboard_and_its_charts_on_a_phone(stack: Stack, phone):
    ARTIFACTS.mkdir(exist_ok=True)
    page = phone
    page.goto(stack.url + "/sign-in")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/overview")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.wait_for_url(stack.url + "/reports")
    month = latest_finished_month(datetime.now(UTC))
    assert page.get_by_label("Month", exact=True).input_value() == str(month)
    row = page.get_by_role("row", name=SITE)
    # last month: 327 attendances screened, 27 candidates, all approached, 19 consented;
    # every figure rounded to the nearest 5
    assert row.get_by_role("cell").all_inner_texts()[:4] == ["325", "25", "25", "20"]

    for chart in ("#funnel svg", "#trend svg"):
        svg = page.locator(chart)
        svg.wait_for()
        box = svg.bounding_box()
        assert box is not None and 200 < box["width"] <= 360, (chart, box)
    funnel = page.locator("#funnel svg").text_content() or ""
    assert "Candidates detected25" in funnel and "Consent given20" in funnel
    # candidates, approached, consent given and engaged (0): a point for each of 12 months
    assert page.locator("#trend svg circle").count() == 4 * 12
    assert "Raw counts" not in page.inner_text("main")  # not offered to a programme lead

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"
    page.screenshot(path=str(ARTIFACTS / "reports-dashboard-phone-360.png"), full_page=True)
    assert_accessible(page, "the reports dashboard")

    row.get_by_role("link", name=SITE).click()
    page.wait_for_url(f"**/reports/site/{SITE}?month={month}")
    assert page.locator("figure.chart svg").count() == 2
    assert "Consent given, % of approached" in page.inner_text("main")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the site page is {width}px wide on a 360px screen"
    page.screenshot(path=str(ARTIFACTS / "reports-site-phone-360.png"), full_page=True)
    assert_accessible(page, "a site's month")
