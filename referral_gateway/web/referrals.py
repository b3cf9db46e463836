"""A referral's page: the approach card, claiming and assigning, the approach outcome
(consent), identifiable details once the consent policy allows them, and the casework after:
contact attempts, support, onward referrals and signposting, notes, closure, follow-up.

Every form posts to its own address and is answered with a 303 back here (post/redirect/get):
on success with a `done` code for the message; on a refusal with the problems and what was
typed left in the flash store (`web.flash`: encrypted in the database, read once, never the
URL) and the page landing on its error summary (`#error-summary`), each message linking to
its field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from consent.policy import ConsentDecision
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentProposal,
    ConsentRecord,
    NotApproachedReason,
    Refusal,
    record_consent,
)
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.casework import (
    CONTACT_STATUSES,
    TERMINAL_STATUSES,
    CaseRefusal,
    ClosureOutcome,
    close,
    follow_up_pending,
    is_escalated,
    may_act,
    may_record_consent,
    reopen,
)
from referral_gateway.domain.nhs_number import spaced_nhs_number
from referral_gateway.domain.phone_numbers import dial_string
from referral_gateway.domain.reason_words import plain_reasons
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.errors import NotFound
from referral_gateway.storage.queue import ApproachCard, follow_ups_due
from referral_gateway.web.context import WebContext
from referral_gateway.web.errors import PageError
from referral_gateway.web.flash import FormFlash
from referral_gateway.web.render import render
from referral_gateway.web.security import (
    CaseworkerDep,
    CsrfDep,
    CtxDep,
    FormDep,
    referral_id_or_404,
)

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

OUTCOME_LABELS = {
    ConsentOutcome.GIVEN: "Consent given",
    ConsentOutcome.DECLINED: "Declined",
    ConsentOutcome.NOT_APPROACHED: "Not approached",
    ConsentOutcome.SAFEGUARDING_OVERRIDE: "Safeguarding override (share without consent)",
    ConsentOutcome.WITHDRAWN: "Consent withdrawn",
}
GIVER_LABELS = {
    ConsentGiver.YOUNG_PERSON_16_PLUS: "The young person (aged 16 or over)",
    ConsentGiver.GILLICK_COMPETENT_UNDER_16: (
        "The young person, under 16, assessed Gillick competent"
    ),
    ConsentGiver.PARENT_GUARDIAN: "A parent or guardian (young person under 18)",
}
# each outcome's own fields: those of another outcome (typed, then hidden by choosing a
# different one) do not count
FIELDS_OF = {
    ConsentOutcome.GIVEN: ("giver", "young_person_age", "gillick_assessment", "onward_sharing"),
    ConsentOutcome.NOT_APPROACHED: ("not_approached_reason", "not_approached_detail"),
    ConsentOutcome.SAFEGUARDING_OVERRIDE: (
        "override_reason",
        "authoriser_name",
        "authoriser_role",
        "override_at",
        "override_onward_sharing",
    ),
}
# the outcomes that ask for more than the outcome itself: their fields show once chosen
OUTCOME_FIELDS = frozenset(o.value for o in FIELDS_OF)
NOT_APPROACHED_LABELS = {
    NotApproachedReason.DISCHARGED_BEFORE_APPROACH: "Discharged before we could approach",
    NotApproachedReason.TOO_UNWELL: "Too unwell",
    NotApproachedReason.IN_POLICE_CUSTODY: "In police custody",
    NotApproachedReason.CLINICAL_TEAM_ADVISED_AGAINST: "The clinical team advised against",
    NotApproachedReason.OTHER: "Other reason (say why)",
}


def _local_datetime(raw: object, zone: tzinfo) -> datetime | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _date(raw: object) -> date | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _go(referral_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/referrals/{referral_id}?done={done}", status_code=303)


def case_page(referral_id: str) -> str:
    return f"/referrals/{referral_id}"


def _session_key(request: Request) -> str:
    session = getattr(request.state, "session", None)
    return session.id_hash if session is not None else ""


def back_with_problems(
    ctx: WebContext, request: Request, referral_id: str, flash: FormFlash
) -> RedirectResponse:
    """Leave the refused form for the case page's next GET and send the browser there, onto
    its error summary."""
    page = case_page(referral_id)
    ctx.flash.keep(_session_key(request), page, flash, now=ctx.clock())
    return RedirectResponse(f"{page}#error-summary", status_code=303)


def _allowed_outcomes(
    ctx: WebContext, user: StaffUser, detail_history: Sequence[ConsentRecord], rid: str
) -> list[ConsentOutcome]:
    """The outcomes the consent rules accept next, found by asking them."""
    now = ctx.clock()
    allowed: list[ConsentOutcome] = []
    for outcome in OUTCOME_LABELS:
        probe = record_consent(
            detail_history, ConsentProposal(rid, outcome, recorded_by=user.id), now=now
        )
        if not (isinstance(probe, Refusal) and "outcome" in probe.problems):
            allowed.append(outcome)
    return allowed


def referral_page(
    ctx: WebContext,
    request: Request,
    user: StaffUser,
    referral_id: str,
    *,
    flash: FormFlash | None = None,
) -> HTMLResponse:
    try:
        detail = ctx.casework.detail(user, referral_id)
    except NotFound:
        raise PageError(404, "Referral not found", "There is no referral here for you.") from None
    case = detail.case
    now = ctx.clock()
    can_act = may_act(user, case) is None
    can_consent = may_record_consent(case, user) is None
    assignable = ctx.accounts.caseworkers_of(case.site) if user.assigns else []
    outcomes = _allowed_outcomes(ctx, user, detail.history, referral_id) if can_consent else []
    # the consent outcome whose fields show: the one just refused, or the one chosen first
    # (`?outcome=`, the step that makes the form work without JavaScript)
    wanted = (
        flash.values.get("outcome", "")
        if flash and flash.form_name == "consent"
        else request.query_params.get("outcome", "")
    )
    chosen_outcome = wanted if wanted in {o.value for o in outcomes} else ""
    return render(
        ctx,
        request,
        "referral.html",
        detail=detail,
        card=detail.card,
        case=case,
        reasons=plain_reasons(detail.card.reasons, fallback=detail.card.detection_rule),
        spaced_nhs_number=spaced_nhs_number,
        dial_string=dial_string,
        escalated=is_escalated(case, now=now, after=ctx.options.escalate_after),
        can_claim=case.assigned_to is None and case.status not in TERMINAL_STATUSES,
        can_release=can_act and case.status is ReferralStatus.CLAIMED,
        can_assign=user.assigns and case.status not in TERMINAL_STATUSES,
        assignable=assignable,
        can_consent=can_consent,
        outcomes=outcomes,
        chosen_outcome=chosen_outcome,
        OUTCOME_FIELDS=OUTCOME_FIELDS,
        can_contact=can_act and case.status in CONTACT_STATUSES,
        can_onward=can_act and case.status is not ReferralStatus.NEW,
        can_note=can_act and detail.unlocked.notes is not None,
        notes_message=detail.unlocked.message,
        can_close=can_act,
        can_follow_up=follow_up_pending(case) and (user.assigns or case.assigned_to == user.id),
        # the rule itself answers whether the button shows (the status it gives is unused)
        can_reopen=not isinstance(reopen(case, user, last_consent=None), CaseRefusal),
        form_name=flash.form_name if flash else "",
        problems=dict(flash.problems) if flash else {},
        values=dict(flash.values) if flash else {},
        OUTCOME_LABELS=OUTCOME_LABELS,
        GIVER_LABELS=GIVER_LABELS,
        NOT_APPROACHED_LABELS=NOT_APPROACHED_LABELS,
        today=ctx.casework.today(),
        onward_tasks=ctx.onward.tasks_of(referral_id) if ctx.onward else [],
        directory=(
            ctx.onward.services()
            if ctx.onward and can_act and detail.unlocked.notes is not None
            else []
        ),
    )


class CaseForm:
    """A form about one referral, posted by a caseworker with a valid CSRF token: what the
    casework routes need, gathered once."""

    def __init__(
        self,
        referral_id: str,
        request: Request,
        ctx: CtxDep,
        user: CaseworkerDep,
        form: FormDep,
        _: CsrfDep,
    ) -> None:
        self.referral_id = referral_id_or_404(referral_id)
        self.request, self.ctx, self.user, self.form = request, ctx, user, form
        self.casework = ctx.casework

    def text(self, name: str) -> str:
        return _text(self.form, name)

    def act(self, action: Callable[[str], T]) -> T:
        """Do `action` to the referral as the user; a referral they may not see is a 404."""
        with _found():
            return action(self.referral_id)

    def reply(
        self, refusal: CaseRefusal | Refusal | None, *, done: str, form_name: str | None = None
    ) -> Response:
        """Back to the referral: with a `done` message, or onto the error summary of the form
        (`form_name`, by default `done`) with its problems and what was typed."""
        if refusal is None:
            return _go(self.referral_id, done)
        # a form refused before the referral was read must not tell whether it exists
        self.act(lambda rid: self.casework.card(self.user, rid))
        values = {k: v for k, v in self.form.items() if isinstance(v, str) and k != "csrf_token"}
        flash = FormFlash(form_name or done, dict(refusal.problems), values)
        return back_with_problems(self.ctx, self.request, self.referral_id, flash)

    def answer(
        self,
        action: Callable[[str], CaseRefusal | Refusal | None],
        *,
        done: str,
        form_name: str | None = None,
    ) -> Response:
        """`act`, then `reply`: what most casework forms do."""
        return self.reply(self.act(action), done=done, form_name=form_name)


CaseFormDep = Annotated[CaseForm, Depends(CaseForm)]


@contextmanager
def _found() -> Iterator[None]:
    """A referral the user may not see is answered as one that does not exist."""
    try:
        yield
    except NotFound:
        raise PageError(404, "Referral not found", "There is no referral here for you.") from None


# -- pages -------------------------------------------------------------------------------------


@router.get("/referrals/{referral_id}")
def referral(referral_id: str, request: Request, ctx: CtxDep, user: CaseworkerDep) -> Response:
    rid = referral_id_or_404(referral_id)
    flash = ctx.flash.take(_session_key(request), case_page(rid), now=ctx.clock())
    return referral_page(ctx, request, user, rid, flash=flash)


@router.get("/follow-ups")
def follow_ups(request: Request, ctx: CtxDep, user: CaseworkerDep) -> Response:
    today = ctx.casework.today()
    with ctx.engine.connect() as conn:
        cards = follow_ups_due(  # every pending one: each is due within six months of closing
            conn, user.sites, ctx.casework.attendances.keyring, due_by=today + FOLLOW_UPS_AHEAD
        )
    soon = today + FOLLOW_UP_SOON
    due = [c for c in cards if c.case.follow_up_due_on and c.case.follow_up_due_on <= today]
    coming = [c for c in cards if c not in due]
    return render(
        ctx,
        request,
        "follow_ups.html",
        groups=[
            ("overdue", "Due now or overdue", due),
            ("soon", "Due in the next two weeks", [c for c in coming if _due_by(c, soon)]),
            ("later", "Coming later", [c for c in coming if not _due_by(c, soon)]),
        ],
        count=len(cards),
        today=today,
    )


FOLLOW_UPS_AHEAD = timedelta(days=7 * 31)
FOLLOW_UP_SOON = timedelta(days=14)


def _due_by(card: ApproachCard, day: date) -> bool:
    return card.case.follow_up_due_on is not None and card.case.follow_up_due_on <= day


# -- claiming and assigning --------------------------------------------------------------------


@router.post("/referrals/{referral_id}/claim")
def claim(case: CaseFormDep) -> Response:
    return case.answer(
        lambda rid: case.casework.claim(case.user, rid), done="claimed", form_name="claim"
    )


@router.post("/referrals/{referral_id}/release")
def release(case: CaseFormDep) -> Response:
    return case.answer(
        lambda rid: case.casework.release(case.user, rid), done="released", form_name="claim"
    )


@router.post("/referrals/{referral_id}/assign")
def assign(case: CaseFormDep) -> Response:
    assignee = case.text("assignee")
    refusal = case.act(lambda rid: case.casework.assign(case.user, rid, assignee))
    if refusal is None and case.text("back") == "queue":
        return RedirectResponse("/queue?done=assigned", status_code=303)
    return case.reply(refusal, done="assigned", form_name="assign")


# -- the approach ------------------------------------------------------------------------------


def consent_proposal(
    referral_id: str, user: StaffUser, form: FormData, zone: tzinfo
) -> ConsentProposal | dict[str, str]:
    """The proposal the form describes, or the problems that stop it being read at all."""
    problems: dict[str, str] = {}
    try:
        outcome = ConsentOutcome(_text(form, "outcome"))
    except ValueError:
        return {"outcome": "Choose the outcome of the approach."}
    own = FIELDS_OF.get(outcome, ())

    def read(name: str) -> str:
        return _text(form, name).strip() if name in own else ""

    giver = None
    if read("giver"):
        try:
            giver = ConsentGiver(read("giver"))
        except ValueError:
            problems["giver"] = "Choose who gave consent."
    age = None
    raw_age = read("young_person_age")
    if raw_age:
        if raw_age.isdigit() and len(raw_age) <= 3:
            age = int(raw_age)
        else:
            problems["young_person_age"] = "Enter the age as a whole number of years, like 16."
    reason = None
    if read("not_approached_reason"):
        try:
            reason = NotApproachedReason(read("not_approached_reason"))
        except ValueError:
            problems["not_approached_reason"] = "Choose why the young person was not approached."
    override_at = _local_datetime(read("override_at"), zone)
    if read("override_at") and override_at is None:
        problems["override_at"] = "Enter the date and time the override was authorised."
    if problems:
        return problems
    return ConsentProposal(
        referral_id=referral_id,
        outcome=outcome,
        recorded_by=user.id,
        giver=giver,
        young_person_age=age,
        gillick_assessment=read("gillick_assessment") or None,
        not_approached_reason=reason,
        not_approached_detail=read("not_approached_detail") or None,
        override_reason=read("override_reason") or None,
        authoriser_name=read("authoriser_name") or None,
        authoriser_role=read("authoriser_role") or None,
        override_at=override_at,
        onward_sharing="yes" in (read("onward_sharing"), read("override_onward_sharing")),
    )


@router.post("/referrals/{referral_id}/consent")
def consent(case: CaseFormDep) -> Response:
    outcome = case.text("outcome")
    shown = case.form.get("fields_for")  # the page's form says whose fields were on screen
    if outcome in OUTCOME_FIELDS and shown is not None and shown != outcome:
        # the outcome was chosen without its fields on screen (no JavaScript): show them
        case.act(lambda rid: case.casework.card(case.user, rid))
        return RedirectResponse(
            f"{case_page(case.referral_id)}?outcome={outcome}#consent", status_code=303
        )
    proposal = consent_proposal(case.referral_id, case.user, case.form, case.ctx.options.zone)
    refusal: CaseRefusal | Refusal | None
    if isinstance(proposal, dict):
        refusal = CaseRefusal(proposal)
    else:
        result = case.act(lambda rid: case.casework.record_consent(case.user, rid, proposal))
        if isinstance(result, ConsentDecision):
            refusal = CaseRefusal({"outcome": result.message})
        else:
            refusal = result if isinstance(result, (Refusal, CaseRefusal)) else None
    return case.reply(refusal, done="consent")


# -- after the approach ------------------------------------------------------------------------


@router.post("/referrals/{referral_id}/contacts")
def contact(case: CaseFormDep) -> Response:
    at = _local_datetime(case.form.get("at"), case.ctx.options.zone)
    method, outcome = case.text("method"), case.text("outcome")
    return case.answer(
        lambda rid: case.casework.log_contact(
            case.user, rid, at=at, method=method, outcome=outcome
        ),
        done="contact",
    )


@router.post("/referrals/{referral_id}/support")
def support(case: CaseFormDep) -> Response:
    tier, start_on = case.text("tier"), _date(case.form.get("start_on"))
    return case.answer(
        lambda rid: case.casework.set_support(case.user, rid, tier=tier, start_on=start_on),
        done="support",
    )


@router.post("/referrals/{referral_id}/onward")
def onward(case: CaseFormDep) -> Response:
    kind, service_type, on = (
        case.text("kind"),
        case.text("service_type"),
        _date(case.form.get("on")),
    )
    return case.answer(
        lambda rid: case.casework.add_onward(
            case.user, rid, kind=kind, service_type=service_type, on=on
        ),
        done="onward",
    )


@router.post("/referrals/{referral_id}/notes")
def note(case: CaseFormDep) -> Response:
    return case.answer(
        lambda rid: case.casework.add_note(case.user, rid, case.text("note")), done="note"
    )


@router.get("/referrals/{referral_id}/close")
def close_confirmation(
    referral_id: str, request: Request, ctx: CtxDep, user: CaseworkerDep
) -> Response:
    """The confirm step before closing (the case page's close form asks here, by GET)."""
    rid = referral_id_or_404(referral_id)
    with _found():
        card = ctx.casework.card(user, rid)
    outcome = request.query_params.get("outcome", "")
    closed = close(card.case, user, outcome=outcome, now=ctx.clock(), today=ctx.casework.today())
    if isinstance(closed, CaseRefusal):
        flash = FormFlash("close", dict(closed.problems), {"outcome": outcome})
        return back_with_problems(ctx, request, rid, flash)
    return render(
        ctx,
        request,
        "close_confirm.html",
        card=card,
        case=card.case,
        outcome=ClosureOutcome(outcome),
        follow_up_due_on=closed.follow_up_due_on,
    )


@router.post("/referrals/{referral_id}/close")
def close_referral(case: CaseFormDep) -> Response:
    outcome = case.text("outcome")
    if case.text("confirmed") != "yes":  # not from the confirm step: ask there first
        case.act(lambda rid: case.casework.card(case.user, rid))
        query = urlencode({"outcome": outcome})
        return RedirectResponse(f"{case_page(case.referral_id)}/close?{query}", status_code=303)
    return case.answer(
        lambda rid: case.casework.close(case.user, rid, outcome=outcome),
        done="closed",
        form_name="close",
    )


@router.post("/referrals/{referral_id}/reopen")
def reopen_referral(case: CaseFormDep) -> Response:
    return case.answer(
        lambda rid: case.casework.reopen(case.user, rid), done="reopened", form_name="reopen"
    )


@router.post("/referrals/{referral_id}/follow-up")
def follow_up(case: CaseFormDep) -> Response:
    outcome = case.text("outcome")
    return case.answer(
        lambda rid: case.casework.record_follow_up(case.user, rid, outcome=outcome),
        done="follow_up",
    )
