"""The report pages, downloads, push status and hub endpoint from the outside: FastAPI's
test client against the web queue's real accounts and sessions (SQLite), with the
hand-checked October 2024 facts (tests/reporting/builders.py) behind the report service.

Who sees what: programme leads see disclosure-controlled figures of their sites,
administrators may ask for raw counts, youth workers and team leads are refused, signed-out
visitors go to the sign-in page (pages) or get 401 (downloads); the ops token reads the
downloads, controlled only; the retry form needs the session's CSRF token."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from consent.policy import Role
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.report_snapshot import ReportSnapshot, canonical_json
from referral_gateway.domain.reporting import build_monthly_report
from referral_gateway.report_formats.signing import SigningKey, sign
from referral_gateway.services.hub import HubKey
from referral_gateway.services.report_push import MonthlyPush, ReportSender
from referral_gateway.services.reporting import InMemoryFacts, ReportService
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.reports import ReportStore
from referral_gateway.web.hub import build_hub_router
from referral_gateway.web.reports import build_reports_router, page_reader
from tests.conftest import FixedClock
from tests.reporting.builders import OTHER_SITE, SITE, october_2024
from tests.reporting.fakes import FakeHub
from tests.web.conftest import Web, build_web

NOW = datetime(2024, 11, 3, 9, 0, tzinfo=UTC)
OCTOBER = ReportMonth(2024, 10)
KEY_A = SigningKey("a-1", b"a" * 32)
KEY_B = SigningKey("b-1", b"b" * 32)
PUSH_KEY = SigningKey("push-1", b"p" * 32)
OPS_TOKEN = "ops-token-for-tests-0123456789"


@dataclass
class Reports:
    web: Web
    hub: FakeHub  # where the monthly push goes
    push: MonthlyPush


@pytest.fixture
def reports(sqlite_url, keyring) -> Reports:
    yield build_reports(sqlite_url, keyring)


def build_reports(sqlite_url, keyring, **web_options) -> Reports:
    engine = make_engine(sqlite_url)
    migrate(engine)
    clock = FixedClock(NOW)
    web = build_web(engine, keyring, clock, **web_options)
    store = ReportStore(engine)
    service = ReportService(InMemoryFacts(october_2024()))
    programme = FakeHub(PUSH_KEY, clock)
    sender = ReportSender(
        "https://programme.invalid/api/hub/reports",
        PUSH_KEY,
        client=programme.client(),
        clock=clock,
        sleep=lambda _s: None,
        attempts=1,
    )
    push = MonthlyPush(
        store, lambda s, m: service.published(s, m), service.sites, sender, clock=clock
    )
    web.app.include_router(
        build_reports_router(service, store, clock, push=push, ops_token=OPS_TOKEN)
    )
    keys = {"a-1": HubKey(KEY_A, SITE), "b-1": HubKey(KEY_B, OTHER_SITE)}
    web.app.include_router(build_hub_router(store, keys, page_reader, clock))
    web.account("prog", Role.PROGRAMME_LEAD, (SITE, OTHER_SITE))
    web.account("prog-b", Role.PROGRAMME_LEAD, (OTHER_SITE,))
    web.account("admin", Role.ADMINISTRATOR, ())
    web.account("ash", Role.YOUTH_WORKER, (SITE,))
    web.account("lead", Role.TEAM_LEAD, (SITE,))
    return Reports(web, programme, push)
    engine.dispose()


def figure(data: dict, measure: str, breakdown: str = "", category: str = ""):  # type: ignore[no-untyped-def]
    (report,) = data["reports"]
    return next(
        f["value"]
        for f in report["figures"]
        if (f["measure"], f["breakdown"], f["category"]) == (measure, breakdown, category)
    )


def main_of(page: str) -> str:
    """The page's <main>: what is on it besides the header (whose NHS logo is an SVG too)."""
    return page.split("<main", 1)[1].split("</main>", 1)[0] if "<main" in page else page


def cell(page: str, site: str, column: int) -> str:
    """The text of a site's row in the dashboard table, `column` counted after the site."""
    row = re.search(rf">{site}</a></th>(.*?)</tr>", page, re.S)
    assert row, f"no row for {site}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))[column]


# -- who sees what -----------------------------------------------------------------------------


def test_a_programme_lead_sees_the_dashboard_with_suppressed_figures(reports: Reports):
    lead = reports.web.signed_in("prog")
    page = lead.get("/reports?month=2024-10")
    assert page.status_code == 200
    assert '<option value="2024-10" selected>' in page.text
    assert f">{SITE}</a>" in page.text and f">{OTHER_SITE}</a>" in page.text
    assert main_of(page.text).count("<svg") == 2  # the funnel and the 12-month trend
    assert 'class="nhsuk-header__navigation-link" href="/reports"' in page.text  # navigation
    # approached: 29 at RXX01, shown rounded; 4 candidates at RYY02, shown as *
    assert cell(page.text, SITE, 2) == "30"
    assert cell(page.text, OTHER_SITE, 1) == "*"
    data = lead.get(f"/reports/download.json?month=2024-10&site={SITE}").json()
    assert data["reports"][0]["disclosure"] == "controlled"
    assert figure(data, "approached") == 30
    assert figure(data, "override_without_consent") == "*"  # 3 young people
    assert lead.get("/reports/download.json?month=2024-10&raw=1").status_code == 403
    assert lead.get("/reports?month=2024-10&raw=1").status_code == 403


def test_an_administrator_sees_raw_counts_when_asking_for_them(reports: Reports):
    admin = reports.web.signed_in("admin")
    data = admin.get(f"/reports/download.json?month=2024-10&site={SITE}&raw=1").json()
    assert data["reports"][0]["disclosure"] == "raw"
    assert (figure(data, "approached"), figure(data, "override_without_consent")) == (29, 3)
    page = admin.get("/reports?month=2024-10&raw=1")
    assert "Raw counts: administrators only" in page.text
    assert cell(page.text, SITE, 2) == "29"
    assert cell(page.text, OTHER_SITE, 1) == "4"
    controlled = admin.get(f"/reports/download.json?month=2024-10&site={SITE}").json()
    assert figure(controlled, "approached") == 30  # without raw=1, as everyone else sees it


@pytest.mark.parametrize("username", ["ash", "lead"])
def test_youth_workers_and_team_leads_are_refused(reports: Reports, username: str):
    client = reports.web.signed_in(username)
    for path in (
        "/reports?month=2024-10",
        f"/reports/site/{SITE}?month=2024-10",
        f"/reports/istv.csv?month=2024-10&site={SITE}",
        "/reports/admin",
        "/hub?month=2024-10",
    ):
        reply = client.get(path)
        assert reply.status_code == 403, path
        assert "<svg" not in main_of(reply.text)
    for path in ("/reports/download.csv?month=2024-10", "/reports/download.json?month=2024-10"):
        assert client.get(path).status_code == 403, path
    assert 'href="/reports"' not in client.get("/queue").text  # not in their navigation


def test_signed_out_visitors_go_to_sign_in_for_pages_and_get_401_for_downloads(
    reports: Reports,
):
    client = reports.web.client()
    for path in ("/reports", f"/reports/site/{SITE}", "/reports/admin", "/hub"):
        reply = client.get(path, follow_redirects=False)
        # back to the page after signing in
        assert (reply.status_code, reply.headers.get("location")) == (
            303,
            "/sign-in?next=" + path,
        ), path
    for path in ("/reports/download.csv", "/reports/download.json", "/reports/admin/pushes"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 401, path
    wrong = client.get("/reports/download.csv", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_the_ops_token_reads_the_downloads_of_every_site_controlled_only(reports: Reports):
    client = reports.web.client()
    bearer = {"Authorization": f"Bearer {OPS_TOKEN}"}
    data = client.get("/reports/download.json?month=2024-10", headers=bearer).json()
    assert [r["site"] for r in data["reports"]] == [SITE, OTHER_SITE]
    one = client.get(f"/reports/download.json?month=2024-10&site={SITE}", headers=bearer)
    assert figure(one.json(), "approached") == 30
    assert client.get("/reports/download.json?raw=1", headers=bearer).status_code == 403
    assert client.get("/reports", headers=bearer, follow_redirects=False).status_code == 303
    assert client.get("/reports/admin/pushes", headers=bearer).status_code == 401


def test_a_lead_scoped_to_one_site_sees_only_that_site(reports: Reports):
    lead = reports.web.signed_in("prog-b")
    page = lead.get("/reports?month=2024-10").text
    assert f">{OTHER_SITE}</a>" in page and SITE not in page
    assert lead.get(f"/reports/site/{SITE}?month=2024-10").status_code == 404
    assert lead.get(f"/reports/download.csv?month=2024-10&site={SITE}").status_code == 404


# -- pages and downloads -----------------------------------------------------------------------


def test_a_site_page_shows_the_funnel_trend_and_every_figure(reports: Reports):
    page = reports.web.signed_in("prog").get(f"/reports/site/{SITE}?month=2024-10")
    assert page.status_code == 200
    assert main_of(page.text).count("<svg") == 2
    assert "From candidate to support" in page.text
    assert "Closed this month" in page.text and "by first contact" in page.text


def test_csv_download_is_excel_friendly(reports: Reports):
    response = reports.web.signed_in("prog").get(f"/reports/download.csv?month=2024-10&site={SITE}")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response.headers["content-disposition"]
    assert ",candidates,,,Candidates detected,count,40\r\n" in response.content.decode("utf-8-sig")


def test_a_month_that_has_not_started_is_refused(reports: Reports):
    lead = reports.web.signed_in("prog")
    assert lead.get("/reports?month=2025-01").status_code == 422
    assert lead.get("/reports?month=2024-13").status_code == 422


@pytest.mark.parametrize("month", ["1900-01", "1899-12", "0001-01", "2024-13", "24-10", "x" * 300])
def test_a_month_out_of_range_or_garbled_gets_a_clear_4xx_and_nothing_in_the_log(
    reports: Reports, month: str, caplog: pytest.LogCaptureFixture
):
    lead = reports.web.signed_in("prog")
    with caplog.at_level("WARNING"):
        for path in ("/reports", f"/reports/site/{SITE}", "/hub"):
            page = lead.get(path, params={"month": month})
            assert page.status_code == 422, (path, page.status_code)
            assert page.headers["content-type"].startswith("text/html")
            assert "No report for that month" in page.text
        for path in ("/reports/download.json", "/reports/download.csv", "/hub/totals.json"):
            reply = lead.get(path, params={"month": month})
            assert reply.status_code == 422, (path, reply.status_code)
            assert reply.json()["detail"]
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert "Traceback" not in caplog.text


def test_report_pages_carry_no_inline_style_or_script(reports: Reports):
    """The web app's content security policy allows neither."""
    reply = reports.web.signed_in("admin").get("/reports?month=2024-10")
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "<style" not in reply.text and "style=" not in reply.text
    assert "<script>" not in reply.text


# -- the push status and its retry form -------------------------------------------------------


def test_an_administrator_sees_a_failed_push_and_retries_it_with_the_form(reports: Reports):
    reports.hub.script = [503]  # the programme is down at 06:00 on the 1st
    outcome = reports.push.push(SITE, OCTOBER, now=NOW)
    assert outcome.result.value == "failed"
    admin = reports.web.signed_in("admin")
    page = admin.get("/reports/admin")
    assert "status-failed" in page.text and "Push unsent months now" in page.text
    token = reports.web.token(admin, "/reports/admin")

    for data in ({}, {"csrf_token": "forged"}):
        refused = admin.post("/reports/admin/retry", data=data)
        assert refused.status_code == 403 and "This form has expired" in refused.text
    assert reports.hub.received == []

    done = admin.post("/reports/admin/retry", data={"csrf_token": token}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/reports/admin?done=retried")
    assert [s.site for s in reports.hub.received] == [SITE]
    page = admin.get("/reports/admin?done=retried")
    assert "status-sent" in page.text and "status-failed" not in page.text
    pushes = admin.get("/reports/admin/pushes").json()
    assert [(p["site"], p["status"]) for p in pushes] == [(SITE, "sent")]


def test_report_pages_show_times_in_the_configured_zone(sqlite_url, keyring):
    reports = build_reports(sqlite_url, keyring, timezone="Asia/Tokyo")
    reports.hub.script = [503]
    reports.push.push(SITE, OCTOBER, now=NOW)  # 09:00 UTC: 18:00 in Tokyo, 09:00 in London
    page = reports.web.signed_in("admin").get("/reports/admin").text
    assert "2024-11-03 18:00" in page and "2024-11-03 09:00" not in page


def test_a_programme_lead_cannot_see_or_retry_the_push(reports: Reports):
    lead = reports.web.signed_in("prog")
    assert lead.get("/reports/admin").status_code == 403
    assert lead.get("/reports/admin/pushes").status_code == 403
    token = reports.web.token(lead, "/reports")
    assert lead.post("/reports/admin/retry", data={"csrf_token": token}).status_code == 403


# -- the hub inside the gateway ----------------------------------------------------------------


def snapshot_of(site: str, report_id: str) -> ReportSnapshot:
    report = publish(build_monthly_report(site, OCTOBER, october_2024()))
    return ReportSnapshot.freeze(report, report_id=report_id, created_at=NOW)


def post(client, body: bytes, key: SigningKey, now=NOW):  # type: ignore[no-untyped-def]
    return client.post("/api/hub/reports", content=body, headers=sign(body, key, now=now))


def test_the_hub_accepts_a_signed_report_once(reports: Reports):
    client = reports.web.client()
    body = snapshot_of(SITE, "r-a").envelope()
    assert post(client, body, KEY_A).status_code == 202
    replay = post(client, body, KEY_A)
    assert (replay.status_code, replay.json()["outcome"]) == (409, "replay")


def test_the_hub_refuses_a_report_altered_after_signing(reports: Reports):
    client = reports.web.client()
    body = snapshot_of(SITE, "r-a").envelope()
    headers = sign(body, KEY_A, now=NOW)
    tampered = body.replace(b'"value":40', b'"value":45', 1)
    answer = client.post("/api/hub/reports", content=tampered, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")


def test_the_hub_refuses_a_re_signed_report_whose_checksum_no_longer_matches(reports: Reports):
    client = reports.web.client()
    data = json.loads(snapshot_of(SITE, "r-a").envelope())
    data["report"]["figures"][1]["value"] = 45
    answer = post(client, canonical_json(data), KEY_A)
    assert (answer.status_code, answer.json()["reason"]) == (400, "checksum_mismatch")


def test_the_hub_refuses_a_site_reporting_with_another_sites_key(reports: Reports):
    answer = post(reports.web.client(), snapshot_of(SITE, "r-a").envelope(), KEY_B)
    assert (answer.status_code, answer.json()["reason"]) == (403, "site_not_allowed_for_key")


def test_the_hub_refuses_a_stale_request(reports: Reports):
    client = reports.web.client()
    body = snapshot_of(SITE, "r-a").envelope()
    headers = sign(body, KEY_A, now=NOW)
    reports.web.clock.advance(minutes=6)  # type: ignore[attr-defined]
    answer = client.post("/api/hub/reports", content=body, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "stale")


def test_the_hub_totals_sites_and_renders_its_dashboard(reports: Reports):
    client = reports.web.client()
    post(client, snapshot_of(SITE, "r-a").envelope(), KEY_A)
    post(client, snapshot_of(OTHER_SITE, "r-b").envelope(), KEY_B)
    lead = reports.web.signed_in("prog")
    totals = lead.get("/hub/totals.json?month=2024-10").json()
    assert totals["sites"] == [SITE, OTHER_SITE]
    candidates = next(
        t for t in totals["totals"] if t["measure"] == "candidates" and not t["breakdown"]
    )
    assert (candidates["known_total"], candidates["sites_suppressed"]) == (40, 1)  # 40 + *
    page = lead.get("/hub?month=2024-10")
    assert page.status_code == 200 and "40 + 1 x *" in page.text


# -- the overview's small numbers ----------------------------------------------------------------


def test_the_overview_rounds_counts_by_the_same_disclosure_control(reports: Reports):
    for _ in range(8):
        reports.web.ed.stab_wound(site=SITE)
    page = reports.web.signed_in("prog").get("/overview").text
    # the NHS.UK responsive table: each cell starts with its column's heading, for a phone
    site_rows = r'scope="row"[^>]*>\s*<span[^>]*>Site </span>(\w+)\s*</th>(.*?)</tr>'
    rows = dict(re.findall(site_rows, page, re.S))
    counts = r"<td[^>]*>\s*<span[^>]*>[^<]*</span>([^<]*?)\s*</td>"
    new_a = re.findall(counts, rows[SITE])[0]
    new_b = re.findall(counts, rows[OTHER_SITE])[0]
    assert (new_a, new_b) == ("10", "0")  # 8 new referrals round to 10; none stays 0
