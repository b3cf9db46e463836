"""Wiring the youth workers' pages into an app: `install_web(app, ...)`.

`build_app` calls it with the gateway's engine, key ring, clock and referral listeners;
tests call it on a bare FastAPI app with fakes.
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
from referral_gateway.services.casework import Casework, QueueEvent
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.queue import site_of
from referral_gateway.web import admin, auth, manual, overview, queue, referrals
from referral_gateway.web.context import WebContext
from referral_gateway.web.events import Broadcaster
from referral_gateway.web.options import WebOptions
from referral_gateway.web.render import make_templates, render
from referral_gateway.web.security import (
    LIVE_UPDATE_HEADER,
    PageError,
    SecurityHeaders,
    SignInRequired,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
# /referrals/new before /referrals/{referral_id}
ROUTERS = tuple(m.router for m in (auth, manual, queue, referrals, overview, admin))


def install_web(
    app: FastAPI,
    *,
    engine: Engine,
    keyring: KeyRing,
    clock: Callable[[], datetime],
    listeners: list[Callable[[str], None]],
    sharing: Sharing,
    options: WebOptions | None = None,
    hasher: PasswordHasher | None = None,
) -> WebContext:
    """Mount the pages, the live queue and the background escalation check on `app`.
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
    )
    casework = Casework(
        engine,
        keyring,
        clock,
        accounts=accounts,
        sharing=sharing,
        publish=events.publish,
        local_zone=options.zone,
        escalate_after=options.escalate_after,
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
        if isinstance(exc, SignInRequired):
            if request.headers.get(LIVE_UPDATE_HEADER):  # the queue's script handles 401
                return Response(status_code=401, headers={"Cache-Control": "no-store"})
            return RedirectResponse("/sign-in", status_code=303)
        assert isinstance(exc, PageError)
        return render(
            ctx, request, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(SignInRequired, page_error)

    def on_new_referral(referral_id: str) -> None:
        """Called on the pipeline's thread after the referral was committed."""
        with engine.connect() as conn:
            site = site_of(conn, referral_id)
        if site is not None:
            events.publish(QueueEvent("new", referral_id, site))

    listeners.append(on_new_referral)
    _add_background(app, ctx)
    return ctx


def _add_background(app: FastAPI, ctx: WebContext) -> None:
    """Run the escalation check while the app runs, and end live streams on shutdown."""
    previous = app.router.lifespan_context

    async def escalations() -> None:
        while True:
            await asyncio.sleep(ctx.options.escalation_check_seconds)
            try:
                await asyncio.to_thread(ctx.casework.escalate_untouched)
                await asyncio.to_thread(ctx.accounts.prune, now=ctx.clock())
            except Exception as exc:  # keep checking; the next pass retries
                log.warning("escalation check failed: %s", type(exc).__name__)

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        task = asyncio.create_task(escalations())
        try:
            async with previous(a) as state:
                yield state
        finally:
            ctx.events.close_all()
            task.cancel()

    app.router.lifespan_context = lifespan
