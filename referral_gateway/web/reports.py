"""Report pages and downloads for programme leads, and the push status for administrators.

    GET  /reports?month=YYYY-MM[&raw=1]          one row per site, month picker
    GET  /reports/site/{site}?month=             funnel, 12-month trend, every figure
    GET  /reports/download.csv|json?month=[&site=][&raw=1]
    GET  /reports/istv.csv?month=&site=           Cardiff Model extract
    GET  /reports/admin                           snapshots, sent / failed   (administrators)
    POST /reports/admin/retry                     retry unsent pushes now     (administrators)

Who is asking comes from `actor_dependency`, a FastAPI dependency returning a
`consent.policy.Actor`: the web accounts plug theirs in. Programme leads see disclosure-
controlled figures for their sites (all sites when they have none listed); administrators
may add `raw=1` for exact counts. Everyone else is refused.
"""

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from consent.policy import Actor, Role
from referral_gateway.domain.istv import istv_csv
from referral_gateway.domain.report_period import (
    ReportMonth,
    ReportMonthError,
    latest_finished_month,
)
from referral_gateway.domain.report_render import reports_csv, reports_json
from referral_gateway.services.report_push import MonthlyPush
from referral_gateway.services.reporting import ReportService
from referral_gateway.storage.reports import ReportStore
from referral_gateway.web import report_pages

REPORT_ROLES = frozenset({Role.PROGRAMME_LEAD, Role.ADMINISTRATOR})


def parse_month(value: str | None, now: datetime) -> ReportMonth:
    if not value:
        return latest_finished_month(now)
    try:
        return ReportMonth.parse(value)
    except ReportMonthError:
        raise HTTPException(status_code=422, detail="month must be YYYY-MM") from None


def build_reports_router(
    service: ReportService,
    store: ReportStore,
    actor_dependency: Callable[..., Actor],
    clock: Callable[[], datetime],
    *,
    push: MonthlyPush | None = None,
    prefix: str = "/reports",
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["reports"])
    ActorDep = Annotated[Actor, Depends(actor_dependency)]

    def allowed(actor: Actor, raw: bool) -> Actor:
        if actor.role not in REPORT_ROLES:
            raise HTTPException(status_code=403, detail="reports are for programme leads")
        if raw and actor.role is not Role.ADMINISTRATOR:
            raise HTTPException(status_code=403, detail="raw counts are for administrators")
        return actor

    def sites_for(actor: Actor, site: str | None = None) -> list[str]:
        sites = service.sites()
        if actor.role is not Role.ADMINISTRATOR and actor.sites:
            sites = [s for s in sites if s in actor.sites]
        if site is not None:
            if site not in sites:
                raise HTTPException(status_code=404, detail="no such site")
            return [site]
        return sites

    def month_of(value: str | None) -> ReportMonth:
        month = parse_month(value, clock())
        if month > ReportMonth.of(clock()):
            raise HTTPException(status_code=422, detail="that month has not started")
        return month

    @router.get("", response_class=HTMLResponse)
    def dashboard(
        actor: ActorDep, month: str | None = None, raw: Annotated[bool, Query()] = False
    ) -> HTMLResponse:
        allowed(actor, raw)
        m = month_of(month)
        reports = [service.published(s, m, raw=raw) for s in sites_for(actor)]
        return HTMLResponse(
            report_pages.dashboard_page(
                base=prefix,
                month=m,
                latest=ReportMonth.of(clock()),
                reports=reports,
                raw=raw,
            )
        )

    @router.get("/site/{site}", response_class=HTMLResponse)
    def site_page(
        site: str,
        actor: ActorDep,
        month: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> HTMLResponse:
        allowed(actor, raw)
        m = month_of(month)
        (site,) = sites_for(actor, site)
        trend = service.trend(site, m, raw=raw)
        return HTMLResponse(
            report_pages.site_page(base=prefix, report=trend[-1], trend=trend, raw=raw)
        )

    @router.get("/download.csv")
    def download_csv(
        actor: ActorDep,
        month: str | None = None,
        site: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> Response:
        allowed(actor, raw)
        m = month_of(month)
        reports = [service.published(s, m, raw=raw) for s in sites_for(actor, site)]
        name = f"throughput-{m}{'-' + site if site else ''}{'-raw' if raw else ''}.csv"
        return Response(
            reports_csv(reports), media_type="text/csv; charset=utf-8", headers=_attachment(name)
        )

    @router.get("/download.json")
    def download_json(
        actor: ActorDep,
        month: str | None = None,
        site: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> Response:
        allowed(actor, raw)
        m = month_of(month)
        reports = [service.published(s, m, raw=raw) for s in sites_for(actor, site)]
        name = f"throughput-{m}{'-' + site if site else ''}{'-raw' if raw else ''}.json"
        return Response(
            reports_json(reports, generated_at=clock()),
            media_type="application/json",
            headers=_attachment(name),
        )

    @router.get("/istv.csv")
    def istv(actor: ActorDep, site: str, month: str | None = None) -> Response:
        allowed(actor, False)
        m = month_of(month)
        (site,) = sites_for(actor, site)
        return Response(
            istv_csv(service.istv(site, m)),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"istv-{site}-{m}.csv"),
        )

    @router.get("/admin", response_class=HTMLResponse)
    def admin(actor: ActorDep) -> HTMLResponse:
        _admin(actor)
        states = {(p.site, p.month): p for p in store.push_states()}
        return HTMLResponse(
            report_pages.admin_page(
                base=prefix,
                snapshots=store.snapshots(),
                states=states,
                configured=push is not None and push.sender is not None,
            )
        )

    @router.get("/admin/pushes")
    def pushes(actor: ActorDep) -> list[dict[str, Any]]:
        _admin(actor)
        return [
            {
                "site": p.site,
                "month": str(p.month),
                "status": p.status.value,
                "attempts": p.attempts,
                "report_id": p.report_id,
                "sent_at": p.sent_at.isoformat() if p.sent_at else None,
                "last_status_code": p.last_status_code,
                "last_error": p.last_error,
            }
            for p in store.push_states()
        ]

    @router.post("/admin/retry")
    def retry(actor: ActorDep) -> JSONResponse:
        _admin(actor)
        if push is None or push.sender is None:
            raise HTTPException(status_code=409, detail="no programme endpoint configured")
        outcomes = push.retry_unsent()
        return JSONResponse(
            [{"site": o.site, "month": str(o.month), "result": o.result.value} for o in outcomes]
        )

    return router


def _admin(actor: Actor) -> None:
    if actor.role is not Role.ADMINISTRATOR:
        raise HTTPException(status_code=403, detail="administrators only")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


def ops_token_actor(ops_token: str | None) -> Callable[[Request], Actor]:
    """Stand-in until staff accounts reach the reports: with an ops token configured, its
    bearer is an administrator and everyone else is refused; without one (loopback, for
    development) everyone is a programme lead and sees disclosure-controlled figures."""

    def actor(request: Request) -> Actor:
        if not ops_token:
            return Actor(user_id="local", role=Role.PROGRAMME_LEAD, sites=frozenset())
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {ops_token}".encode()):
            return Actor(user_id="ops", role=Role.ADMINISTRATOR, sites=frozenset())
        raise HTTPException(
            status_code=401, detail="sign in required", headers={"WWW-Authenticate": "Bearer"}
        )

    return actor
