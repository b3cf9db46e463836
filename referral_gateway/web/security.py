"""Sessions, CSRF and security headers for the web pages.

- The session cookie holds a random token (the database keeps its hash): HttpOnly,
  SameSite=Strict, Path=/, and Secure (with the `__Host-` prefix) whenever the request came
  over https or `RG_COOKIE_SECURE=1`. It has no expiry of its own: the server ends a session
  after `session_idle_minutes` without a request, or `session_lifetime_hours` in all.
- Every form carries the session's CSRF token in a hidden `csrf_token` field and every POST
  checks it. The sign-in form, before any session, uses a double-submit token: a random value
  in a short-lived cookie that the form must repeat.
- Every response gets a content security policy (`script-src 'self'`: no inline script),
  no sniffing, no framing, no referrer; HTML is `Cache-Control: no-store`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_gateway.domain.accounts import StaffUser
from referral_gateway.storage.accounts import CurrentSession
from referral_gateway.web.context import SignInContext, WebContext

# re-exported for the route modules that import them from here
from referral_gateway.web.errors import PageError, PasswordChangeRequired, SignInRequired

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
_DOC_PATHS = ("/docs", "/redoc")  # FastAPI's API docs load their own scripts
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REFERRAL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


CHANGE_PASSWORD = "/account/password"  # noqa: S105  (a path, not a password)


class SecurityHeaders:
    """Pure ASGI middleware (it never buffers, so live streams stay live)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _BASE_HEADERS.items():
                    headers.setdefault(name, value)
                if not path.startswith(_DOC_PATHS):
                    headers.setdefault("content-security-policy", CSP)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("cache-control", "no-store")
                if secure and self.hsts:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- cookies -----------------------------------------------------------------------------------


def is_secure(request: Request, ctx: SignInContext) -> bool:
    return ctx.options.cookie_secure or request.url.scheme == "https"


def cookie_name(base: str, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def set_cookie(
    response: Response, base: str, value: str, *, secure: bool, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(base, secure),
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, base: str, *, secure: bool) -> None:
    response.delete_cookie(
        cookie_name(base, secure), path="/", secure=secure, httponly=True, samesite="strict"
    )


def read_cookie(request: Request, base: str) -> str:
    return request.cookies.get(f"__Host-{base}") or request.cookies.get(base) or ""


SESSION = "rg_session"
LOGIN = "rg_login"
KEPT = "rg_kept"  # the key to a form kept while its session had ended (web.kept_forms)
LIVE_UPDATE_HEADER = "x-live-update"  # sent by queue.js on its automatic refreshes


_NOT_IN_A_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


def local_next(value: object) -> str:
    """`value` if it is a path on this site to go to after signing in, else "": never an
    address elsewhere (`https://x`, `//x`, `/\\x`), a scheme (`javascript:`), a header
    injection or the sign-in pages themselves."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return ""
    if value.startswith("//") or _NOT_IN_A_NEXT.search(value):
        return ""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/sign-in", "/sign-out")):
        return ""
    return value


def sign_in_address(next_path: str = "") -> str:
    """The sign-in page, returning to `next_path` (when it is local) afterwards."""
    path = local_next(next_path)
    return f"/sign-in?next={quote(path, safe='/')}" if path else "/sign-in"


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(given: object, expected: str) -> bool:
    return (
        isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    )


# -- dependencies ------------------------------------------------------------------------------


def get_ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


CtxDep = Annotated[WebContext, Depends(get_ctx)]


def get_sign_in_ctx(request: Request) -> SignInContext:
    """The part of the context signing in needs: all the standalone hub has."""
    ctx: SignInContext = request.app.state.web
    return ctx


SignInCtxDep = Annotated[SignInContext, Depends(get_sign_in_ctx)]


def current_session(request: Request, ctx: SignInCtxDep) -> CurrentSession:
    # the queue's own refreshes are not the person doing anything: they do not keep the
    # session from idling out
    automatic = bool(request.headers.get(LIVE_UPDATE_HEADER))
    session = ctx.accounts.current(
        read_cookie(request, SESSION), now=ctx.clock(), touch=not automatic, pending_ok=True
    )
    if session is None:
        raise SignInRequired()
    request.state.session = session
    if session.user.must_change_password:
        raise PasswordChangeRequired()
    return session


SessionDep = Annotated[CurrentSession, Depends(current_session)]


def pending_session(request: Request, ctx: SignInCtxDep) -> CurrentSession:
    """A session, also of an account that must still set its own password: for the
    change-password page (and signing out) only."""
    session = ctx.accounts.current(read_cookie(request, SESSION), now=ctx.clock(), pending_ok=True)
    if session is None:
        raise SignInRequired()
    request.state.session = session
    return session


PendingSessionDep = Annotated[CurrentSession, Depends(pending_session)]


async def form_fields(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=100, max_part_size=64 * 1024)


FormDep = Annotated[FormData, Depends(form_fields)]


def require_csrf(session: SessionDep, form: FormDep) -> None:
    if not same_token(form.get("csrf_token"), session.csrf_token):
        raise PageError(
            403,
            "This form has expired",
            "The page you sent it from was too old or not from this site. Go back, reload the "
            "page and try again.",
        )


CsrfDep = Annotated[None, Depends(require_csrf)]


def caseworker(session: SessionDep) -> StaffUser:
    user = session.user
    if not user.works_queue:
        raise PageError(
            403,
            "Not available to your role",
            "Referrals are open to youth workers and team leads of their site only.",
        )
    return user


CaseworkerDep = Annotated[StaffUser, Depends(caseworker)]


def referral_id_or_404(referral_id: str) -> str:
    if not REFERRAL_ID.match(referral_id):
        raise PageError(404, "Referral not found", "There is no referral here for you.")
    return referral_id
