"""The report month picker is a select of recent months, not `<input type=month>` (a plain
text box in some browsers), over real HTTP with the whole app: each option is a month the
page answers for, the shown month is chosen, and an older month asked for stays on offer."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from consent.policy import Role
from tests.web.builders import SITE_A
from tests.web.live_site import Site, running_site


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    yield from running_site(tmp_path)


def picker(html: str) -> str:
    start = html.index('<select class="nhsuk-select" id="month" name="month">')
    return html[start : html.index("</select>", start)]


def test_the_month_picker_offers_recent_months_each_of_which_opens(site: Site):
    lead = site.browser("pat", Role.PROGRAMME_LEAD, (SITE_A,))  # the clock: March 2026

    page = lead.get("/reports", params={"month": "2025-11"}).text

    assert 'type="month"' not in page
    options = re.findall(
        r'<option value="(\d{4}-\d{2})"( selected)?>([^<]+)</option>', picker(page)
    )
    assert options[0][0] == "2026-03" and len(options) == 36
    assert [(v, label) for v, chosen, label in options if chosen] == [("2025-11", "November 2025")]
    for value, _, _ in options[:3]:
        assert lead.get("/reports", params={"month": value}).status_code == 200


def test_an_older_month_asked_for_by_address_stays_on_offer(site: Site):
    lead = site.browser("pat", Role.PROGRAMME_LEAD, (SITE_A,))

    page = lead.get("/reports", params={"month": "2019-06"}).text

    assert '<option value="2019-06" selected>June 2019</option>' in picker(page)
