"""On a phone, a youth worker tells a possible candidate from a definite one on the queue,
then marks a false alarm "not an assault": the form explains a missing reason next to the
field, the referral leaves the New list, and each page passes axe-core's WCAG A/AA checks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from tests.browser.axe import assert_accessible
from tests.browser.conftest import SITE, Stack, sign_in
from tests.browser.test_youth_worker_journey import no_sideways_scroll
from tests.spine.harness import msa

pytestmark = pytest.mark.browser


def suspected(now: datetime) -> Visit:
    return Visit(
        person=Person(
            mrn="MRN0043001",
            nhs_number="9990000026",
            family="Testington",
            given="Sam",
            birth_date=date(now.year - 17, 1, 2),
            sex="M",
        ),
        visit_number="V0043001",
        site=SITE,
        arrival=now,
        area="MAJORS",
        bay="B2",
        complaint="head lac found in street ?assault",
    )


def test_a_possible_candidate_is_tagged_and_marked_not_an_assault_on_a_phone(stack: Stack, phone):
    page = phone
    sign_in(page, stack.url)
    page.goto(stack.url + "/queue?tab=new")  # a youth worker lands on her (empty) caseload
    page.wait_for_selector("#queue[data-live='on']")
    now = datetime.now(UTC).replace(microsecond=0)
    with MllpClient("127.0.0.1", stack.mllp_port) as mllp:
        assert msa(mllp.send(adt("A01", suspected(now), "CTRL-NA-1", sent=now)))[0] == "AA"

    card = page.locator("article.nhsuk-card")
    card.wait_for()
    assert "Possible assault" in card.locator(".badges").inner_text()
    assert_accessible(page, "the queue with a possible candidate")

    card.get_by_role("link", name="Open").click()
    page.wait_for_url("**/referrals/*")
    page.get_by_role("button", name="Mark as not an assault").click()
    summary = page.locator("#error-summary")
    assert "Choose why this is not an assault." in summary.inner_text()
    assert_accessible(page, "the not-an-assault form with an error")

    page.get_by_label("Why it is not an assault").select_option("accident")
    page.get_by_role("button", name="Mark as not an assault").click()
    page.wait_for_url("**?done=not_assault")
    assert "Marked not an assault" in page.inner_text("main")
    assert "Not an assault" in page.inner_text("main")
    no_sideways_scroll(page)
    assert_accessible(page, "a referral marked not an assault")

    page.goto(stack.url + "/queue?status=new")
    assert page.locator("article.nhsuk-card").count() == 0
