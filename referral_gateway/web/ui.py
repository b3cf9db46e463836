"""Wiring the youth workers' pages into an app: `install_web(app, ...)`.

`build_app` calls it with the gateway's engine, key ring, clock and referral listeners;
tests call it on a bare FastAPI app with fakes. What the listeners hear (a new candidate, a
discharge, an A13, a cancelled arrival, a move, an escalation by the scheduled job) goes to
the open queue pages of the referral's site, as the referral id and one word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from consent.keyring import KeyRing
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.casework import Casework, QueueEvent
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.web import account, admin, auth, manual, overview, queue, referrals
from referral_gateway.web.context import WebContext
from referral_gateway.web.events import Broadcaster
from referral_gateway.web.options import WebOptions
from referral_gateway.web.render import make_templates, render
from referral_gateway.web.security import (
    CHANGE_PASSWORD,
    LIVE_UPDATE_HEADER,
    PageError,
    PasswordChangeRequired,
    SecurityHeaders,
    SignInRequired,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# /referrals/new before /referrals/{referral_id}
ROUTERS = tuple(m.router for m in (auth, account, manual, queue, referrals, overview, admin))


def install_web(
    app: FastAPI,
    *,
    engine: Engine,
    keyring: KeyRing,
    clock: Callable[[], datetime],
    listeners: list[Callable[[ReferralNews], None]],
    sharing: Sharing,
    options: WebOptions | None = None,
    hasher: PasswordHasher | None = None,
) -> WebContext:
    """Mount the pages and the live queue on `app`.
    `sharing` is the gateway's consent and reveal service (with the casework's assignment
    lookup, `storage.casework.assigned_to`)."""
    options = options or WebOptions()
    events = Broadcaster()
    accounts = AccountStore(
        engine,
        hasher=hasher
        or PasswordHasher(
            time_cost=options.argon2_time_cost,
            memory_cost=options.argon2_memory_kib,
            parallelism=options.argon2_parallelism,
        ),
        throttle=options.throttle_policy,
        sessions=options.session_policy,
        audit=sharing.audit,  # account changes join the consent trail (and its anchor)
    )
    casework = Casework(
        engine,
        keyring,
        clock,
        accounts=accounts,
        sharing=sharing,
        publish=events.publish,
        local_zone=options.zone,
    )
    ctx = WebContext(
        engine=engine,
        clock=clock,
        options=options,
        accounts=accounts,
        casework=casework,
        events=events,
        templates=make_templates(options.zone),
    )
    app.state.web = ctx
    app.add_middleware(SecurityHeaders, hsts=options.cookie_secure)
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
        events.publish(queue_event(news.referral_id, news.site, news.update))

    listeners.append(on_referral)
    _add_background(app, ctx)
    return ctx


def queue_event(referral_id: str, site: str, update: ReferralUpdate) -> QueueEvent:
    if update is ReferralUpdate.NEW:
        return QueueEvent("new", referral_id, site)
    if update is ReferralUpdate.ESCALATED:
        return QueueEvent("escalated", referral_id, site)
    return QueueEvent("changed", referral_id, site, update.value)


def _add_background(app: FastAPI, ctx: WebContext) -> None:
    """Forget old sign-in attempts and sessions while the app runs, and end live streams on
    shutdown. (Escalation is a scheduled job: `referral_gateway.jobs`.)"""
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
