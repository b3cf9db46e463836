"""Programme hub over HTTP: sites push signed reports here; leads see cross-site totals.

    POST /api/hub/reports          signed envelope (see report_formats.signing)
    GET  /hub?month=YYYY-MM        one row per site (its current version; a correction shows
                                   "version 2: <reason>" and the versions before it),
                                   totals, missing sites, funnel, 12-month trend
    GET  /hub/download.csv         totals; /hub/sites.csv: every site's report;
    GET  /hub/totals.json          totals as JSON

`build_hub_router` mounts into the gateway's app; `build_hub_app` is the hub alone (what
`referral-gateway hub` serves), for a programme office that runs no ED feed. Either way the
page is read by signed-in programme leads and administrators (the gateway's accounts,
sessions and CSRF; signed out, a browser is sent to the sign-in page), and the downloads
also by the ops token's bearer (scripts), as the gateway's own report downloads are.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from consent.policy import Actor
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.report_period import ReportMonth, trailing_months
from referral_gateway.domain.report_published import (
    PublishedReport,
    cross_site_totals,
)
from referral_gateway.domain.reporting import Cell
from referral_gateway.report_formats.files import reports_csv, totals_csv
from referral_gateway.services.hub import HubKey, HubReceiver
from referral_gateway.storage.reports import Receipt, ReportStore
from referral_gateway.web import report_pages
from referral_gateway.web.context import SignInContext
from referral_gateway.web.openapi import SIGN_IN, CsvResponse, refusals
from referral_gateway.web.render import app_templates
from referral_gateway.web.reports import REPORT_ROLES, download_reader, page_reader, parse_month
from referral_gateway.web.ui import mount_sign_in

MAX_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class ReceivedRow:
    report: PublishedReport
    received_at: datetime
    checksum: str
    version: int = 1
    reason: str | None = None
    key_id: str = ""


@dataclass(frozen=True)
class ExpectedSite:
    site: str
    received_at: datetime | None  # None: no report for the month ("missing")


def build_hub_router(
    store: ReportStore,
    keys: Mapping[str, HubKey],
    actor_dependency: Callable[..., Actor],
    clock: Clock,
    *,
    templates: jinja2.Environment | None = None,
    prefix: str = "/hub",
    download_dependency: Callable[..., Actor] | None = None,
    expected_sites: Sequence[str] = (),
) -> APIRouter:
    """`actor_dependency` reads the page, `download_dependency` (default: the same) the
    CSV and JSON; `expected_sites` are shown as missing for a month they did not report."""
    receiver = HubReceiver(store, keys, clock)
    router = APIRouter(tags=["hub"], responses=refusals(400, 401, 403, 409, 413, 422) | SIGN_IN)
    ActorDep = Annotated[Actor, Depends(actor_dependency)]
    DownloadDep = Annotated[Actor, Depends(download_dependency or actor_dependency)]

    @router.post("/api/hub/reports", status_code=202)
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"outcome": "refused", "reason": "too_large"}, status_code=413)
        answer = receiver.receive(dict(request.headers), body)
        return JSONResponse(answer.body, status_code=answer.status_code)

    def month_rows(month: ReportMonth) -> list[ReceivedRow]:
        return [_row(r) for r in store.received(month)]

    @router.get(prefix, response_class=HTMLResponse)
    def dashboard(request: Request, actor: ActorDep, month: str | None = None) -> HTMLResponse:
        _lead(actor)
        m = parse_month(month, clock(), page=True)
        rows = month_rows(m)
        totals = cross_site_totals([r.report for r in rows])
        by_cell = {t.cell: t for t in totals}
        months = trailing_months(m, 12)
        charts = report_pages.combined_charts(
            "all sites", months, [[r.report for r in month_rows(past)] for past in months]
        )
        received = {r.report.site: r.received_at for r in rows}
        expected = [ExpectedSite(site, received.get(site)) for site in expected_sites]
        page = report_pages.render(
            templates or app_templates(request),
            "hub_dashboard.html",
            base=prefix,
            month=str(m),
            month_label=report_pages.month_label(m),
            month_choices=report_pages.month_choices(m, ReportMonth.of(clock())),
            headline=report_pages.headline(),
            receipts=[
                {
                    "report": r.report,
                    "received_at": r.received_at,
                    "checksum": r.checksum,
                    "version": r.version,
                    "reason": r.reason,
                    "history": (store.receipt_history(r.report.site, m) if r.version > 1 else []),
                }
                for r in rows
            ],
            totals={
                measure: (by_cell[Cell(measure)].display() if Cell(measure) in by_cell else "0")
                for measure, _ in report_pages.headline()
            },
            expected=expected,
            missing=[e.site for e in expected if e.received_at is None],
            funnel=charts["funnel"],
            trend=charts["trend"],
            **_signed_in(request),
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @router.get(f"{prefix}/download.csv", response_class=CsvResponse)
    def totals_download(actor: DownloadDep, month: str | None = None) -> Response:
        _lead(actor)
        m = parse_month(month, clock())
        totals = cross_site_totals([r.report for r in month_rows(m)])
        return Response(
            totals_csv(str(m), totals),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="programme-totals-{m}.csv"'},
        )

    @router.get(f"{prefix}/sites.csv", response_class=CsvResponse)
    def sites_download(actor: DownloadDep, month: str | None = None) -> Response:
        _lead(actor)
        m = parse_month(month, clock())
        return Response(
            reports_csv([r.report for r in month_rows(m)]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="programme-sites-{m}.csv"'},
        )

    @router.get(f"{prefix}/totals.json")
    def totals_json(actor: DownloadDep, month: str | None = None) -> dict[str, object]:
        _lead(actor)
        m = parse_month(month, clock())
        rows = month_rows(m)
        return {
            "month": str(m),
            "sites": [r.report.site for r in rows],
            "versions": [
                {
                    "site": r.report.site,
                    "version": r.version,
                    "reason": r.reason,
                    "received_at": r.received_at.isoformat(),
                    "key_id": r.key_id,
                }
                for r in rows
            ],
            "totals": [
                {
                    "measure": t.cell.measure,
                    "breakdown": t.cell.breakdown,
                    "category": t.cell.category,
                    "known_total": t.known,
                    "sites_suppressed": t.suppressed_sites,
                }
                for t in cross_site_totals([r.report for r in rows])
            ],
        }

    return router


def build_hub_app(
    store: ReportStore,
    keys: Mapping[str, HubKey],
    ctx: SignInContext,
    *,
    ops_token: str | None = None,
    expected_sites: Sequence[str] = (),
) -> FastAPI:
    """The hub alone: its sign-in pages (`ctx`, with `landing` /hub: every account lands on
    the dashboard, which only programme leads and administrators may read), the hub's routes
    and a health check. The ops token reads the downloads, never the page."""
    app = FastAPI(title="Referral gateway: programme hub", version="0.1.0")
    mount_sign_in(app, ctx)
    app.include_router(
        build_hub_router(
            store,
            keys,
            page_reader,
            ctx.clock,
            templates=ctx.templates,
            download_dependency=download_reader(ops_token),
            expected_sites=expected_sites,
        )
    )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app


def _signed_in(request: Request) -> dict[str, Any]:
    """What `base.html` needs about the person reading (none for the ops token's bearer)."""
    session = getattr(request.state, "session", None)
    ctx = getattr(request.app.state, "web", None)
    return {
        "user": session.user if session is not None else None,
        "csrf_token": session.csrf_token if session is not None else "",
        "done_message": "",
        "landing": ctx.landing if isinstance(ctx, SignInContext) else "",
    }


def _row(receipt: Receipt) -> ReceivedRow:
    return ReceivedRow(
        receipt.snapshot.report(),
        receipt.received_at,
        receipt.snapshot.checksum,
        receipt.version,
        receipt.reason,
        receipt.key_id,
    )


def _lead(actor: Actor) -> None:
    if actor.role not in REPORT_ROLES:
        raise HTTPException(status_code=403, detail="the hub is for programme leads")
