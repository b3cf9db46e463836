"""Errors a browser meets are pages, never bare JSON, over real HTTP with the whole app: an
unknown address, a method the address does not take, a request FastAPI cannot read, and a
report month that is not a month. API and FHIR clients keep their JSON (and
OperationOutcome) answers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from consent.policy import Role
from tests.web.builders import SITE_A
from tests.web.live_site import Site, running_site

JSON = {"Accept": "application/json"}


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    yield from running_site(tmp_path)


def is_page(reply: httpx.Response, status: int, words: str) -> bool:
    return (
        reply.status_code == status
        and reply.headers["content-type"].startswith("text/html")
        and "<h1>" + words in reply.text
    )


def test_an_unknown_address_is_a_page_for_a_browser_and_json_for_a_client(site: Site):
    signed_out = httpx.Client(base_url=site.live.url, headers={"Accept": "text/html"})
    lead = site.browser("pat", Role.PROGRAMME_LEAD, (SITE_A,))

    for browser in (signed_out, lead):
        assert is_page(browser.get("/no-such-page"), 404, "Page not found")
    client = httpx.get(site.live.url + "/no-such-page", headers=JSON)
    assert client.status_code == 404 and client.json() == {"detail": "Not Found"}


def test_a_method_the_address_does_not_take_is_a_page_for_a_browser(site: Site):
    worker = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))

    reply = worker.delete("/queue")

    assert is_page(reply, 405, "That cannot be done here")
    assert "GET" in reply.headers["allow"]
    assert httpx.delete(site.live.url + "/queue", headers=JSON).json() == {
        "detail": "Method Not Allowed"
    }


def test_a_request_fastapi_cannot_read_is_a_page_naming_the_part_not_its_value(site: Site):
    lead = site.browser("pat", Role.PROGRAMME_LEAD, (SITE_A,))

    reply = lead.get("/reports", params={"raw": "not-a-yes-or-no"})

    assert is_page(reply, 422, "That request was not right")
    assert "raw" in reply.text and "not-a-yes-or-no" not in reply.text
    api = lead.get("/reports", params={"raw": "x"}, headers=JSON)
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "raw"]


def test_a_report_month_that_is_not_a_month_is_a_page_saying_how_to_write_one(site: Site):
    lead = site.browser("pat", Role.PROGRAMME_LEAD, (SITE_A,))

    reply = lead.get("/reports", params={"month": "garbage"})

    assert is_page(reply, 422, "No report for that month")
    assert "Write the month as YYYY-MM" in reply.text


def test_fhir_clients_keep_operation_outcomes_whatever_they_accept(site: Site):
    reply = httpx.get(site.live.url + "/fhir/Patient/x/y", headers={"Accept": "text/html"})

    assert reply.status_code >= 400
    assert reply.json()["resourceType"] == "OperationOutcome"
