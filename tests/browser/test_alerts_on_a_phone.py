"""Alerts on a phone (Chromium at 360 px): the alerts page fits and passes axe, a worker goes
on shift with e-mail; in the open queue a new candidate is counted in the tab title and its
card is highlighted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from referral_gateway.domain.alerts import AlertChannel
from tests.browser.axe import assert_accessible
from tests.browser.conftest import Stack, go_to, sign_in
from tests.browser.test_youth_worker_journey import no_sideways_scroll, stabbed_sixteen_year_old
from tests.spine.harness import msa

pytestmark = pytest.mark.browser


def test_a_worker_goes_on_shift_with_email_on_a_phone(stack: Stack, phone):
    page = phone
    sign_in(page, stack.url)
    go_to(page, "Alerts")
    page.wait_for_url(stack.url + "/alerts")
    no_sideways_scroll(page)
    assert_accessible(page, "the alerts page")

    page.get_by_label("I am on shift").check()
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_role("button", name="Save alert settings").click()
    summary = page.locator(".nhsuk-error-summary")  # e-mail chosen, no address given
    summary.wait_for()
    assert "Enter the e-mail address" in summary.inner_text()
    no_sideways_scroll(page)

    page.get_by_label("E-mail address for alerts").fill("ash@example.test")
    page.get_by_role("button", name="Save alert settings").click()
    page.wait_for_url(stack.url + "/alerts?done=alerts_saved")
    ash = stack.web.accounts.by_username("ash")
    assert stack.web.alert_store is not None and ash is not None
    on_shift, channels, email = stack.web.alert_store.preference(ash.id)
    assert (on_shift, channels, email) == (
        True,
        frozenset({AlertChannel.EMAIL}),
        "ash@example.test",
    )


def test_the_open_queue_counts_a_new_candidate_in_the_title_and_highlights_it(stack, phone):
    page = phone
    sign_in(page, stack.url)
    page.goto(stack.url + "/queue?tab=new")  # new candidates are listed on the New tab
    page.wait_for_selector("#queue[data-live='on']")
    assert page.title().startswith("Queue")

    now = datetime.now(UTC).replace(microsecond=0)
    with MllpClient("127.0.0.1", stack.mllp_port) as mllp:
        ack = mllp.send(adt("A01", stabbed_sixteen_year_old(now), "CTRL-ALERT-1", sent=now))
    assert msa(ack) == ("AA", "CTRL-ALERT-1")

    page.locator("article.nhsuk-card.is-new").wait_for()
    assert page.title().startswith("(1) Queue")
    assert "Testington" not in page.title()
    no_sideways_scroll(page)
