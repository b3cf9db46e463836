"""An administrator on a phone, in a real browser against the real gateway: a month frozen
at 06:00 on the 1st has since changed (late arrivals), the site's report page says the live
figures differ from the version frozen and lists them; the administrator re-issues the month
with a reason and the push status shows version 2 with it. 360 px wide, checked by axe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from consent.policy import Role
from referral_gateway.domain.report_period import latest_finished_month
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS, SITE, Stack, start_stack
from tests.browser.test_programme_lead_reports import a_year_of_candidates
from tests.reporting.spine_rows import assault, write
from tests.web.builders import PASSWORD, add_account

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path, sqlite_url) -> Iterator[Stack]:
    """The gateway with its report pages, a year of candidates and administrator "ada"."""
    started = start_stack(tmp_path, sqlite_url)
    write(started.running.gateway.engine, a_year_of_candidates(datetime.now(UTC)))
    add_account(
        started.web.accounts, "ada", Role.ADMINISTRATOR, (), display_name="Ada",
        now=started.running.gateway.clock(),
    )  # fmt: skip
    try:
        yield started
    finally:
        started.http.stop()
        started.running.stop()


def test_an_administrator_sees_the_drift_and_re_issues_the_month_on_a_phone(stack: Stack, phone):
    ARTIFACTS.mkdir(exist_ok=True)
    month = latest_finished_month(datetime.now(UTC))
    stack.reports.push.run()  # frozen as version 1 (no programme endpoint: nothing sent)
    late = month.start() + timedelta(days=20)
    write(
        stack.running.gateway.engine, [assault(SITE, late + timedelta(hours=h)) for h in range(10)]
    )

    page = phone
    page.goto(stack.http.url + "/sign-in")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    page.goto(f"{stack.http.url}/reports/site/{SITE}?month={month}")
    heading = page.get_by_role("heading", name="Live figures differ from the version frozen on")
    assert heading.is_visible()
    changed = page.get_by_role("region", name="Figures that changed")
    # 37 candidates now (27 + 10 late), 35 as shown; 25 as frozen
    assert "Candidates detected\t25\t35" in changed.inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the site page is {width}px wide on a 360px screen"
    page.screenshot(path=str(ARTIFACTS / "reports-drift-phone-360.png"), full_page=True)
    assert_accessible(page, "a site's month with live figures that differ")

    page.get_by_label("Reason for the correction").fill("late arrivals from the ED feed")
    page.get_by_role("button", name="Re-issue as version 2").click()
    page.wait_for_url("**/reports/admin?done=reissued")
    row = page.get_by_role("row", name=f"{month} {SITE}")
    assert "2: late arrivals from the ED feed" in row.inner_text()
    assert_accessible(page, "the push status after a correction")
