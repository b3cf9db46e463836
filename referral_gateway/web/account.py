"""The signed-in person's own account: setting their password (the only page an account
that must still choose its own password can reach), and the notices shown to team leads
about accounts that gained access to their sites."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from consent.policy import Role
from referral_gateway.domain.accounts import check_password
from referral_gateway.storage.site_notices import mark_read
from referral_gateway.web.auth import home_for
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import (
    CHANGE_PASSWORD,
    CsrfDep,
    FormDep,
    PendingSessionDep,
    SessionDep,
    SignInCtxDep,
    same_token,
)

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    ctx: SignInCtxDep,
    *,
    status: int = 200,
    problems: dict[str, str] | None = None,
) -> Response:
    return render(ctx, request, "change_password.html", status=status, problems=problems or {})


@router.get(CHANGE_PASSWORD)
def password_form(request: Request, ctx: SignInCtxDep, session: PendingSessionDep) -> Response:
    return _page(request, ctx)


@router.post(CHANGE_PASSWORD)
def change_password(
    request: Request, ctx: SignInCtxDep, session: PendingSessionDep, form: FormDep
) -> Response:
    if not same_token(form.get("csrf_token"), session.csrf_token):
        raise PageError(
            403, "This form has expired", "Reload the page and enter your passwords again."
        )
    user = session.user
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    problems: dict[str, str] = {}
    if not ctx.accounts.verify_password(user.id, current):
        problems["current"] = "Your current password is not right."
    problem = check_password(new, username=user.username)
    if problem:
        problems["new"] = problem
    elif new == current:
        problems["new"] = "Choose a password different from the one you were given."
    elif new != str(form.get("confirm_password") or ""):
        problems["confirm"] = "The two new passwords differ."
    if problems:
        return _page(request, ctx, status=422, problems=problems)
    ctx.accounts.set_password(
        user.id, new, by=user.id, now=ctx.clock(), keep_session=session.id_hash
    )
    return RedirectResponse(
        home_for(user.role, landing=ctx.landing) + "?done=password_set", status_code=303
    )


@router.post("/notices/{notice_id}/read")
def notice_read(
    notice_id: str, ctx: SignInCtxDep, session: SessionDep, form: FormDep, _: CsrfDep
) -> Response:
    user = session.user
    if user.role is not Role.TEAM_LEAD or not mark_read(
        ctx.engine, notice_id[:36], user_id=user.id, sites=user.sites, now=ctx.clock()
    ):
        raise PageError(404, "Notice not found", "There is no such notice for you.")
    back = str(form.get("back") or "/")
    return RedirectResponse(back if back.startswith("/") and "//" not in back else "/", 303)
