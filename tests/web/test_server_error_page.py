"""A fault in the gateway, over real HTTP with the whole app: a browser gets the HTML error
page (500, the pages' security headers, no traceback, nothing of the fault), an API client
keeps its JSON, and the log names the kind of error and the route, never the fault's text."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from consent.policy import Role
from referral_gateway.web.security import SessionDep
from tests.web.builders import SITE_A
from tests.web.live_site import Site, running_site

# what a careless exception might carry: an invented patient's name (not one the leak check
# knows, so that what is checked here is this page and this log)
FAULT = "could not file the referral of Quennell Blandsworth"


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    yield from running_site(tmp_path)


@pytest.fixture
def faulty(site: Site) -> Site:
    """The whole app with one more page and one more API route that fail unexpectedly."""

    def fail_signed_in(session: SessionDep) -> None:
        raise RuntimeError(FAULT)

    def fail() -> None:
        raise RuntimeError(FAULT)

    site.web.app.add_api_route("/queue/faulty", fail_signed_in, include_in_schema=False)
    site.web.app.add_api_route("/api/faulty", fail, include_in_schema=False)
    return site


def test_a_browser_gets_the_error_page_with_no_trace_of_the_fault(faulty: Site, caplog):
    worker = faulty.browser("ash", Role.YOUTH_WORKER, (SITE_A,))

    with caplog.at_level(logging.INFO):
        reply = worker.get("/queue/faulty")

    assert reply.status_code == 500
    assert reply.headers["content-type"].startswith("text/html")
    assert "<h1>Something went wrong</h1>" in reply.text
    assert "Blandsworth" not in reply.text and "Traceback" not in reply.text
    assert "RuntimeError" not in reply.text
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert reply.headers["cache-control"].startswith("no-store")
    assert "Sign out" in reply.text  # still the signed-in person's page
    logged = "\n".join(caplog.messages + [r.exc_text or "" for r in caplog.records])
    assert "unexpected RuntimeError answering GET /queue/faulty" in logged
    assert "Blandsworth" not in logged and not any(r.exc_info for r in caplog.records)


def test_an_api_client_keeps_json(faulty: Site):
    worker = faulty.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    for path in ("/api/faulty", "/queue/faulty"):
        reply = worker.get(path, headers={"Accept": "application/json"})
        assert reply.status_code == 500, path
        assert reply.json() == {"detail": "internal error"}, path
    browser_on_api = httpx.get(faulty.live.url + "/api/faulty", headers={"Accept": "text/html"})
    assert browser_on_api.json() == {"detail": "internal error"}


def test_a_page_whose_database_table_is_gone_is_the_error_page(site: Site):
    worker = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    with site.running.engine.begin() as conn:
        conn.execute(text("DROP TABLE referral_case"))

    reply = worker.get("/queue?tab=new")

    assert reply.status_code == 500
    assert "<h1>Something went wrong</h1>" in reply.text
    assert "referral_case" not in reply.text and "sqlite" not in reply.text.lower()
