"""A team lead's live view of their own sites: unclaimed referrals now and the longest wait,
escalations nobody has taken, each worker's active caseload, alerts that failed and silent
feeds. Operational (for running the shift), so not the published report and not suppressed;
scoped to the lead's sites on the server. No name or identifier of a young person: counts,
referral ids (whose pages check access again) and staff names only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consent.policy import Role
from referral_gateway.domain.alerts import alert_text
from referral_gateway.storage.alerts import failed_deliveries
from referral_gateway.storage.feed_alarms import open_alarms
from referral_gateway.storage.queue import sites_now
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import CtxDep, SessionDep

router = APIRouter(include_in_schema=False)
CHANNEL_LABELS = {"push": "Phone or browser", "email": "E-mail", "chat": "Team chat"}


@router.get("/team")
def team_now(request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    user = session.user
    if user.role is not Role.TEAM_LEAD:
        raise PageError(
            403, "Not available to your role", "The live view is for the team leads of a site."
        )
    with ctx.engine.connect() as conn:
        sites = sites_now(conn, user.sites)
        alarms = open_alarms(conn, sites=user.sites)
    people = sorted({worker for s in sites for worker, _ in s.caseloads})
    return render(
        ctx,
        request,
        "team.html",
        sites=sites,
        names=ctx.accounts.names(people),
        failed=[(d, alert_text(d.alert)) for d in failed_deliveries(ctx.engine, user.sites)],
        channel_labels=CHANNEL_LABELS,
        feed_alarms=alarms,
    )
