"""Signing in and out, and the home page that sends each role where it works."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from consent.policy import Role
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.web.context import SignInContext
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import (
    CHANGE_PASSWORD,
    LOGIN,
    SESSION,
    FormDep,
    PendingSessionDep,
    SignInCtxDep,
    clear_cookie,
    is_secure,
    new_login_token,
    read_cookie,
    same_token,
    set_cookie,
)

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE_SECONDS = 30 * 60


def home_for(role: Role, *, must_change_password: bool = False, landing: str = "") -> str:
    """Where a signed-in person starts: their own password first, then `landing` when the
    app has one page for everyone (the standalone hub), else their role's home."""
    if must_change_password:
        return CHANGE_PASSWORD
    if landing:
        return landing
    if role is Role.PROGRAMME_LEAD:
        return "/overview"
    if role is Role.ADMINISTRATOR:
        return "/admin/users"
    return "/queue"


@router.get("/")
def home(request: Request, ctx: SignInCtxDep) -> Response:
    session = ctx.accounts.current(read_cookie(request, SESSION), now=ctx.clock(), pending_ok=True)
    if session is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(_home(ctx, session.user), status_code=303)


def _home(ctx: SignInContext, user: StaffUser) -> str:
    return home_for(user.role, must_change_password=user.must_change_password, landing=ctx.landing)


def _sign_in_page(
    request: Request, ctx: SignInContext, *, status: int = 200, error: str = "", username: str = ""
) -> HTMLResponse:
    token = new_login_token()
    response = render(
        ctx,
        request,
        "sign_in.html",
        status=status,
        login_token=token,
        error=error,
        username=username,
    )
    set_cookie(response, LOGIN, token, secure=is_secure(request, ctx), max_age=LOGIN_COOKIE_SECONDS)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, ctx: SignInCtxDep) -> Response:
    session = ctx.accounts.current(read_cookie(request, SESSION), now=ctx.clock(), pending_ok=True)
    if session is not None:
        return RedirectResponse(_home(ctx, session.user), status_code=303)
    return _sign_in_page(request, ctx)


@router.post("/sign-in")
def sign_in(request: Request, ctx: SignInCtxDep, form: FormDep) -> Response:
    if not same_token(form.get("csrf_token"), read_cookie(request, LOGIN)):
        raise PageError(
            403,
            "This form has expired",
            "The sign-in page was too old, or cookies are blocked. Reload the sign-in page and "
            "try again.",
        )
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    if not username or not password:
        return _sign_in_page(
            request,
            ctx,
            status=400,
            username=username,
            error="Enter your username and your password.",
        )
    address = request.client.host if request.client else "unknown"
    result = ctx.accounts.authenticate(username, password, address=address, now=ctx.clock())
    if result.user is None:
        status = 429 if not result.throttle.allowed else 400
        return _sign_in_page(request, ctx, status=status, username=username, error=result.message)
    opened = ctx.accounts.open_session(result.user, now=ctx.clock())
    secure = is_secure(request, ctx)
    response = RedirectResponse(_home(ctx, result.user), status_code=303)
    set_cookie(response, SESSION, opened.token, secure=secure, max_age=None)
    clear_cookie(response, LOGIN, secure=secure)
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, ctx: SignInCtxDep, session: PendingSessionDep, form: FormDep
) -> Response:
    if not same_token(form.get("csrf_token"), session.csrf_token):
        raise PageError(403, "This form has expired", "Reload the page and sign out again.")
    ctx.accounts.end_session(read_cookie(request, SESSION), now=ctx.clock())
    response = RedirectResponse("/sign-in?done=signed_out", status_code=303)
    clear_cookie(response, SESSION, secure=is_secure(request, ctx))
    return response
