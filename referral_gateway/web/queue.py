"""The queue, live, in tabs that are plain links:

- "My caseload" (a youth worker's default): every case of theirs that still needs them, with
  its next action and its day (`domain.caseload`); a consented case stays here.
- "New": unclaimed candidates at their sites, the most urgent first (still in the
  department, then the longest wait).
- "All referrals" (a team lead's default): the status, site and "only mine" filters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from consent.policy import Purpose, Role
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.caseload import next_action
from referral_gateway.domain.casework import escalation_cutoff, is_escalated
from referral_gateway.domain.referral import OPEN_STATUSES, ReferralStatus
from referral_gateway.storage.feed_alarms import open_alarms
from referral_gateway.storage.queue import (
    ApproachCard,
    QueueFilter,
    caseload_cards,
    queue_cards,
    unclaimed_since,
)
from referral_gateway.web.context import WebContext
from referral_gateway.web.render import render
from referral_gateway.web.security import SESSION, CaseworkerDep, CtxDep, read_cookie

router = APIRouter(include_in_schema=False)

S = ReferralStatus
STATUS_FILTERS: dict[str, tuple[str, frozenset[ReferralStatus]]] = {
    "open": ("Open (new and claimed)", frozenset({S.NEW, S.CLAIMED})),
    "new": ("New", frozenset({S.NEW})),
    "claimed": ("Claimed", frozenset({S.CLAIMED})),
    "consented": ("Consented", frozenset({S.CONSENTED})),
    "in_support": ("In support", frozenset({S.IN_SUPPORT})),
    "declined": ("Declined", frozenset({S.DECLINED})),
    "not_approached": ("Not approached", frozenset({S.NOT_APPROACHED})),
    "withdrawn": ("Consent withdrawn", frozenset({S.WITHDRAWN})),
    "active": (
        "All active",
        frozenset(
            {S.NEW, S.CLAIMED, S.CONSENTED, S.IN_SUPPORT, S.DECLINED, S.NOT_APPROACHED, S.WITHDRAWN}
        ),
    ),
    "closed": ("Closed", frozenset({S.CLOSED})),
    "voided": ("Cancelled by the ED", frozenset({S.VOIDED})),
}


TABS = {"caseload": "My caseload", "new": "New", "all": "All referrals"}


def default_tab(user: StaffUser) -> str:
    return "caseload" if user.role is Role.YOUTH_WORKER else "all"


@dataclass(frozen=True)
class QueueView:
    status: str
    site: str
    mine: bool
    page: int
    tab: str = "all"

    @property
    def by_urgency(self) -> bool:
        """Lists of open referrals are worked most urgent first; the rest newest first."""
        return self.tab == "new" or STATUS_FILTERS[self.status][1] <= OPEN_STATUSES

    def query(self, *, page: int | None = None) -> str:
        if self.tab == "caseload":
            return "tab=caseload"
        parts = [f"tab={self.tab}"]
        if self.tab == "all":
            parts.append(f"status={self.status}")
        if self.site:
            parts.append(f"site={self.site}")
        if self.mine:
            parts.append("mine=1")
        if (page or self.page) > 1:
            parts.append(f"page={page or self.page}")
        return "&".join(parts)


def _view(request: Request, user: StaffUser) -> QueueView:
    q = request.query_params
    tab = q.get("tab", "")
    if tab not in TABS:
        # the filters' own links (and old bookmarks) name a status but no tab
        tab = "all" if "status" in q or "mine" in q else default_tab(user)
    status = q.get("status", "open")
    if status not in STATUS_FILTERS:
        status = "open"
    site = q.get("site", "").strip().upper()
    if site not in user.sites:
        site = ""
    try:
        page = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    if tab == "new":
        status = "new"
    return QueueView(status, site, q.get("mine") == "1" and tab == "all", page, tab)


def _cards(ctx: WebContext, user: StaffUser, view: QueueView) -> tuple[list[ApproachCard], int]:
    keyring = ctx.casework.attendances.keyring
    sites = frozenset({view.site}) if view.site else user.sites
    if view.tab == "caseload":
        with ctx.engine.connect() as conn:
            cards = caseload_cards(conn, user.id, sites, keyring, today=ctx.casework.today())
        return cards, len(cards)
    size = ctx.options.page_size
    f = QueueFilter(
        sites=sites,
        statuses=STATUS_FILTERS[view.status][1],
        assigned_to=user.id if view.mine else None,
        limit=size,
        offset=(view.page - 1) * size,
        by_urgency=view.by_urgency,
    )
    with ctx.engine.connect() as conn:
        return queue_cards(conn, f, keyring)


def _card_values(ctx: WebContext, user: StaffUser, view: QueueView) -> dict[str, Any]:
    cards, total = _cards(ctx, user, view)
    # the query already keeps to the user's sites; the consent policy has the last word
    cards = [c for c in cards if ctx.casework.shows_card(user, c.case, Purpose.QUEUE_VIEW)]
    now = ctx.clock()
    after = ctx.options.escalate_after
    assignable: dict[str, list[StaffUser]] = {}
    if user.assigns:
        assignable = {site: ctx.accounts.caseworkers_of(site) for site in sorted(user.sites)}
    escalations = 0
    feed_alarms: list[dict[str, Any]] = []
    if user.assigns:  # team leads hear of escalations and of their sites' silent feeds
        with ctx.engine.connect() as conn:
            escalations = unclaimed_since(conn, user.sites, before=escalation_cutoff(now, after))
            feed_alarms = open_alarms(conn, sites=user.sites)
    return {
        "feed_alarms": feed_alarms,
        "escalations": escalations,
        "escalate_minutes": ctx.options.escalate_after_minutes,
        "cards": cards,
        "next_actions": {c.referral_id: next_action(c.case) for c in cards}
        if view.tab == "caseload"
        else {},
        "total": total,
        "view": view,
        "escalated": {c.referral_id for c in cards if is_escalated(c.case, now=now, after=after)},
        "assignable": assignable,
        "page_size": ctx.options.page_size,
        "many_sites": len(user.sites) > 1,
    }


@router.get("/queue")
def queue_page(request: Request, ctx: CtxDep, user: CaseworkerDep) -> HTMLResponse:
    view = _view(request, user)
    return render(
        ctx,
        request,
        "queue.html",
        filters=STATUS_FILTERS,
        tabs=TABS,
        sites=sorted(user.sites),
        **_card_values(ctx, user, view),
    )


@router.get("/queue/cards")
def queue_cards_fragment(request: Request, ctx: CtxDep, user: CaseworkerDep) -> HTMLResponse:
    """The list alone, for the live update to swap in."""
    view = _view(request, user)
    return render(ctx, request, "_cards.html", **_card_values(ctx, user, view))


@router.get("/queue/events")
async def queue_events(request: Request, ctx: CtxDep) -> Response:
    """Server-sent events: `new`, `changed` and `escalated` with a referral id and site, and
    for news from the ED what changed (`discharged`, `back_in_department`, `cancelled`,
    `moved`); no other data: the page fetches the list it is allowed to see. Ends when the
    session does."""
    token = read_cookie(request, SESSION)

    def check() -> StaffUser | None:
        session = ctx.accounts.current(token, now=ctx.clock(), touch=False)
        return session.user if session and session.user.works_queue else None

    user = await run_in_threadpool(check)
    if user is None:
        return Response(status_code=401, headers={"Cache-Control": "no-store"})
    heartbeat = ctx.options.heartbeat_seconds

    async def stream() -> AsyncIterator[str]:
        sub = ctx.events.subscribe(user.sites)
        try:
            yield "retry: 3000\nevent: ready\ndata: {}\n\n"
            while True:
                try:
                    event = await sub.next(heartbeat)
                except TimeoutError:
                    if await run_in_threadpool(check) is None:
                        yield "event: signed-out\ndata: {}\n\n"
                        return
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                fields = {"referral_id": event.referral_id, "site": event.site}
                if event.change:
                    fields["change"] = event.change
                data = json.dumps(fields)
                yield f"event: {event.kind}\ndata: {data}\n\n"
        finally:
            ctx.events.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
