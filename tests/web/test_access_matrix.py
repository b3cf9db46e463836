"""The access matrix: every route of the whole app (pages, reports, hub, FHIR, operations),
asked by every kind of caller over real HTTP, with the status each must get.

One table, one test. A route added to the app without a row here fails the test, and so does
a row whose route is gone. Each cell runs with a valid session and CSRF token for the caller
(so what is tested is the role and the site, not the form's token), a fresh referral where
the request changes one, and a fresh session for signing out. Forms are sent without their
fields: a caller who may use the form gets its own validation answer (400, 422 or the page
again), a caller who may not is refused first.

The app is built with an ops token set: `/api/ops/*` answer only that token, whatever the
default for an unset token is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from consent.policy import Role
from referral_gateway.storage.fhir_store import ApiClientStore
from tests.fhir import builders as fhir
from tests.web.builders import SITE_A, SITE_B
from tests.web.conftest import Web
from tests.web.live import LiveServer
from tests.web.live_site import Site

OPS_TOKEN = "ops-token-for-the-matrix"
HUB_SECRET = "hub-secret-for-the-matrix-0123456789abcdef"

CALLERS = (
    "anonymous",
    "youth_worker_a",
    "youth_worker_b",
    "team_lead_a",
    "programme_lead",
    "administrator",
    "fhir_token_b",
    "ops_token",
)
ACCOUNTS = {
    "youth_worker_a": (Role.YOUTH_WORKER, (SITE_A,)),
    "youth_worker_b": (Role.YOUTH_WORKER, (SITE_B,)),
    "team_lead_a": (Role.TEAM_LEAD, (SITE_A,)),
    "programme_lead": (Role.PROGRAMME_LEAD, (SITE_A, SITE_B)),
    "administrator": (Role.ADMINISTRATOR, ()),
}
HOME = {
    Role.YOUTH_WORKER: "/queue",
    Role.TEAM_LEAD: "/queue",
    Role.PROGRAMME_LEAD: "/overview",
    Role.ADMINISTRATOR: "/admin/users",
}


@dataclass(frozen=True)
class Row:
    """One route and method: how to ask it, and what each caller gets (in CALLERS order)."""

    method: str
    route: str
    expected: str
    path: str = ""  # the concrete path when the route has parameters
    body: str = "none"  # none | form | fhir-bundle | fhir-encounter | json
    fresh: str = ""  # "referral": a new site A referral per cell; "session": a new session
    stream: bool = False
    fields: tuple[tuple[str, str], ...] = ()  # form fields; a caller's name is their user id

    def statuses(self) -> dict[str, int]:
        codes = self.expected.split()
        assert len(codes) == len(CALLERS), f"{self.method} {self.route}: one status per caller"
        return dict(zip(CALLERS, (int(c) for c in codes), strict=True))


R = "/referrals/{referral_id}"
# fmt: off
#                                                      anon yw-a yw-b lead prog admin fhir-b ops
MATRIX = [
    # -- framework and static --------------------------------------------------------------
    Row("GET", "/openapi.json",                         "200 200 200 200 200 200 200 200"),
    Row("GET", "/docs",                                 "200 200 200 200 200 200 200 200"),
    Row("GET", "/docs/oauth2-redirect",                 "200 200 200 200 200 200 200 200"),
    Row("GET", "/redoc",                                "200 200 200 200 200 200 200 200"),
    Row("GET", "/static",                               "200 200 200 200 200 200 200 200",
        path="/static/app.css"),
    Row("GET", "/nhsuk",                                "200 200 200 200 200 200 200 200",
        path="/nhsuk/nhsuk-frontend.min.css"),
    Row("GET", "/assets",                               "200 200 200 200 200 200 200 200",
        path="/assets/images/nhsuk-icon-cross.svg"),
    Row("GET", "/health",                               "200 200 200 200 200 200 200 200"),
    Row("GET", "/manifest.webmanifest",                 "200 200 200 200 200 200 200 200"),
    Row("GET", "/sw.js",                                "200 200 200 200 200 200 200 200"),
    Row("GET", "/health/live",                          "200 200 200 200 200 200 200 200"),
    Row("GET", "/health/ready",                         "200 200 200 200 200 200 200 200"),
    # -- operations: the ops token only -------------------------------------------------------
    Row("GET", "/api/ops/counts",                       "401 401 401 401 401 401 401 200"),
    Row("GET", "/api/ops/errors",                       "401 401 401 401 401 401 401 200"),
    Row("GET", "/api/ops/fhir-sources",                 "401 401 401 401 401 401 401 200"),
    Row("GET", "/metrics",                              "401 401 401 401 401 401 401 200"),
    # -- FHIR: API tokens only (any site's token writes for its own site) --------------------
    Row("GET", "/fhir/metadata",                        "200 200 200 200 200 200 200 200"),
    Row("POST", "/fhir",                                "401 401 401 401 401 401 200 403",
        body="fhir-bundle"),
    Row("POST", "/fhir/",                               "401 401 401 401 401 401 200 403",
        body="fhir-bundle"),
    Row("POST", "/fhir/subscription-hook",              "401 401 401 401 401 401 400 403",
        body="json"),
    Row("POST", "/fhir/{resource_type}",                "401 401 401 401 401 401 201 403",
        path="/fhir/Encounter", body="fhir-encounter"),
    Row("PUT", "/fhir/{resource_type}/{resource_id}",   "401 401 401 401 401 401 201 403",
        path="/fhir/Encounter/matrix-e1", body="fhir-encounter"),
    # onward services' Tasks: a service's own token only (an ED's token is refused)
    Row("GET", "/fhir/Task/{task_id}",                  "401 401 401 401 401 401 403 403",
        path="/fhir/Task/no-such-task"),
    Row("PUT", "/fhir/Task/{task_id}",                  "401 401 401 401 401 401 403 403",
        path="/fhir/Task/no-such-task", body="json"),
    Row("PATCH", "/fhir/Task/{task_id}",                "401 401 401 401 401 401 403 403",
        path="/fhir/Task/no-such-task", body="json"),
    Row("GET", "/fhir/{path:path}",                     "405 405 405 405 405 405 405 405",
        path="/fhir/Patient/p1"),
    Row("POST", "/fhir/{path:path}",                    "405 405 405 405 405 405 405 405",
        path="/fhir/Patient/p1", body="fhir-encounter"),
    Row("PUT", "/fhir/{path:path}",                     "405 405 405 405 405 405 405 405",
        path="/fhir/Patient/p1/_history/1", body="fhir-encounter"),
    Row("PATCH", "/fhir/{path:path}",                   "405 405 405 405 405 405 405 405",
        path="/fhir/Patient/p1", body="json"),
    Row("DELETE", "/fhir/{path:path}",                  "405 405 405 405 405 405 405 405",
        path="/fhir/Patient/p1"),
    # -- signing in and out -------------------------------------------------------------------
    Row("GET", "/",                                     "303 303 303 303 303 303 303 303"),
    Row("GET", "/sign-in",                              "200 303 303 303 303 303 200 200"),
    Row("POST", "/sign-in",                             "403 403 403 403 403 403 403 403",
        body="form"),
    Row("POST", "/sign-out",                            "303 303 303 303 303 303 303 303",
        body="form", fresh="session"),
    # a form kept while its session had ended (nothing kept here: to the start page)
    Row("GET", "/kept-form",                            "303 303 303 303 303 303 303 303"),
    # "Stay signed in" on the idle warning: any live session
    Row("POST", "/session/refresh",                     "401 200 200 200 200 200 401 401",
        body="form"),
    # -- one's own account: any signed-in staff ------------------------------------------------
    Row("GET", "/account/password",                     "303 200 200 200 200 200 303 303"),
    Row("POST", "/account/password",                    "303 422 422 422 422 422 303 303",
        body="form"),
    Row("POST", "/notices/{notice_id}/read",            "303 404 404 404 404 404 303 303",
        path="/notices/1/read", body="form"),  # signed in, but no such notice for anyone
    # -- the queue and referrals: staff of the referral's site -------------------------------
    Row("GET", "/queue",                                "303 200 200 200 403 403 303 303"),
    Row("GET", "/queue/cards",                          "303 200 200 200 403 403 303 303"),
    Row("GET", "/queue/events",                         "401 200 200 200 401 401 401 401",
        stream=True),  # no stream for a role without a queue: 401 stops the page's retries
    Row("GET", "/referrals/new",                        "303 200 200 200 403 403 303 303"),
    Row("POST", "/referrals/new",                       "303 422 422 422 403 403 303 303",
        body="form"),
    Row("GET", R,                                       "303 200 404 200 403 403 303 303"),
    Row("GET", "/follow-ups",                           "303 200 200 200 403 403 303 303"),
    Row("POST", R + "/claim",                           "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/release",                         "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/assign",                          "303 303 404 303 403 403 303 303",
        body="form", fresh="referral", fields=(("assignee", "youth_worker_a"),)),
    Row("POST", R + "/consent",                         "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/contacts",                        "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/support",                         "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/onward",                          "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/send-onward",                     "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/notes",                           "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/close",                           "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("GET", R + "/close",                            "303 303 404 303 403 403 303 303"),
    Row("POST", R + "/reopen",                          "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/not-assault",                     "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    Row("POST", R + "/follow-up",                       "303 303 404 303 403 403 303 303",
        body="form", fresh="referral"),
    # -- each caseworker's alert choices and devices ------------------------------------------
    Row("GET", "/alerts",                               "303 200 200 200 403 403 303 303"),
    Row("POST", "/alerts",                              "303 303 303 303 403 403 303 303",
        body="form"),
    Row("POST", "/alerts/devices",                      "303 400 400 400 403 403 303 303",
        body="form"),
    Row("POST", "/alerts/devices/forget",               "303 303 303 303 403 403 303 303",
        body="form"),
    # -- programme lead and administrator pages ------------------------------------------------
    Row("GET", "/overview",                             "303 403 403 200 200 403 303 303"),
    Row("GET", "/team",                                 "303 403 403 200 403 403 303 303"),
    Row("GET", "/admin/users",                          "303 403 403 403 403 200 303 303"),
    Row("POST", "/admin/users",                         "303 403 403 403 403 422 303 303",
        body="form"),
    Row("GET", "/admin/services",                       "303 403 403 403 403 200 303 303"),
    Row("POST", "/admin/outbox/retry",                  "303 403 403 403 403 400 303 303",
        body="form"),
    Row("POST", "/admin/users/{user_id}",               "303 403 403 403 403 400 303 303",
        body="form"),
    # -- reports: signed-in staff by role and site; downloads also for the ops token ----------
    Row("GET", "/reports",                              "303 403 403 403 200 200 303 303"),
    Row("GET", "/reports/site/{site}",                  "303 403 403 403 200 200 303 303",
        path=f"/reports/site/{SITE_A}"),
    Row("GET", "/reports/download.csv",                 "401 403 403 403 200 200 401 200"),
    Row("GET", "/reports/download.json",                "401 403 403 403 200 200 401 200"),
    Row("GET", "/reports/istv.csv",                     "303 403 403 403 200 200 303 303",
        path=f"/reports/istv.csv?site={SITE_A}"),
    Row("GET", "/reports/admin",                        "303 403 403 403 403 200 303 303"),
    Row("GET", "/reports/admin/pushes",                 "401 403 403 403 403 200 401 401"),
    Row("POST", "/reports/admin/retry",                 "303 403 403 403 403 409 303 303",
        body="form"),
    Row("POST", "/reports/admin/reissue",               "303 403 403 403 403 422 303 303",
        body="form"),
    # -- the programme hub: sites' signed pushes; report readers (aggregates only) -------------
    Row("POST", "/api/hub/reports",                     "401 401 401 401 401 401 401 401",
        body="json"),
    Row("GET", "/hub",                                  "303 403 403 403 200 200 303 303"),
    Row("GET", "/hub/download.csv",                     "401 403 403 403 200 200 401 200"),
    Row("GET", "/hub/sites.csv",                        "401 403 403 403 200 200 401 200"),
    Row("GET", "/hub/totals.json",                      "401 403 403 403 200 200 401 200"),
]
# fmt: on


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves; HEAD, which answers as GET, left out."""
    found: set[tuple[str, str]] = set()

    def add(route: Any, path: str) -> None:
        if isinstance(route, Mount):
            found.add(("GET", path))
            return
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                found.add((method, path))

    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's included routers
        if contexts is not None:
            for context in contexts():
                add(context.original_route, context.path)
        else:
            add(route, route.path)
    return found


@dataclass
class Matrix:
    """The running app, its callers' sessions and what the rows point at."""

    web: Web
    live: LiveServer
    http: httpx.Client
    users: dict[str, str] = field(default_factory=dict)  # caller -> user id
    referral: str = ""  # a referral at site A, unclaimed
    fhir_token: str = ""
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # cookie, CSRF token


def sign_in(gw: Matrix, caller: str) -> tuple[str, str]:
    client = gw.web.signed_in(caller)
    role = ACCOUNTS[caller][0]
    token = gw.web.token(client, HOME[role])
    cookie = next(iter(client.cookies.jar))
    return f"{cookie.name}={cookie.value}", token


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Iterator[Matrix]:
    data_dir: Path = tmp_path_factory.mktemp("matrix")
    keys = data_dir / "hub-keys.toml"
    keys.write_text(f'[[key]]\nid = "k-a"\nsite = "{SITE_A}"\nsecret = "{HUB_SECRET}"\n')
    site = Site(data_dir, ops_token=OPS_TOKEN, hub_keys_file=str(keys))
    web, live, ed, clock = site.web, site.live, site.web.ed, site.clock
    http = httpx.Client(base_url=live.url, timeout=10)
    gw = Matrix(web, live, http)
    try:
        for caller, (role, sites) in ACCOUNTS.items():
            gw.users[caller] = web.account(caller, role, sites).id
            gw.sessions[caller] = sign_in(gw, caller)
        gw.referral = ed.stab_wound(site=SITE_A)
        ed.stab_wound(site=SITE_B)
        _, gw.fhir_token = ApiClientStore(site.running.engine).create(
            name="site-b-epr", site=SITE_B, now=clock()
        )
        yield gw
    finally:
        http.close()
        site.stop()


def ask(gw: Matrix, row: Row, caller: str) -> int:
    headers: dict[str, str] = {}
    csrf = ""
    if caller in ACCOUNTS:
        cookie, csrf = sign_in(gw, caller) if row.fresh == "session" else gw.sessions[caller]
        headers["Cookie"] = cookie
    elif caller == "fhir_token_b":
        headers["Authorization"] = f"Bearer {gw.fhir_token}"
    elif caller == "ops_token":
        headers["Authorization"] = f"Bearer {OPS_TOKEN}"
    referral = gw.web.ed.stab_wound(site=SITE_A) if row.fresh == "referral" else gw.referral
    path = (row.path or row.route).format(referral_id=referral, user_id=gw.users["youth_worker_b"])
    kwargs: dict[str, Any] = {}
    if row.body == "form":
        data = {name: gw.users.get(value, value) for name, value in row.fields}
        kwargs["data"] = data | ({"csrf_token": csrf} if csrf else {})
    elif row.body in ("fhir-bundle", "fhir-encounter", "json"):
        headers["Content-Type"] = (
            "application/fhir+json" if row.body != "json" else "application/json"
        )
        content: Any = {}
        if row.body == "fhir-bundle":
            content = fhir.bundle(fhir.post(fhir.encounter()))
        elif row.body == "fhir-encounter":
            content = fhir.encounter(id="matrix-e1")
        kwargs["json"] = content
    client = gw.http
    client.cookies.clear()  # each cell sends only its caller's session
    try:
        if row.stream:
            with client.stream(row.method, path, headers=headers) as response:
                return response.status_code
        return client.request(row.method, path, headers=headers, **kwargs).status_code
    finally:
        client.cookies.clear()


def test_every_route_answers_every_caller_as_the_matrix_says(matrix: Matrix):
    rows = {(row.method, row.route) for row in MATRIX}
    served = app_routes(matrix.web.app)
    assert len(rows) == len(MATRIX), "two rows for one route"
    assert served - rows == set(), "routes without a row in the access matrix"
    assert rows - served == set(), "rows for routes the app no longer serves"
    wrong = []
    for row in MATRIX:
        for caller, expected in row.statuses().items():
            got = ask(matrix, row, caller)
            if got != expected:
                wrong.append(f"{row.method} {row.route} as {caller}: {got}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
