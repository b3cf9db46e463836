"""Signing in and out, the home page that sends each role where it works, and what happens
when a session ends under someone:

- a link opened while signed out goes to the sign-in page with `next` (a local path only,
  `security.local_next`) and returns there after sign-in;
- a form posted after its session idled out is kept (`web.kept_forms`) and, after sign-in,
  offered back at `/kept-form` to be sent again with one tap (with the new session's CSRF
  token, checked again by the route it goes to);
- the pages warn shortly before the idle timeout (`_session_timeout.html`, `session.js`) and
  "Stay signed in" posts to `/session/refresh`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from consent.policy import Role
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.web.context import SignInContext
from referral_gateway.web.errors import PageError
from referral_gateway.web.kept_forms import KeptForm
from referral_gateway.web.render import render
from referral_gateway.web.security import (
    CHANGE_PASSWORD,
    KEPT,
    LOGIN,
    NO_STORE,
    SESSION,
    FormDep,
    PendingSessionDep,
    SessionDep,
    SignInCtxDep,
    clear_cookie,
    form_fields,
    is_secure,
    local_next,
    new_login_token,
    read_cookie,
    same_token,
    set_cookie,
    sign_in_address,
)

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE_SECONDS = 30 * 60
KEPT_COOKIE_SECONDS = 30 * 60
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# forms never kept: signing in and out, and the warning's own refresh
_NOT_KEPT = ("/sign-in", "/sign-out", "/session/")


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
    request: Request,
    ctx: SignInContext,
    *,
    status: int = 200,
    error: str = "",
    username: str = "",
    next_path: str = "",
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
        next_path=local_next(next_path),
    )
    set_cookie(response, LOGIN, token, secure=is_secure(request, ctx), max_age=LOGIN_COOKIE_SECONDS)
    return response


@router.get("/sign-in")
def sign_in_form(request: Request, ctx: SignInCtxDep) -> Response:
    session = ctx.accounts.current(read_cookie(request, SESSION), now=ctx.clock(), pending_ok=True)
    next_path = local_next(request.query_params.get("next", ""))
    if session is not None:
        return RedirectResponse(_after_sign_in(request, ctx, session.user, next_path), 303)
    return _sign_in_page(request, ctx, next_path=next_path)


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
    next_path = local_next(form.get("next"))
    if not username or not password:
        return _sign_in_page(
            request,
            ctx,
            status=400,
            username=username,
            error="Enter your username and your password.",
            next_path=next_path,
        )
    address = request.client.host if request.client else "unknown"
    result = ctx.accounts.authenticate(username, password, address=address, now=ctx.clock())
    if result.user is None:
        status = 429 if not result.throttle.allowed else 400
        return _sign_in_page(
            request,
            ctx,
            status=status,
            username=username,
            error=result.message,
            next_path=next_path,
        )
    opened = ctx.accounts.open_session(result.user, now=ctx.clock())
    secure = is_secure(request, ctx)
    response = RedirectResponse(
        _after_sign_in(request, ctx, result.user, next_path), status_code=303
    )
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


def _after_sign_in(request: Request, ctx: SignInContext, user: StaffUser, next_path: str) -> str:
    """A new password first; then a form kept for this person; then where they were going;
    else their start page."""
    if user.must_change_password:
        return CHANGE_PASSWORD
    kept = ctx.kept_forms
    if kept is not None and kept.waiting(read_cookie(request, KEPT), user.id, now=ctx.clock()):
        return "/kept-form"
    return next_path or _home(ctx, user)


# -- when the session has ended --------------------------------------------------------------


def _sent_from_here(request: Request) -> bool:
    """The browser says the form came from one of this site's own pages (Fetch Metadata, or
    else the Origin header)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin", "")
    return bool(origin) and origin == f"{request.url.scheme}://{request.url.netloc}"


async def answer_signed_out(request: Request, ctx: SignInContext) -> Response:
    """A page or a form reached without an active session: to the sign-in page, coming back
    to the page afterwards, and a form posted from here after its session idled out kept
    for the same person to send again."""
    path = request.url.path
    target = path + (f"?{request.url.query}" if request.url.query else "")
    if request.method == "GET":
        return RedirectResponse(sign_in_address(target), status_code=303)
    response = RedirectResponse("/sign-in", status_code=303)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if (
        ctx.kept_forms is None
        or request.method != "POST"
        or kind not in _FORM_TYPES
        or path.startswith(_NOT_KEPT)
        or not _sent_from_here(request)
    ):
        return response
    owner = ctx.accounts.session_owner(read_cookie(request, SESSION))
    if owner is None:  # no session, or one its owner signed out of: nothing to keep
        return response
    form = await form_fields(request)
    fields = tuple(
        (name, value)
        for name, value in form.multi_items()
        # nor a password: typed again rather than held anywhere
        if isinstance(value, str) and name != "csrf_token" and "password" not in name
    )
    key = ctx.kept_forms.keep(KeptForm(owner, target, fields, ctx.clock()))
    set_cookie(response, KEPT, key, secure=is_secure(request, ctx), max_age=KEPT_COOKIE_SECONDS)
    return response


@router.get("/kept-form")
def kept_form(request: Request, ctx: SignInCtxDep, session: SessionDep) -> Response:
    """The form this person sent after their session ended, offered back once."""
    kept = (
        ctx.kept_forms.take(read_cookie(request, KEPT), session.user.id, now=ctx.clock())
        if ctx.kept_forms is not None
        else None
    )
    if kept is None:
        response: Response = RedirectResponse("/", status_code=303)
    else:
        response = render(ctx, request, "kept_form.html", kept=kept)
    clear_cookie(response, KEPT, secure=is_secure(request, ctx))
    return response


@router.post("/session/refresh")
def refresh_session(request: Request, ctx: SignInCtxDep, form: FormDep) -> Response:
    """ "Stay signed in": the idle time starts again. JSON for the page's script."""
    token = read_cookie(request, SESSION)
    session = ctx.accounts.current(token, now=ctx.clock(), touch=False, pending_ok=True)
    if session is None:
        return JSONResponse({"signed_in": False}, status_code=401, headers=NO_STORE)
    if not same_token(form.get("csrf_token"), session.csrf_token):
        raise PageError(403, "This form has expired", "Reload the page to stay signed in.")
    ctx.accounts.keep_alive(token, now=ctx.clock())
    idle = ctx.options.session_idle_minutes * 60
    return JSONResponse({"signed_in": True, "idle_seconds": idle}, headers=NO_STORE)
