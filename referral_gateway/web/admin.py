"""Accounts, for administrators: list, create, change name, role and sites, disable and
enable, reset a password. Site codes the gateway does not know (not in the site file, never
sent from) are refused. Administrators read no referral (the consent policy), so these pages show
none. Every change is audited with the administrator as its actor; an account created or
reset here must set its own password at its next sign-in, and the team leads of a site it
gains are told (`storage.accounts`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from consent.policy import Role
from referral_gateway.domain.accounts import (
    AccountProblems,
    StaffUser,
    check_access,
    check_display_name,
    check_new_account,
    check_password,
    unknown_site_problem,
)
from referral_gateway.storage.feed_alarms import open_alarms
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import CsrfDep, CtxDep, FormDep, SessionDep

router = APIRouter(include_in_schema=False)


def _admin(session: SessionDep) -> StaffUser:
    if session.user.role is not Role.ADMINISTRATOR:
        raise PageError(
            403, "Not available to your role", "Accounts are managed by administrators."
        )
    return session.user


def _feed_alarms(ctx: CtxDep) -> list[dict[str, Any]]:
    """Every silent feed: administrators look after the interfaces of all sites."""
    with ctx.engine.connect() as conn:
        return open_alarms(conn)


def _page(
    request: Request,
    ctx: CtxDep,
    *,
    status: int = 200,
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return render(
        ctx,
        request,
        "admin_users.html",
        status=status,
        users=ctx.accounts.all_users(),
        feed_alarms=_feed_alarms(ctx),
        roles=list(Role),
        problems=problems or {},
        values=values or {},
        known_sites=sorted(ctx.known_sites()),
    )


def _unknown_sites(ctx: CtxDep, sites: list[str]) -> str | None:
    """The message refusing the codes among `sites` the gateway does not know, if any."""
    unknown = ctx.unknown_sites(s.strip().upper() for s in sites)
    return unknown_site_problem(unknown, ctx.known_sites()) if unknown else None


@router.get("/admin/users")
def users(request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    _admin(session)
    return _page(request, ctx)


@router.post("/admin/users")
def add_user(
    request: Request, ctx: CtxDep, session: SessionDep, form: FormDep, _: CsrfDep
) -> Response:
    _admin(session)
    username = str(form.get("username") or "")
    sites = str(form.get("sites") or "").replace(",", " ").split()
    result = check_new_account(
        username,
        str(form.get("role") or ""),
        sites,
        str(form.get("password") or ""),
        display_name=str(form.get("display_name") or ""),
        taken=ctx.accounts.username_taken(username),
    )
    problems = dict(result.problems) if isinstance(result, AccountProblems) else {}
    unknown = None if "sites" in problems else _unknown_sites(ctx, sites)
    if unknown:
        problems["sites"] = unknown
    if isinstance(result, AccountProblems) or problems:
        values = {k: str(form.get(k) or "") for k in ("username", "display_name", "role", "sites")}
        return _page(request, ctx, status=422, problems=problems, values=values)
    admin = session.user
    ctx.accounts.add_user(result, str(form.get("password")), by=admin.id, now=ctx.clock())
    return RedirectResponse("/admin/users?done=user_added", status_code=303)


@router.post("/admin/users/{user_id}")
def change_user(
    user_id: str, request: Request, ctx: CtxDep, session: SessionDep, form: FormDep, _: CsrfDep
) -> Response:
    admin = _admin(session)
    target = ctx.accounts.get(user_id)
    if target is None:
        raise PageError(404, "Account not found", "There is no such account.")
    action = str(form.get("action") or "")
    if action in ("disable", "enable"):
        if target.id == admin.id:
            return _page(
                request,
                ctx,
                status=422,
                problems={"action": "You cannot disable your own account."},
            )
        ctx.accounts.set_active(target.id, action == "enable", by=admin.id, now=ctx.clock())
    elif action == "password":
        password = str(form.get("password") or "")
        problem = check_password(password, username=target.username)
        if problem:
            return _page(request, ctx, status=422, problems={f"password-{target.id}": problem})
        ctx.accounts.set_password(target.id, password, by=admin.id, now=ctx.clock())
    elif action == "access":
        sites = str(form.get("sites") or "").replace(",", " ").split()
        access = check_access(str(form.get("role") or ""), sites)
        if isinstance(access, AccountProblems):
            return _page(
                request,
                ctx,
                status=422,
                problems={f"{k}-{target.id}": v for k, v in access.problems.items()},
            )
        if target.id == admin.id:
            return _page(
                request,
                ctx,
                status=422,
                problems={f"role-{target.id}": "You cannot change your own role or sites."},
            )
        role, site_set = access
        problems: dict[str, str] = {}
        unknown = _unknown_sites(ctx, sorted(site_set - target.sites))  # new ones only
        if unknown:
            problems[f"sites-{target.id}"] = unknown
        name = form.get("display_name")
        name_problem = check_display_name(str(name)) if name is not None else None
        if name_problem:
            problems[f"display_name-{target.id}"] = name_problem
        if problems:
            return _page(request, ctx, status=422, problems=problems)
        ctx.accounts.set_access(
            target.id,
            role,
            site_set,
            by=admin.id,
            now=ctx.clock(),
            display_name=None if name is None else str(name),
        )
    else:
        raise PageError(400, "Unknown action", "Use the buttons on the accounts page.")
    return RedirectResponse("/admin/users?done=user_changed", status_code=303)
