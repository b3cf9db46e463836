"""Server-rendered pages: one Jinja environment, a few filters for times and labels.

`make_templates(zone)` is the only place a Jinja environment is made: the app's pages, the
report pages, the hub and the standalone report file all render through it, so every time
on them is shown in the configured zone (RG_TIMEZONE). Its loader also holds the NHS.UK
frontend's Jinja macros (`frontend.py` says where their stylesheet and script come from)."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from consent.policy import Role
from referral_gateway.domain.accounts import ROLE_LABELS
from referral_gateway.domain.casework import (
    STATUS_LABELS,
    ClosureOutcome,
    ContactMethod,
    ContactOutcome,
    FollowUpOutcome,
    OnwardKind,
    ServiceType,
    SupportTier,
)
from referral_gateway.domain.dismissal import REASON_LABELS as NOT_ASSAULT_REASON_LABELS
from referral_gateway.domain.reason_words import plain_reasons
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.report_formats.files import display
from referral_gateway.storage.accounts import CurrentSession
from referral_gateway.web.context import SignInContext
from referral_gateway.web.security import NO_STORE

TEMPLATES = Path(__file__).with_name("templates")

INJURY_LABELS = {
    "body_part": "Bodily force",
    "bladed": "Bladed",
    "firearm": "Firearm",
    "sexual": "Sexual assault",
    "exploitation": "Exploitation concern",
    "other": "Other assault",
}
SEX_LABELS = {"male": "Male", "female": "Female", "other": "Other", "unknown": "Sex not known"}
ATTENDANCE_LABELS = {
    "in_department": "In department",
    "discharged": "Discharged",
    "cancelled": "Cancelled",
}
DONE_MESSAGES = {
    "signed_out": "You have signed out.",
    "claimed": "Claimed: the referral is in your name.",
    "released": "The referral is back on the queue.",
    "assigned": "Assigned.",
    "consent": "The approach outcome is recorded.",
    "contact": "Contact attempt logged.",
    "support": "Support tier saved.",
    "onward": "Onward referral or signposting recorded.",
    "note": "Note saved.",
    "closed": "Referral closed.",
    "reopened": "Referral reopened: it is back in casework.",
    "not_assault": "Marked not an assault: the referral has left the New list.",
    "alerts_saved": "Your alert settings are saved.",
    "devices_forgotten": "Alerts are off on all your devices.",
    "follow_up": "Follow-up recorded.",
    "created": "Manual referral created and put on the queue.",
    "user_added": "Account created.",
    "user_changed": "Account updated.",
    "password_set": "Your password is set.",
    "sent_onward": "Referral queued for the service: its status shows below as it answers.",
    "retried": "Dead deliveries queued again.",
}


def make_templates(zone: tzinfo) -> jinja2.Environment:
    # the NHS.UK components' macros ("nhsuk/components/<name>/macro.jinja") come from the
    # nhsuk-frontend-jinja package, which needs ChainableUndefined (its README): a macro reads
    # params.a.b where the page gave no params.a
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(TEMPLATES), jinja2.PackageLoader("nhsuk_frontend_jinja")]
        ),
        autoescape=jinja2.select_autoescape(["html", "jinja"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment else None

    def clock_time(moment: datetime | None) -> str:
        m = local(moment)
        return m.strftime("%H:%M") if m else "not given"

    def day_time(moment: datetime | None) -> str:
        m = local(moment)
        return m.strftime("%a %d %b %Y, %H:%M") if m else "not given"

    def day(value: date | None) -> str:
        return value.strftime("%a %d %b %Y") if value else "not given"

    def iso(moment: datetime | None) -> str:
        return moment.isoformat() if moment else ""

    def input_local(moment: datetime | None) -> str:
        m = local(moment)
        return m.strftime("%Y-%m-%dT%H:%M") if m else ""

    def when(moment: datetime | None) -> str:
        m = local(moment)
        return m.strftime("%Y-%m-%d %H:%M") if m else ""

    def local_iso(moment: datetime | None) -> str:
        m = local(moment)
        return m.isoformat(timespec="minutes") if m else ""

    env.filters.update(
        clock_time=clock_time,
        day_time=day_time,
        day=day,
        iso=iso,
        input_local=input_local,
        when=when,
        local_iso=local_iso,
        shown=display,
        in_plain_words=lambda reasons, fallback="": plain_reasons(reasons, fallback=fallback),
    )
    env.globals.update(
        ago=ago,
        STATUS_LABELS={s.value: label for s, label in STATUS_LABELS.items()},
        ROLE_LABELS={r.value: label for r, label in ROLE_LABELS.items()},
        INJURY_LABELS=INJURY_LABELS,
        SEX_LABELS=SEX_LABELS,
        ATTENDANCE_LABELS=ATTENDANCE_LABELS,
        ContactMethod=ContactMethod,
        ContactOutcome=ContactOutcome,
        SupportTier=SupportTier,
        OnwardKind=OnwardKind,
        ServiceType=ServiceType,
        ClosureOutcome=ClosureOutcome,
        FollowUpOutcome=FollowUpOutcome,
        ReferralStatus=ReferralStatus,
        NOT_ASSAULT_REASONS=[(r.value, label) for r, label in NOT_ASSAULT_REASON_LABELS.items()],
    )
    return env


def app_templates(request: Request) -> jinja2.Environment:
    """The app's one Jinja environment, made by `install_web` (at `app.state.web`)."""
    templates: jinja2.Environment = request.app.state.web.templates
    return templates


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min ago" if rest else f"{hours} h ago"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} ago"


def render(
    ctx: SignInContext,
    request: Request,
    template: str,
    *,
    status: int = 200,
    session: CurrentSession | None = None,
    **values: Any,
) -> HTMLResponse:
    session = session or getattr(request.state, "session", None)
    done = request.query_params.get("done", "")
    user = session.user if session else None
    notices = [
        {
            "id": n.notice.id,
            "text": n.text,
            "when": n.notice.created_at.astimezone(ctx.options.zone).strftime("%a %d %b %Y, %H:%M"),
        }
        for n in (
            ctx.accounts.notices_for(user)
            if user is not None and user.role is Role.TEAM_LEAD and not user.must_change_password
            else []
        )
    ]
    body = ctx.templates.get_template(template).render(
        user=user,
        notices=notices,
        here=request.url.path,
        csrf_token=session.csrf_token if session else "",
        now=ctx.clock(),
        done_message=DONE_MESSAGES.get(done, ""),
        landing=ctx.landing,
        **values,
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)
