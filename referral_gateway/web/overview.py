"""Aggregates for programme leads (and team leads): referrals per site and status, with
small numbers suppressed by the one disclosure control (`domain.disclosure`). No referral,
no approach card, nothing identifiable.

The page shows no totals, so no figure can be worked out from the others: primary
suppression alone (0 stays 0, 1 to 7 show as `*`, the rest round to the nearest 5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consent.policy import Role
from referral_gateway.domain.casework import STATUS_LABELS
from referral_gateway.domain.disclosure import disclose
from referral_gateway.storage.queue import status_counts
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import CtxDep, SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/overview")
def overview(request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    user = session.user
    if user.role not in (Role.PROGRAMME_LEAD, Role.TEAM_LEAD):
        raise PageError(
            403, "Not available to your role", "The overview is for programme and team leads."
        )
    with ctx.engine.connect() as conn:
        counts = status_counts(conn, user.sites)
    sites = sorted(user.sites)
    cells = {
        (site, s.value): counts.get((site, s.value), 0) for site in sites for s in STATUS_LABELS
    }
    shown = disclose(cells).shown
    rows = [(site, [str(shown[(site, s.value)]) for s in STATUS_LABELS]) for site in sites]
    return render(ctx, request, "overview.html", rows=rows, statuses=list(STATUS_LABELS.values()))
