"""Report pages and downloads for programme leads, and the push status for administrators.

    GET  /reports?month=YYYY-MM[&raw=1]          one row per site, funnel and 12-month trend
    GET  /reports/site/{site}?month=             one site: funnel, trend, every figure
    GET  /reports/download.csv|json?month=[&site=][&raw=1]
    GET  /reports/istv.csv?month=&site=           Cardiff Model extract
    GET  /reports/admin                           snapshots, sent / failed   (administrators)
    GET  /reports/admin/pushes                    the same as JSON            (administrators)
    POST /reports/admin/retry                     retry unsent pushes now     (administrators)
    POST /reports/admin/reissue                   re-issue a month as a correction (admins)

Who is asking is the web queue's signed-in member of staff (`web.security`): programme
leads see disclosure-controlled figures for their sites, administrators see every site and
may add `raw=1` for exact counts; youth workers and team leads are refused (403). Signed
out, a page sends the browser to the sign-in page; a download answers 401.

Machine access: with an ops token configured (`RG_OPS_TOKEN`), `Authorization: Bearer
<token>` reads the CSV and JSON downloads of every site, disclosure-controlled only (the
token is no person, so never raw counts). Pages, the ISTV extract and the push status need
a session; the retry is a form, with the session's CSRF token.
"""

import hmac
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from consent.policy import Actor, Role
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.errors import ReportMonthError
from referral_gateway.domain.report_period import ReportMonth, latest_finished_month
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.report_formats.files import istv_csv, reports_csv, reports_json
from referral_gateway.services.errors import ReissueRefused
from referral_gateway.services.report_push import MonthlyPush
from referral_gateway.services.reporting import ReportService
from referral_gateway.storage.reports import ReportStore
from referral_gateway.web import report_pages
from referral_gateway.web.errors import PageError
from referral_gateway.web.openapi import SIGN_IN, CsvResponse, refusals
from referral_gateway.web.render import app_templates
from referral_gateway.web.security import SESSION, CsrfDep, SessionDep, SignInCtxDep, read_cookie

REPORT_ROLES = frozenset({Role.PROGRAMME_LEAD, Role.ADMINISTRATOR})
MACHINE = "ops-token"  # the Actor.user_id of a request signed with the ops token
DONE = {
    "retried": "Unsent months were pushed again; their status is below.",
    "reissued": "The month was re-issued as a correction; its push status is below.",
}


# no report reaches back before this: the trend of a month looks back 12 months
EARLIEST_MONTH = ReportMonth(2000, 1)


def parse_month(value: str | None, now: datetime, *, page: bool = False) -> ReportMonth:
    """The month asked for (none: the latest finished one). A month that is malformed, too
    early or not yet started is refused with 422: an error page for `page`, else JSON."""
    if not value:
        return latest_finished_month(now)
    try:
        month = ReportMonth.parse(value)
    except ReportMonthError:
        problem = "Write the month as YYYY-MM, for example 2024-10."
    else:
        if month < EARLIEST_MONTH:
            problem = f"Reports start at {EARLIEST_MONTH}; choose a later month."
        elif month > ReportMonth.of(now):
            problem = "That month has not started; choose this month or an earlier one."
        else:
            return month
    if page:
        raise PageError(422, "No report for that month", problem)
    raise HTTPException(status_code=422, detail=problem)


def _not_for_your_role() -> PageError:
    return PageError(
        403,
        "Not available to your role",
        "Monthly reports are for programme leads and administrators.",
    )


def page_reader(session: SessionDep) -> Actor:
    """The signed-in reader of a report page (signed out: to the sign-in page)."""
    if session.user.role not in REPORT_ROLES:
        raise _not_for_your_role()
    return session.user.as_actor()


def download_reader(ops_token: str | None) -> Callable[..., Actor]:
    """The reader of a download: the ops token's bearer (disclosure-controlled figures of
    every site), else the signed-in member of staff; else 401."""

    def reader(request: Request, ctx: SignInCtxDep) -> Actor:
        given = request.headers.get("authorization", "")
        if (
            ops_token
            and given
            and hmac.compare_digest(given.encode(), f"Bearer {ops_token}".encode())
        ):
            return Actor(user_id=MACHINE, role=Role.PROGRAMME_LEAD, sites=frozenset())
        session = ctx.accounts.current(read_cookie(request, SESSION), now=ctx.clock())
        if session is None:
            raise HTTPException(
                status_code=401,
                detail="sign in, or send the ops token as a bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.session = session
        if session.user.role not in REPORT_ROLES:
            raise HTTPException(status_code=403, detail="reports are for programme leads")
        return session.user.as_actor()

    return reader


def build_reports_router(
    service: ReportService,
    store: ReportStore,
    clock: Clock,
    *,
    templates: jinja2.Environment | None = None,
    push: MonthlyPush | None = None,
    ops_token: str | None = None,
    prefix: str = "/reports",
) -> APIRouter:
    router = APIRouter(
        prefix=prefix, tags=["reports"], responses=refusals(400, 401, 403, 404, 409, 422) | SIGN_IN
    )
    PageActor = Annotated[Actor, Depends(page_reader)]
    DownloadActor = Annotated[Actor, Depends(download_reader(ops_token))]
    SessionActor = Annotated[Actor, Depends(download_reader(None))]  # JSON, people only

    def check_raw(actor: Actor, raw: bool, *, page: bool) -> None:
        if raw and actor.role is not Role.ADMINISTRATOR:
            if page:
                raise PageError(
                    403, "Raw counts are for administrators", "Leave out raw=1 from the address."
                )
            raise HTTPException(status_code=403, detail="raw counts are for administrators")

    def sites_for(actor: Actor, site: str | None = None) -> list[str]:
        sites = service.sites()
        if actor.role is not Role.ADMINISTRATOR and actor.sites:
            sites = [s for s in sites if s in actor.sites]
        if site is not None:
            if site not in sites:
                raise HTTPException(status_code=404, detail="no such site")
            return [site]
        return sites

    def month_of(value: str | None, *, page: bool = False) -> ReportMonth:
        return parse_month(value, clock(), page=page)

    def page(body: str) -> HTMLResponse:
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    def session_of(request: Request) -> Any:
        return getattr(request.state, "session", None)

    @router.get("", response_class=HTMLResponse)
    def dashboard(
        request: Request,
        actor: PageActor,
        month: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> HTMLResponse:
        check_raw(actor, raw, page=True)
        m = month_of(month, page=True)
        trends: dict[str, Sequence[PublishedReport]] = {
            s: service.trend(s, m, raw=raw) for s in sites_for(actor)
        }
        return page(
            report_pages.dashboard_page(
                templates or app_templates(request),
                base=prefix,
                month=m,
                latest=ReportMonth.of(clock()),
                trends=trends,
                raw=raw,
                session=session_of(request),
            ),
        )

    @router.get("/site/{site}", response_class=HTMLResponse)
    def site_page(
        request: Request,
        site: str,
        actor: PageActor,
        month: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> HTMLResponse:
        check_raw(actor, raw, page=True)
        m = month_of(month, page=True)
        (site,) = sites_for(actor, site)
        trend = service.trend(site, m, raw=raw)
        return page(
            report_pages.site_page(
                templates or app_templates(request),
                base=prefix,
                report=trend[-1],
                trend=trend,
                raw=raw,
                session=session_of(request),
                drift=push.drift(site, m) if push is not None else None,
                may_reissue=actor.role is Role.ADMINISTRATOR,
            ),
        )

    def downloaded(
        actor: Actor, month: str | None, site: str | None, raw: bool
    ) -> tuple[list[PublishedReport], str]:
        """The month's reports the actor may download, and the file name without suffix."""
        check_raw(actor, raw, page=False)
        m = month_of(month)
        reports = [service.published(s, m, raw=raw) for s in sites_for(actor, site)]
        return reports, f"throughput-{m}{'-' + site if site else ''}{'-raw' if raw else ''}"

    @router.get("/download.csv", response_class=CsvResponse)
    def download_csv(
        actor: DownloadActor,
        month: str | None = None,
        site: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> Response:
        reports, name = downloaded(actor, month, site, raw)
        return Response(
            reports_csv(reports),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"{name}.csv"),
        )

    @router.get("/download.json")
    def download_json(
        actor: DownloadActor,
        month: str | None = None,
        site: str | None = None,
        raw: Annotated[bool, Query()] = False,
    ) -> Response:
        reports, name = downloaded(actor, month, site, raw)
        return Response(
            reports_json(reports, generated_at=clock()),
            media_type="application/json",
            headers=_attachment(f"{name}.json"),
        )

    @router.get("/istv.csv", response_class=CsvResponse)
    def istv(actor: PageActor, site: str, month: str | None = None) -> Response:
        m = month_of(month)
        (site,) = sites_for(actor, site)
        return Response(
            istv_csv(service.istv(site, m)),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"istv-{site}-{m}.csv"),
        )

    @router.get("/admin", response_class=HTMLResponse)
    def admin(request: Request, actor: PageActor, done: str = "") -> HTMLResponse:
        _admin(actor)
        states = {(p.site, p.month): p for p in store.push_states()}
        return page(
            report_pages.admin_page(
                templates or app_templates(request),
                base=prefix,
                snapshots=store.snapshots(),
                states=states,
                configured=push is not None and push.sender is not None,
                session=session_of(request),
                done_message=DONE.get(done, ""),
            ),
        )

    @router.get("/admin/pushes")
    def pushes(actor: SessionActor) -> list[dict[str, Any]]:
        if actor.role is not Role.ADMINISTRATOR:
            raise HTTPException(status_code=403, detail="administrators only")
        versions = {(s.site, s.month): s.version for s in store.snapshots()}
        return [
            {
                "site": p.site,
                "month": str(p.month),
                "version": versions.get((p.site, p.month), 1),
                "status": p.status.value,
                "attempts": p.attempts,
                "report_id": p.report_id,
                "sent_at": p.sent_at.isoformat() if p.sent_at else None,
                "last_status_code": p.last_status_code,
                "last_error": p.last_error,
                # refused for good: not retried until the push configuration changes
                "refused": p.refused_under is not None,
            }
            for p in store.push_states()
        ]

    @router.post(
        "/admin/retry", status_code=303, responses={303: {"description": "Back to the push status"}}
    )
    def retry(actor: PageActor, _: CsrfDep) -> Response:
        _admin(actor)
        if push is None or push.sender is None:
            raise PageError(
                409,
                "No programme endpoint",
                "Set RG_PROGRAMME_ENDPOINT, RG_PROGRAMME_KEY_ID and RG_PROGRAMME_SECRET to push "
                "the monthly reports.",
            )
        push.retry_unsent(force=True)  # an administrator asking: months refused for good too
        return RedirectResponse(f"{prefix}/admin?done=retried", status_code=303)

    @router.post(
        "/admin/reissue",
        status_code=303,
        responses={303: {"description": "Back to the push status"}},
    )
    def reissue(
        actor: PageActor,
        _: CsrfDep,
        site: Annotated[str, Form()] = "",
        month: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        _admin(actor)
        if push is None:
            raise PageError(409, "No monthly push", "This gateway does not freeze reports.")
        if not site or not month or not reason.strip():
            raise PageError(
                422, "Not re-issued", "Give the site, the month and the reason for the correction."
            )
        m = month_of(month, page=True)
        if site not in service.sites():
            raise PageError(404, "No such site", "Choose a site from the reports.")
        try:
            push.reissue(site, m, reason=reason)
        except ReissueRefused as exc:
            raise PageError(409, "Not re-issued", str(exc)) from None
        return RedirectResponse(f"{prefix}/admin?done=reissued", status_code=303)

    return router


def _admin(actor: Actor) -> None:
    if actor.role is not Role.ADMINISTRATOR:
        raise PageError(403, "Administrators only", "The push status is for administrators.")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
