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
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.casework import QueueEvent
from referral_gateway.web import (
    account,
    admin,
    alerts,
    auth,
    manual,
    onward,
    overview,
    queue,
    referrals,
)
from referral_gateway.web.context import WebContext
from referral_gateway.web.errors import PageError, PasswordChangeRequired, SignInRequired
from referral_gateway.web.render import render
from referral_gateway.web.security import CHANGE_PASSWORD, LIVE_UPDATE_HEADER, SecurityHeaders

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# /referrals/new before /referrals/{referral_id}
ROUTERS = tuple(
    m.router for m in (auth, account, manual, queue, referrals, onward, overview, admin, alerts)
)


def mount_pages(
    app: FastAPI, ctx: WebContext, listeners: list[Callable[[ReferralNews], None]]
) -> None:
    """Mount the pages and the live queue on `app`, for `ctx` (built by the composition
    root's `install_web`), and listen for referral news."""
    app.state.web = ctx
    app.add_middleware(SecurityHeaders, hsts=ctx.options.cookie_secure)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)

    async def page_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SignInRequired | PasswordChangeRequired):
            if request.headers.get(LIVE_UPDATE_HEADER):  # the queue's script handles 401
                return Response(status_code=401, headers={"Cache-Control": "no-store"})
            where = CHANGE_PASSWORD if isinstance(exc, PasswordChangeRequired) else "/sign-in"
            return RedirectResponse(where, status_code=303)
        assert isinstance(exc, PageError)
        return render(
            ctx, request, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(SignInRequired, page_error)
    app.add_exception_handler(PasswordChangeRequired, page_error)

    def on_referral(news: ReferralNews) -> None:
        """Called on the pipeline's (or the escalation job's) thread after the commit."""
        ctx.events.publish(queue_event(news.referral_id, news.site, news.update))

    listeners.append(on_referral)
    _add_background(app, ctx)


def queue_event(referral_id: str, site: str, update: ReferralUpdate) -> QueueEvent:
    if update is ReferralUpdate.NEW:
        return QueueEvent("new", referral_id, site)
    if update is ReferralUpdate.ESCALATED:
        return QueueEvent("escalated", referral_id, site)
    return QueueEvent("changed", referral_id, site, update.value)


def _add_background(app: FastAPI, ctx: WebContext) -> None:
    """Forget old sign-in attempts and sessions while the app runs, and end live streams on
    shutdown. (Escalation is a scheduled job: `referral_gateway.entrypoints.jobs`.)"""
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
            ctx.events.close_all()
            task.cancel()

    app.router.lifespan_context = lifespan
