"""The youth workers' pages on an app: `mount_pages(app, ctx, listeners)`.

The composition root (`referral_gateway.wiring.web.install_web`) builds the context
(accounts, casework, live events) and calls it; tests call `install_web` on a bare FastAPI
app with fakes. What the listeners hear (a new candidate, a discharge, an A13, a cancelled
arrival, a move, an escalation by the scheduled job) goes to the open queue pages of the
referral's site, as the referral id and one word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.casework import QueueEvent
from referral_gateway.web import (
    account,
    admin,
    alerts,
    auth,
    dismissals,
    manual,
    onward,
    overview,
    queue,
    referrals,
    team,
)
from referral_gateway.web.context import SignInContext, WebContext
from referral_gateway.web.errors import PageError, PasswordChangeRequired, SignInRequired
from referral_gateway.web.frontend import nhsuk_frontend
from referral_gateway.web.render import render
from referral_gateway.web.security import CHANGE_PASSWORD, LIVE_UPDATE_HEADER, SecurityHeaders
from referral_gateway.web.server_errors import UnexpectedErrors

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
SIGN_IN_ROUTERS = (auth.router, account.router)
# /referrals/new before /referrals/{referral_id}
ROUTERS = tuple(
    m.router for m in (manual, queue, referrals, dismissals, onward, overview, team, admin, alerts)
)


def mount_pages(
    app: FastAPI, ctx: WebContext, listeners: list[Callable[[ReferralNews], None]]
) -> None:
    """Mount the pages and the live queue on `app`, for `ctx` (built by the composition
    root's `install_web`), and listen for referral news."""
    mount_sign_in(app, ctx)
    for router in ROUTERS:
        app.include_router(router)

    def on_referral(news: ReferralNews) -> None:
        """Called on the pipeline's (or the escalation job's) thread after the commit."""
        ctx.events.publish(queue_event(news.referral_id, news.site, news.update))

    listeners.append(on_referral)
    _close_streams_on_shutdown(app, ctx)


def mount_sign_in(app: FastAPI, ctx: SignInContext) -> None:
    """Signing in and out, the own-password page, sessions kept tidy, security headers,
    static files and error pages (a browser without a session is sent to sign in): the
    gateway's pages build on these, and the standalone hub has only these."""
    app.state.web = ctx
    # what the idle warning on every signed-in page needs (`_session_timeout.html`)
    ctx.templates.globals.update(
        session_idle_seconds=ctx.options.session_idle_minutes * 60,
        session_warning_seconds=ctx.options.session_warning_seconds,
    )
    # inside the security headers, so that the 500 page has them too
    app.add_middleware(
        UnexpectedErrors,
        page=lambda request: server_error_page(ctx, request),
        wants_page=wants_page,
    )
    app.add_middleware(SecurityHeaders, hsts=ctx.options.cookie_secure)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    frontend = nhsuk_frontend()  # a ConfigError saying how to fetch it when it is missing
    app.mount("/nhsuk", StaticFiles(directory=frontend), name="nhsuk")
    # its stylesheet names its icons at /assets/images/...
    app.mount("/assets", StaticFiles(directory=frontend / "assets"), name="nhsuk-assets")
    for router in SIGN_IN_ROUTERS:
        app.include_router(router)

    async def page_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SignInRequired | PasswordChangeRequired):
            if request.headers.get(LIVE_UPDATE_HEADER):  # the queue's script handles 401
                return Response(status_code=401, headers={"Cache-Control": "no-store"})
            if isinstance(exc, PasswordChangeRequired):
                return RedirectResponse(CHANGE_PASSWORD, status_code=303)
            return await auth.answer_signed_out(request, ctx)
        assert isinstance(exc, PageError)
        return render(
            ctx, request, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(SignInRequired, page_error)
    app.add_exception_handler(PasswordChangeRequired, page_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not wants_page(request):
            return await http_exception_handler(request, exc)
        title, message = HTTP_ERROR_PAGES.get(exc.status_code, _OTHER_ERROR)
        page = render(
            ctx, request, "error.html", status=exc.status_code, title=title, message=message
        )
        page.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return page

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not wants_page(request):
            return await request_validation_exception_handler(request, exc)
        # only the names of the parts that were wrong, never what was sent
        parts = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        message = "Check the link or the form and try again."
        if parts:
            message = f"These parts were missing or not right: {', '.join(parts)}. {message}"
        return render(
            ctx,
            request,
            "error.html",
            status=422,
            title="That request was not right",
            message=message,
        )

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    _prune_while_running(app, ctx)


# API and FHIR clients keep their JSON (and OperationOutcome) answers whatever they accept
_MACHINE_PATHS = ("/fhir", "/api/", "/metrics", "/health", "/openapi.json")
HTTP_ERROR_PAGES = {
    404: ("Page not found", "There is no page at this address. Check the address or start again."),
    405: ("That cannot be done here", "This address does not take that kind of request."),
    401: ("Sign in needed", "Sign in to see this page."),
    403: ("Not available to you", "Your account cannot open this page."),
    500: (
        "Something went wrong",
        "The page could not be shown because of a fault in the gateway. Try again in a "
        "moment. If it keeps happening, tell your team lead or the service desk.",
    ),
}
_OTHER_ERROR = ("Something went wrong", "The page could not be shown. Try again, or start again.")


def server_error_page(ctx: SignInContext, request: Request) -> Response:
    """The error page for a fault in the gateway: what to do, nothing of the fault."""
    title, message = HTTP_ERROR_PAGES[500]
    return render(ctx, request, "error.html", status=500, title=title, message=message)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (it accepts HTML) rather than an API or FHIR client."""
    if request.url.path.startswith(_MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def queue_event(referral_id: str, site: str, update: ReferralUpdate) -> QueueEvent:
    if update is ReferralUpdate.NEW:
        return QueueEvent("new", referral_id, site)
    if update is ReferralUpdate.ESCALATED:
        return QueueEvent("escalated", referral_id, site)
    return QueueEvent("changed", referral_id, site, update.value)


def _prune_while_running(app: FastAPI, ctx: SignInContext) -> None:
    """Forget old sign-in attempts and sessions while the app runs. (Escalation is a
    scheduled job: `referral_gateway.entrypoints.jobs`.)"""
    previous = app.router.lifespan_context

    async def prune() -> None:
        while True:
            await asyncio.sleep(ctx.options.prune_seconds)
            try:
                await asyncio.to_thread(ctx.accounts.prune, now=ctx.clock())
            except Exception as exc:  # keep going; the next pass retries
                log.warning("pruning sessions failed: %s", type(exc).__name__)

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        task = asyncio.create_task(prune())
        try:
            async with previous(a) as state:
                yield state
        finally:
            task.cancel()

    app.router.lifespan_context = lifespan


def _close_streams_on_shutdown(app: FastAPI, ctx: WebContext) -> None:
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with previous(a) as state:
                yield state
        finally:
            ctx.events.close_all()

    app.router.lifespan_context = lifespan
