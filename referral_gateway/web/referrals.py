"""A referral's page: the approach card, claiming and assigning, the approach outcome
(consent), identifiable details once the consent policy allows them, and the casework after:
contact attempts, support, onward referrals and signposting, notes, closure, follow-up.

Every form posts to its own address and comes back here: on success with a redirect (and a
`done` code for the message), on a refusal re-rendered with the problems next to the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from typing import Annotated, TypeVar

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
    follow_up_due,
    is_escalated,
    may_act,
    may_record_consent,
)
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.services.errors import NotFound
from referral_gateway.storage.queue import follow_ups_due
from referral_gateway.web.context import WebContext
from referral_gateway.web.errors import PageError
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
    status: int = 200,
    form_name: str = "",
    problems: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
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
    return render(
        ctx,
        request,
        "referral.html",
        status=status,
        detail=detail,
        card=detail.card,
        case=case,
        escalated=is_escalated(case, now=now, after=ctx.options.escalate_after),
        can_claim=case.assigned_to is None and case.status not in TERMINAL_STATUSES,
        can_release=can_act and case.status is ReferralStatus.CLAIMED,
        can_assign=user.assigns and case.status not in TERMINAL_STATUSES,
        assignable=assignable,
        can_consent=can_consent,
        outcomes=(_allowed_outcomes(ctx, user, detail.history, referral_id) if can_consent else []),
        can_contact=can_act and case.status in CONTACT_STATUSES,
        can_onward=can_act and case.status is not ReferralStatus.NEW,
        can_note=can_act and detail.unlocked.notes is not None,
        notes_message=detail.unlocked.message,
        can_close=can_act,
        can_follow_up=follow_up_due(case, today=ctx.casework.today())
        and (user.assigns or case.assigned_to == user.id),
        form_name=form_name,
        problems=dict(problems or {}),
        values=dict(values or {}),
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
        """The referral again (with a `done` message), or the form (`form_name`, by default
        `done`) with its problems and what was typed."""
        if refusal is None:
            return _go(self.referral_id, done)
        values = {k: v for k, v in self.form.items() if isinstance(v, str) and k != "csrf_token"}
        return referral_page(
            self.ctx,
            self.request,
            self.user,
            self.referral_id,
            status=422,
            form_name=form_name or done,
            problems=refusal.problems,
            values=values,
        )

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
    return referral_page(ctx, request, user, referral_id_or_404(referral_id))


@router.get("/follow-ups")
def follow_ups(request: Request, ctx: CtxDep, user: CaseworkerDep) -> Response:
    today = ctx.casework.today()
    with ctx.engine.connect() as conn:
        cards = follow_ups_due(
            conn,
            user.sites,
            ctx.casework.attendances.keyring,
            due_by=today + (date.resolution * 14),
        )
    return render(ctx, request, "follow_ups.html", cards=cards, today=today)


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
    giver = None
    if _text(form, "giver"):
        try:
            giver = ConsentGiver(_text(form, "giver"))
        except ValueError:
            problems["giver"] = "Choose who gave consent."
    age = None
    raw_age = _text(form, "young_person_age").strip()
    if raw_age:
        if raw_age.isdigit() and len(raw_age) <= 3:
            age = int(raw_age)
        else:
            problems["young_person_age"] = "Enter the age as a whole number of years, like 16."
    reason = None
    if _text(form, "not_approached_reason"):
        try:
            reason = NotApproachedReason(_text(form, "not_approached_reason"))
        except ValueError:
            problems["not_approached_reason"] = "Choose why the young person was not approached."
    override_at = _local_datetime(form.get("override_at"), zone)
    if _text(form, "override_at").strip() and override_at is None:
        problems["override_at"] = "Enter the date and time the override was authorised."
    if problems:
        return problems
    only = outcome is ConsentOutcome.SAFEGUARDING_OVERRIDE
    return ConsentProposal(
        referral_id=referral_id,
        outcome=outcome,
        recorded_by=user.id,
        giver=giver,
        young_person_age=age,
        gillick_assessment=_text(form, "gillick_assessment") or None,
        not_approached_reason=reason,
        not_approached_detail=_text(form, "not_approached_detail") or None,
        override_reason=_text(form, "override_reason") or None if only else None,
        authoriser_name=_text(form, "authoriser_name") or None if only else None,
        authoriser_role=_text(form, "authoriser_role") or None if only else None,
        override_at=override_at if only else None,
        onward_sharing=_text(form, "onward_sharing") == "yes",
    )


@router.post("/referrals/{referral_id}/consent")
def consent(case: CaseFormDep) -> Response:
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


@router.post("/referrals/{referral_id}/close")
def close(case: CaseFormDep) -> Response:
    outcome = case.text("outcome")
    return case.answer(
        lambda rid: case.casework.close(case.user, rid, outcome=outcome),
        done="closed",
        form_name="close",
    )


@router.post("/referrals/{referral_id}/follow-up")
def follow_up(case: CaseFormDep) -> Response:
    outcome = case.text("outcome")
    return case.answer(
        lambda rid: case.casework.record_follow_up(case.user, rid, outcome=outcome),
        done="follow_up",
    )
