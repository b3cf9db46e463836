"""Versions and drift on the pages: the site's report page says when its live figures
differ from the version sent and lets an administrator re-issue the month; the hub inside
the gateway shows a correction as "version 2: <reason>" with the versions before it.

The gateway's real accounts and sessions (SQLite) and the hub's real receiver; the report
facts are the hand-checked October 2024 ones (tests/reporting/builders.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from consent.policy import Role
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.report_formats.signing import SigningKey
from referral_gateway.services.hub import HubKey, HubReceiver
from referral_gateway.services.report_push import MonthlyPush, ReportSender
from referral_gateway.services.reporting import InMemoryFacts, ReportService
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.reports import ReportStore
from referral_gateway.web.hub import build_hub_router
from referral_gateway.web.reports import build_reports_router, page_reader
from tests.conftest import FixedClock
from tests.reporting.builders import OTHER_SITE, SITE, at, many, october_2024
from tests.web.conftest import Web, build_web

NOW = datetime(2024, 11, 3, 9, 0, tzinfo=UTC)
OCTOBER = ReportMonth(2024, 10)
KEY_A = SigningKey("a-1", b"a" * 32)
KEY_B = SigningKey("b-1", b"b" * 32)


@dataclass
class Gateway:
    web: Web
    facts: InMemoryFacts
    push: MonthlyPush
    store: ReportStore
    receiver: HubReceiver


@pytest.fixture
def gateway(sqlite_url, keyring) -> Gateway:
    """A gateway that is also its own programme hub: its push goes to its /api/hub/reports."""
    engine = make_engine(sqlite_url)
    migrate(engine)
    clock = FixedClock(NOW)
    web = build_web(engine, keyring, clock)
    store = ReportStore(engine)
    facts = InMemoryFacts(october_2024())
    service = ReportService(facts)
    keys = {"a-1": HubKey(KEY_A, SITE), "b-1": HubKey(KEY_B, OTHER_SITE)}
    receiver = HubReceiver(store, keys, clock)

    def hub(request: httpx.Request) -> httpx.Response:
        answer = receiver.receive(dict(request.headers), request.read())
        return httpx.Response(answer.status_code, json=answer.body)

    sender = ReportSender(
        "https://programme.invalid/api/hub/reports",
        None,
        site_keys={SITE: KEY_A, OTHER_SITE: KEY_B},
        client=httpx.Client(transport=httpx.MockTransport(hub)),
        clock=clock,
        sleep=lambda _s: None,
        attempts=1,
    )
    push = MonthlyPush(
        store, lambda s, m: service.published(s, m), service.sites, sender, clock=clock
    )
    web.app.include_router(build_reports_router(service, store, clock, push=push))
    web.app.include_router(build_hub_router(store, keys, page_reader, clock))
    web.account("prog", Role.PROGRAMME_LEAD, (SITE, OTHER_SITE))
    web.account("admin", Role.ADMINISTRATOR, ())
    yield Gateway(web, facts, push, store, receiver)
    engine.dispose()


def test_the_site_page_says_when_live_figures_differ_from_the_version_sent(gateway: Gateway):
    gateway.push.push(SITE, OCTOBER, now=NOW)
    lead = gateway.web.signed_in("prog")
    assert "Live figures differ" not in lead.get(f"/reports/site/{SITE}?month=2024-10").text

    gateway.facts.facts += many(10, at("2024-10-20T10:00"))  # late messages after the freeze
    page = lead.get(f"/reports/site/{SITE}?month=2024-10").text
    assert "Live figures differ from the version sent on 2024-11-03 09:00: re-issue?" in page
    assert '<td>Candidates detected</td><td class="num">40</td><td class="num">50</td>' in page
    assert "An administrator can re-issue the month" in page  # a lead sees no form
    assert 'action="/reports/admin/reissue"' not in page
    other = lead.get(f"/reports/site/{OTHER_SITE}?month=2024-10").text
    assert "Live figures differ" not in other  # not frozen: nothing to differ from


def test_an_administrator_re_issues_the_month_from_the_site_page(gateway: Gateway):
    gateway.push.push(SITE, OCTOBER, now=NOW)
    gateway.facts.facts += many(10, at("2024-10-20T10:00"))
    admin = gateway.web.signed_in("admin")
    page = admin.get(f"/reports/site/{SITE}?month=2024-10").text
    assert "Re-issue as version 2" in page
    token = gateway.web.token(admin, f"/reports/site/{SITE}?month=2024-10")

    empty = admin.post(
        "/reports/admin/reissue",
        data={"csrf_token": token, "site": SITE, "month": "2024-10", "reason": " "},
    )
    assert empty.status_code == 422
    done = admin.post(
        "/reports/admin/reissue",
        data={"csrf_token": token, "site": SITE, "month": "2024-10", "reason": "late A08s"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/reports/admin?done=reissued")
    status = admin.get("/reports/admin?done=reissued").text
    assert re.search(r"<td[^>]*>2: late A08s</td>", status) and "status-sent" in status
    pushes = admin.get("/reports/admin/pushes").json()
    assert [(p["site"], p["version"], p["status"]) for p in pushes] == [(SITE, 2, "sent")]
    assert "Live figures differ" not in admin.get(f"/reports/site/{SITE}?month=2024-10").text

    again = admin.post(
        "/reports/admin/reissue",
        data={"csrf_token": token, "site": SITE, "month": "2024-10", "reason": "again"},
    )
    assert again.status_code == 409 and "the same as version 2" in again.text

    hub = admin.get("/hub?month=2024-10").text
    assert "version 2: late A08s" in hub
    assert "2 versions of October 2024" in hub
    assert "<td>1</td>" in hub or "first report" in hub
    versions = admin.get("/hub/totals.json?month=2024-10").json()["versions"]
    assert [(v["site"], v["version"], v["reason"], v["key_id"]) for v in versions] == [
        (SITE, 2, "late A08s", "a-1")
    ]


def test_a_programme_lead_cannot_re_issue(gateway: Gateway):
    gateway.push.push(SITE, OCTOBER, now=NOW)
    gateway.facts.facts += many(10, at("2024-10-20T10:00"))
    lead = gateway.web.signed_in("prog")
    token = gateway.web.token(lead, "/reports")
    refused = lead.post(
        "/reports/admin/reissue",
        data={"csrf_token": token, "site": SITE, "month": "2024-10", "reason": "mine"},
    )
    assert refused.status_code == 403
    assert [s.version for s in gateway.store.versions(SITE, OCTOBER)] == [1]


def test_the_retry_form_sends_a_month_refused_for_good_again_once_the_hub_is_fixed(
    gateway: Gateway,
):
    right = gateway.receiver.keys["b-1"]
    gateway.receiver.keys["b-1"] = HubKey(SigningKey("b-1", b"z" * 32), OTHER_SITE)  # hub's error
    gateway.push.push(OTHER_SITE, OCTOBER, now=NOW)
    assert gateway.push.retry_unsent()[0].result.value == "refused"  # the hourly job waits
    admin = gateway.web.signed_in("admin")
    page = admin.get("/reports/admin").text
    assert "not retried until the configuration changes" in page
    assert "programme endpoint answered 401 (bad_signature)" in page
    pushes = admin.get("/reports/admin/pushes").json()
    assert [(p["site"], p["version"], p["status"], p["refused"]) for p in pushes] == [
        (OTHER_SITE, 1, "failed", True)
    ]

    gateway.receiver.keys["b-1"] = right  # the hub's keys file is corrected
    assert gateway.push.retry_unsent()[0].result.value == "refused"  # the site cannot know
    token = gateway.web.token(admin, "/reports/admin")
    admin.post("/reports/admin/retry", data={"csrf_token": token})
    assert gateway.store.push_state(OTHER_SITE, OCTOBER).status.value == "sent"
