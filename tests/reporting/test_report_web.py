"""The report pages, downloads and hub endpoint, through FastAPI's test client."""

import json
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consent.policy import Actor, Role
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.report_signing import SigningKey, sign
from referral_gateway.domain.report_snapshot import ReportSnapshot, canonical_json
from referral_gateway.domain.reporting import build_monthly_report
from referral_gateway.services.hub import HubKey
from referral_gateway.services.reporting import InMemoryFacts, ReportService
from referral_gateway.storage.reports import ReportStore
from referral_gateway.web.hub import build_hub_router
from referral_gateway.web.reports import build_reports_router
from tests.conftest import FixedClock
from tests.reporting.builders import OTHER_SITE, SITE, october_2024

NOW = datetime(2024, 11, 3, 9, 0, tzinfo=UTC)
KEY_A = SigningKey("a-1", b"a" * 32)
KEY_B = SigningKey("b-1", b"b" * 32)


class Who:
    """Stands in for the signed-in user; a test changes `actor` as it goes."""

    def __init__(self) -> None:
        self.actor = Actor("lead-1", Role.PROGRAMME_LEAD, frozenset())

    def __call__(self) -> Actor:
        return self.actor


@pytest.fixture
def web(engine):
    clock = FixedClock(NOW)
    who = Who()
    store = ReportStore(engine)
    app = FastAPI()
    app.include_router(
        build_reports_router(ReportService(InMemoryFacts(october_2024())), store, who, clock)
    )
    keys = {"a-1": HubKey(KEY_A, SITE), "b-1": HubKey(KEY_B, OTHER_SITE)}
    app.include_router(build_hub_router(store, keys, who, clock))
    return TestClient(app), who, clock


def test_the_dashboard_has_a_month_picker_and_a_row_per_site(web):
    client, *_ = web
    page = client.get("/reports?month=2024-10")
    assert page.status_code == 200
    assert 'type="month"' in page.text and 'value="2024-10"' in page.text
    assert f">{SITE}</a>" in page.text and f">{OTHER_SITE}</a>" in page.text


def test_a_site_page_shows_the_funnel_and_trend_charts(web):
    client, *_ = web
    page = client.get(f"/reports/site/{SITE}?month=2024-10")
    assert page.status_code == 200
    assert page.text.count("<svg") == 2
    assert "From candidate to support" in page.text


def test_csv_download_is_excel_friendly(web):
    client, *_ = web
    response = client.get(f"/reports/download.csv?month=2024-10&site={SITE}")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response.headers["content-disposition"]
    assert ",candidates,,,Candidates detected,count,40\r\n" in response.content.decode("utf-8-sig")


def test_programme_leads_cannot_ask_for_raw_counts(web):
    client, *_ = web
    assert client.get("/reports/download.json?month=2024-10&raw=1").status_code == 403


def test_administrators_get_raw_counts(web):
    client, who, _ = web
    who.actor = Actor("admin-1", Role.ADMINISTRATOR, frozenset())
    data = client.get(f"/reports/download.json?month=2024-10&site={SITE}&raw=1").json()
    approached = next(
        f
        for f in data["reports"][0]["figures"]
        if f["measure"] == "approached" and not f["breakdown"]
    )
    assert approached["value"] == 29


def test_youth_workers_do_not_see_reports(web):
    client, who, _ = web
    who.actor = Actor("yw-1", Role.YOUTH_WORKER, frozenset({SITE}))
    assert client.get("/reports").status_code == 403


def test_a_lead_scoped_to_one_site_sees_only_that_site(web):
    client, who, _ = web
    who.actor = Actor("lead-2", Role.PROGRAMME_LEAD, frozenset({OTHER_SITE}))
    assert SITE not in client.get("/reports?month=2024-10").text
    assert client.get(f"/reports/site/{SITE}?month=2024-10").status_code == 404


def test_a_month_that_has_not_started_is_refused(web):
    client, *_ = web
    assert client.get("/reports?month=2025-01").status_code == 422
    assert client.get("/reports?month=2024-13").status_code == 422


def snapshot_of(site: str, report_id: str) -> ReportSnapshot:
    report = publish(build_monthly_report(site, ReportMonth(2024, 10), october_2024()))
    return ReportSnapshot.freeze(report, report_id=report_id, created_at=NOW)


def post(client, body: bytes, key: SigningKey, now=NOW):
    return client.post("/api/hub/reports", content=body, headers=sign(body, key, now=now))


def test_the_hub_accepts_a_signed_report_once(web):
    client, *_ = web
    body = snapshot_of(SITE, "r-a").envelope()
    assert post(client, body, KEY_A).status_code == 202
    replay = post(client, body, KEY_A)
    assert (replay.status_code, replay.json()["outcome"]) == (409, "replay")


def test_the_hub_refuses_a_report_altered_after_signing(web):
    client, *_ = web
    body = snapshot_of(SITE, "r-a").envelope()
    headers = sign(body, KEY_A, now=NOW)
    tampered = body.replace(b'"value":40', b'"value":45', 1)
    answer = client.post("/api/hub/reports", content=tampered, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")


def test_the_hub_refuses_a_re_signed_report_whose_checksum_no_longer_matches(web):
    client, *_ = web
    data = json.loads(snapshot_of(SITE, "r-a").envelope())
    data["report"]["figures"][1]["value"] = 45
    answer = post(client, canonical_json(data), KEY_A)
    assert (answer.status_code, answer.json()["reason"]) == (400, "checksum_mismatch")


def test_the_hub_refuses_a_site_reporting_with_another_sites_key(web):
    client, *_ = web
    answer = post(client, snapshot_of(SITE, "r-a").envelope(), KEY_B)
    assert (answer.status_code, answer.json()["reason"]) == (403, "site_not_allowed_for_key")


def test_the_hub_refuses_a_stale_request(web):
    client, _, clock = web
    body = snapshot_of(SITE, "r-a").envelope()
    headers = sign(body, KEY_A, now=NOW)
    clock.advance(minutes=6)
    answer = client.post("/api/hub/reports", content=body, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "stale")


def test_the_hub_totals_sites_and_renders_its_dashboard(web):
    client, *_ = web
    post(client, snapshot_of(SITE, "r-a").envelope(), KEY_A)
    post(client, snapshot_of(OTHER_SITE, "r-b").envelope(), KEY_B)
    totals = client.get("/hub/totals.json?month=2024-10").json()
    assert totals["sites"] == [SITE, OTHER_SITE]
    candidates = next(
        t for t in totals["totals"] if t["measure"] == "candidates" and not t["breakdown"]
    )
    assert (candidates["known_total"], candidates["sites_suppressed"]) == (40, 1)  # 40 + *
    page = client.get("/hub?month=2024-10")
    assert page.status_code == 200 and "40 + 1 x *" in page.text
