"""Unexpected server errors: a browser gets the HTML error page (500, no traceback, no
identifiers), an API or FHIR client keeps its JSON, and the log names only the kind of error,
the route and the line it came from, never the exception's text or traceback (either may
carry identifiable data)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# when even the error page cannot be rendered (the template or the database is the fault)
BARE_PAGE = """<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong &ndash; Referral gateway</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main id="main"><h1>Something went wrong</h1>
<p>The page could not be shown because of a fault in the gateway. Try again in a moment.
If it keeps happening, tell your team lead or the service desk.</p>
<p><a href="/">Go to your start page</a></p></main></body></html>
"""


class UnexpectedErrors:
    """Pure ASGI middleware around the app: an exception that no handler answered becomes
    `page(request)` for a browser asking for a page (`wants_page`), else
    `{"detail": "internal error"}` with 500."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        page: Callable[[Request], Response],
        wants_page: Callable[[Request], bool],
    ) -> None:
        self.app = app
        self.page = page
        self.wants_page = wants_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("unexpected %s answering %s", type(exc).__name__, _where(scope, exc))
            if started:  # part of an answer has gone: nothing better to send
                return
            request = Request(scope)
            response = self._page(request) if self.wants_page(request) else _json()
            await response(scope, receive, send)

    def _page(self, request: Request) -> Response:
        try:
            return self.page(request)
        except Exception as exc:
            log.error("the error page failed too: %s", type(exc).__name__)
            return HTMLResponse(BARE_PAGE, status_code=500)


def _json() -> Response:
    return JSONResponse({"detail": "internal error"}, status_code=500)


def _where(scope: Scope, exc: Exception) -> str:
    """The route's template (never the path: it can hold an id) and the failing line."""
    route = getattr(scope.get("route"), "path", "an unknown route")
    frames = traceback.extract_tb(exc.__traceback__)
    line = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return f"{scope.get('method', '')} {route} ({line})"
