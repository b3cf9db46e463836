"""The standalone programme hub (`referral-gateway hub`) from outside, in its own process over
real HTTP: what it refuses to receive, how programme leads sign in, the sites it expects,
and who may ask each of its routes.

Accounts are made as a programme office would, with `referral-gateway users add` on the
hub's data directory (password piped on standard input), and set their own password at the
first sign-in through the pages. Reports arrive signed with each site's key, as the sites'
monthly push sends them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from referral_gateway.config import Settings
from referral_gateway.domain.report_period import ReportMonth, latest_finished_month
from referral_gateway.domain.report_published import Figure, PublishedReport, publish
from referral_gateway.domain.report_snapshot import ReportSnapshot
from referral_gateway.domain.reporting import Cell, build_monthly_report
from referral_gateway.report_formats.signing import SigningKey, sign
from referral_gateway.wiring.reports import build_hub_alone
from tests.reporting.builders import SITE, october_2024
from tests.reporting_http.test_hub_over_http import ROOT, cli, environment, hub_process
from tests.web.conftest import csrf_of
from tests.web.test_access_matrix import app_routes

SITE_A, SITE_B, SITE_C = "RXA01", "RXB02", "RXC03"
SECRETS = {
    SITE_A: "a-hub-secret-of-at-least-32-characters",
    SITE_B: "b-hub-secret-of-at-least-32-characters",
}
OPS_TOKEN = "hub-alone-ops-token-0123456789abcdef"
FIRST_PASSWORD = "given by the programme office 2026"
OWN_PASSWORD = "a lead's own passphrase, long enough"
ACCOUNTS = {  # username: role, sites
    "pat": ("programme_lead", (SITE_A,)),
    "yan": ("youth_worker", (SITE_A,)),
    "ada": ("administrator", ()),
}


def keys_file(path: Path) -> Path:
    """SITE_C is expected to report but has no key yet: it is missing every month."""
    entries = "".join(
        f'[[key]]\nid = "{site.lower()}-1"\nsite = "{site}"\nsecret = "{secret}"\n\n'
        for site, secret in SECRETS.items()
    )
    path.write_text(f'expected_sites = ["{SITE_A}", "{SITE_B}", "{SITE_C}"]\n\n{entries}')
    return path


def add_account(data_dir: Path, username: str, role: str, sites: tuple[str, ...]) -> None:
    args = ["users", "add", "--data-dir", str(data_dir), "--username", username, "--role", role]
    for site in sites:
        args += ["--site", site]
    done = subprocess.run(
        cli(*args),
        cwd=ROOT,
        env=environment(),
        input=f"{FIRST_PASSWORD}\n".encode(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@dataclass
class Hub:
    url: str
    data_dir: Path
    keys: Path
    sessions: dict[str, httpx.Client] = field(default_factory=dict)
    own_password_set: set[str] = field(default_factory=set)


@contextmanager
def running_hub(root: Path) -> Iterator[Hub]:
    """`referral-gateway hub` in its own process, with the accounts of ACCOUNTS made by the
    `users add` command first, expecting SITE_A, SITE_B and SITE_C."""
    data_dir = root / "hub"
    keys = keys_file(root / "hub-keys.toml")
    for username, (role, sites) in ACCOUNTS.items():
        add_account(data_dir, username, role, sites)
    with hub_process(data_dir, keys, RG_OPS_TOKEN=OPS_TOKEN) as url:
        running = Hub(url, data_dir, keys)
        try:
            yield running
        finally:
            for client in running.sessions.values():
                client.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("hub-alone")) as running:
        yield running


def browser(hub: Hub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Accept": "text/html"}, timeout=30)


def first_sign_in(hub: Hub, username: str) -> httpx.Client:
    """Sign in with the password the office gave, and set one's own: the account's session."""
    client = browser(hub)
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"username": username, "password": FIRST_PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/account/password")
    form = client.get("/account/password")
    assert form.status_code == 200
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(form.text),
            "current_password": FIRST_PASSWORD,
            "new_password": OWN_PASSWORD,
            "confirm_password": OWN_PASSWORD,
        },
    )
    assert changed.status_code == 303, changed.text[-500:]
    assert changed.headers["location"] == "/hub?done=password_set"
    return client


def signed_in(hub: Hub, username: str) -> httpx.Client:
    """A new session of an account that has set its own password."""
    client = browser(hub)
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"username": username, "password": OWN_PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/hub")
    return client


def session_of(hub: Hub, username: str) -> httpx.Client:
    if username not in hub.sessions:
        if username in hub.own_password_set:
            hub.sessions[username] = signed_in(hub, username)
        else:
            hub.sessions[username] = first_sign_in(hub, username)
            hub.own_password_set.add(username)
    return hub.sessions[username]


# -- what the hub receives ---------------------------------------------------------------------


def a_report(site: str, month: ReportMonth) -> PublishedReport:
    """The hand-checked October 2024 figures, as `site` publishes them for `month`."""
    facts = [replace(f, site=site) for f in october_2024() if f.site == SITE]
    october = publish(build_monthly_report(site, ReportMonth(2024, 10), facts))
    assert (october.value("screened"), october.value("candidates")) == (500, 40)
    return replace(october, month=month)


def showing(report: PublishedReport, cell: Cell, value: int | str) -> PublishedReport:
    figures = tuple(Figure(f.cell, value if f.cell == cell else f.value) for f in report.figures)
    assert figures != report.figures
    return replace(report, figures=figures)


def push(hub: Hub, report: PublishedReport, report_id: str) -> httpx.Response:
    """Frozen and signed as the site's monthly push does it (checksum and all consistent)."""
    now = datetime.now(UTC)
    snapshot = ReportSnapshot.freeze(report, report_id=report_id, created_at=now)
    body = snapshot.envelope()
    key = SigningKey(f"{report.site.lower()}-1", SECRETS[report.site].encode())
    return httpx.post(f"{hub.url}/api/hub/reports", content=body, headers=sign(body, key, now=now))


def test_a_report_failing_disclosure_control_is_refused_naming_the_rule_not_the_figures(hub: Hub):
    month = latest_finished_month(datetime.now(UTC)).previous()
    sixteen_seventeen = Cell("candidates", "age_band", "16_to_17")
    answer = push(hub, showing(a_report(SITE_B, month), sixteen_seventeen, 3), "b-small-3s")
    assert answer.status_code == 422
    assert answer.json() == {
        "outcome": "refused",
        "reason": "disclosure_control",
        "rule": "small_number",
        "figures": ["candidates/age_band/16_to_17"],
    }

    unrounded = push(hub, showing(a_report(SITE_B, month), Cell("screened"), 472), "b-472")
    assert (unrounded.status_code, unrounded.json()["rule"]) == (422, "unrounded")
    assert "472" not in unrounded.text

    # one age band hidden alone: the total minus the other bands gives it back
    lone = push(hub, showing(a_report(SITE_B, month), sixteen_seventeen, "*"), "b-lone-star")
    assert (lone.status_code, lone.json()["rule"]) == (422, "recoverable")

    # nothing of it was kept: the month has no report from site B
    totals = httpx.get(
        f"{hub.url}/hub/totals.json",
        params={"month": str(month)},
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    ).json()
    assert SITE_B not in totals["sites"]
    # and the same figures, honestly published, are taken
    assert push(hub, a_report(SITE_B, month), "b-honest").status_code == 202


def test_a_report_for_a_month_that_has_not_ended_is_refused(hub: Hub):
    this_month = ReportMonth.of(datetime.now(UTC))
    for month, report_id in ((this_month, "a-this-month"), (this_month.next(), "a-next-month")):
        answer = push(hub, a_report(SITE_A, month), report_id)
        assert (answer.status_code, answer.json()["reason"]) == (422, "month_not_ended"), month
    last_month = latest_finished_month(datetime.now(UTC))
    assert push(hub, a_report(SITE_A, last_month), "a-last-month").status_code == 202


# -- programme leads sign in ---------------------------------------------------------------------


def test_a_browser_without_a_session_gets_the_sign_in_page_not_a_json_401(hub: Hub):
    with browser(hub) as client:
        answer = client.get("/hub", follow_redirects=True)
    assert answer.status_code == 200 and str(answer.url).endswith("/sign-in?next=/hub")
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Sign in</h1>" in answer.text


def test_a_programme_lead_signs_in_and_sees_which_expected_sites_have_not_reported(hub: Hub):
    month = latest_finished_month(datetime.now(UTC))
    assert push(hub, a_report(SITE_A, month), "a-for-the-lead").status_code in (202, 409)
    lead = session_of(hub, "pat")
    page = lead.get("/hub", params={"month": str(month)})
    assert page.status_code == 200
    # a row of one cell: a site and its report (not the figures table's rows)
    row = r'<tr[^>]*><th[^>]*scope="row">(\w+)</th>\s*<td[^>]*>((?:(?!</td>).)*)</td></tr>'
    expected = dict(re.findall(row, page.text, re.S))
    assert set(expected) == {SITE_A, SITE_B, SITE_C}
    assert expected[SITE_A].startswith("Received ")
    assert "Missing" in expected[SITE_B] and "Missing" in expected[SITE_C]
    assert "2 of 3 expected sites have not reported" in page.text
    # the lead signs out, and the session is gone
    signed_out = lead.post("/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert (signed_out.status_code, signed_out.headers["location"]) == (
        303,
        "/sign-in?done=signed_out",
    )
    assert lead.get("/hub").headers["location"] == "/sign-in?next=/hub"
    del hub.sessions["pat"]


def test_the_ops_token_reads_the_downloads_but_is_no_one_to_sign_in_as(hub: Hub):
    script = {"Authorization": f"Bearer {OPS_TOKEN}"}
    month = str(latest_finished_month(datetime.now(UTC)))
    totals = httpx.get(f"{hub.url}/hub/totals.json", params={"month": month}, headers=script)
    assert totals.status_code == 200 and totals.json()["month"] == month
    assert httpx.get(f"{hub.url}/hub/totals.json", params={"month": month}).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(f"{hub.url}/hub/totals.json", headers=wrong).status_code == 401


# -- the access matrix of the hub alone ----------------------------------------------------------

CALLERS = ("anonymous", "yan", "pat", "ada", "ops_token")


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    expected: str  # one status per caller, in CALLERS order
    path: str = ""
    body: str = "none"  # none | form | json
    fresh_session: bool = False  # signing out ends the session: a new one per cell


# fmt: off
#                                                      anon  yw  lead admin ops
HUB_MATRIX = [
    Row("GET", "/openapi.json",                         "200 200 200 200 200"),
    Row("GET", "/docs",                                 "200 200 200 200 200"),
    Row("GET", "/docs/oauth2-redirect",                 "200 200 200 200 200"),
    Row("GET", "/redoc",                                "200 200 200 200 200"),
    Row("GET", "/static",                               "200 200 200 200 200",
        path="/static/app.css"),
    Row("GET", "/nhsuk",                                "200 200 200 200 200",
        path="/nhsuk/nhsuk-frontend.min.css"),
    Row("GET", "/assets",                               "200 200 200 200 200",
        path="/assets/images/nhsuk-icon-cross.svg"),
    Row("GET", "/health",                               "200 200 200 200 200"),
    # -- signing in: the gateway's pages; everyone lands on /hub --------------------------------
    Row("GET", "/",                                     "303 303 303 303 303"),
    Row("GET", "/sign-in",                              "200 303 303 303 200"),
    Row("POST", "/sign-in",                             "403 403 403 403 403", body="form"),
    Row("POST", "/sign-out",                            "303 303 303 303 303", body="form",
        fresh_session=True),
    # a form kept while its session had ended (the hub alone keeps none: to the start page)
    Row("GET", "/kept-form",                            "303 303 303 303 303"),
    # "Stay signed in" on the idle warning: any live session
    Row("POST", "/session/refresh",                     "401 200 200 200 401", body="form"),
    Row("GET", "/account/password",                     "303 200 200 200 303"),
    Row("POST", "/account/password",                    "303 422 422 422 303", body="form"),
    Row("POST", "/notices/{notice_id}/read",            "303 404 404 404 303", body="form",
        path="/notices/no-such-notice/read"),
    # -- the hub: signed pushes; the page for leads; downloads also for the ops token -----------
    Row("POST", "/api/hub/reports",                     "401 401 401 401 401", body="json"),
    Row("GET", "/hub",                                  "303 403 200 200 303"),
    Row("GET", "/hub/download.csv",                     "401 403 200 200 200"),
    Row("GET", "/hub/sites.csv",                        "401 403 200 200 200"),
    Row("GET", "/hub/totals.json",                      "401 403 200 200 200"),
]
# fmt: on


def ask(hub: Hub, row: Row, caller: str) -> int:
    headers: dict[str, str] = {"Accept": "text/html"}
    csrf = ""
    client = httpx.Client(base_url=hub.url, timeout=30)
    try:
        if caller in ACCOUNTS:
            session_of(hub, caller)  # its own password set
            session = signed_in(hub, caller) if row.fresh_session else session_of(hub, caller)
            csrf = csrf_of(session.get("/account/password").text)
            client.cookies.update(session.cookies)
            if row.fresh_session:
                session.close()
        elif caller == "ops_token":
            headers["Authorization"] = f"Bearer {OPS_TOKEN}"
        kwargs: dict[str, object] = {}
        if row.body == "form":
            kwargs["data"] = {"csrf_token": csrf} if csrf else {}
        elif row.body == "json":
            kwargs["json"] = {}
        return client.request(
            row.method, row.path or row.route, headers=headers, **kwargs
        ).status_code  # type: ignore[arg-type]
    finally:
        client.close()


def test_every_hub_route_answers_every_caller_as_the_matrix_says(hub: Hub, tmp_path):
    # the routes the hub serves, from the same command's app built here on a scratch copy
    settings = Settings(data_dir=tmp_path / "routes", hub_keys_file=str(hub.keys))
    app, engine = build_hub_alone(settings, lambda: datetime.now(UTC))
    engine.dispose()
    rows = {(row.method, row.route) for row in HUB_MATRIX}
    served = app_routes(app)
    assert len(rows) == len(HUB_MATRIX), "two rows for one route"
    assert served - rows == set(), "hub routes without a row in the matrix"
    assert rows - served == set(), "rows for routes the hub no longer serves"
    wrong = []
    for row in HUB_MATRIX:
        codes = dict(zip(CALLERS, (int(c) for c in row.expected.split()), strict=True))
        for caller, expected in codes.items():
            got = ask(hub, row, caller)
            if got != expected:
                wrong.append(f"{row.method} {row.route} as {caller}: {got}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
