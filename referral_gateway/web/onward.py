"""Onward referrals on the pages: a youth worker sends a referral to a service of the
directory (from the referral's page, which shows each Task's status), and administrators see
the directory and the outbox, with a retry button for dead deliveries.

Administrators read no referral: the outbox page shows ids, services, states and errors
(status codes or exception names), never anything about the young person.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from consent.policy import ConsentDecision, Role
from referral_gateway.domain.casework import CaseRefusal
from referral_gateway.services.onward import OnwardReferrals, OnwardRefusal
from referral_gateway.storage.onward import OutboxState
from referral_gateway.web.context import WebContext
from referral_gateway.web.errors import PageError
from referral_gateway.web.referrals import CaseFormDep
from referral_gateway.web.render import render
from referral_gateway.web.security import CsrfDep, CtxDep, FormDep, SessionDep

router = APIRouter(include_in_schema=False)


def _onward(ctx: WebContext) -> OnwardReferrals:
    if ctx.onward is None:
        raise PageError(404, "Not available", "Onward referrals are not set up here.")
    return ctx.onward


@router.post("/referrals/{referral_id}/send-onward")
def send_onward(case: CaseFormDep) -> Response:
    onward = _onward(case.ctx)
    service_id = case.text("service")
    result = case.act(
        lambda rid: onward.refer(case.user.as_actor(), rid, service_id, now=case.ctx.clock())
    )
    refusal = (
        CaseRefusal({"service": result.message})
        if isinstance(result, ConsentDecision | OnwardRefusal)
        else None
    )
    return case.reply(refusal, done="sent_onward", form_name="send")


def _admin(session: SessionDep) -> None:
    if session.user.role is not Role.ADMINISTRATOR:
        raise PageError(
            403, "Not available to your role", "The directory is kept by administrators."
        )


@router.get("/admin/services")
def services_page(request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    _admin(session)
    onward = _onward(ctx)
    items = onward.outbox([OutboxState.DEAD, OutboxState.PENDING])
    return render(
        ctx,
        request,
        "admin_services.html",
        services=onward.services(active_only=False),
        dead=[i for i in items if i.state is OutboxState.DEAD],
        pending=[i for i in items if i.state is OutboxState.PENDING],
    )


@router.post("/admin/outbox/retry")
def retry(ctx: CtxDep, session: SessionDep, form: FormDep, _: CsrfDep) -> Response:
    _admin(session)
    raw = str(form.get("id") or "")
    ids = None if raw == "all" else [int(raw)] if raw.isdigit() else []
    if ids == []:
        raise PageError(400, "Unknown delivery", "Use the buttons on the outbox page.")
    _onward(ctx).retry(ids, now=ctx.clock())
    return RedirectResponse("/admin/services?done=retried", status_code=303)
