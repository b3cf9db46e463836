"""What youth workers do with a referral once it is on the queue, as pure rules.

    new ──claim/assign──► claimed ──consent outcome──► consented ──support tier──► in_support
     │                      │               declined / not_approached / withdrawn      │
     └──────────────────────┴────────────── close (mandatory outcome) ◄───────────────┘
                                                 │
                                      6-month follow-up (when consent was in force)

- Claiming puts a referral in the claimer's name; a team lead assigns it to any youth worker
  or team lead of its site. Someone else's claim is changed only by a team lead.
- Casework (consent outcome, contact attempts, support, onward referrals, notes, closure) is
  recorded by the assigned worker or a team lead of the site. Recording a consent outcome
  on an unclaimed referral claims it for the recorder. The outcome itself, and the status it
  leads to (consented, declined, not approached, withdrawn), follow `consent.records`.
- Contact attempts and support need a consent outcome that allows contact (given consent or
  a safeguarding override): the referral is `consented` or `in_support`.
- A referral nobody has claimed within the configured time is escalated to the team lead.
- A closure after consent sets a follow-up due six calendar months after the closure date;
  it may be recorded early. A team lead may reopen a closed referral (until its follow-up is
  recorded): it goes back to where the approach left it.

Every refusal is a `CaseRefusal` naming the form field and what to do; exceptions are for
programming errors only.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TypeVar

from consent.records import ConsentOutcome
from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.referral import ReferralStatus

E = TypeVar("E", bound=enum.StrEnum)

FOLLOW_UP_MONTHS = 6
CLOCK_SKEW = timedelta(minutes=5)  # a phone's clock may run a little ahead of the server's
MAX_NOTE_LENGTH = 5000

TERMINAL_STATUSES = frozenset(
    {ReferralStatus.CLOSED, ReferralStatus.VOIDED, ReferralStatus.NOT_ASSAULT}
)
CONTACT_STATUSES = frozenset({ReferralStatus.CONSENTED, ReferralStatus.IN_SUPPORT})

STATUS_LABELS: dict[ReferralStatus, str] = {
    ReferralStatus.NEW: "New",
    ReferralStatus.CLAIMED: "Claimed",
    ReferralStatus.CONSENTED: "Consented",
    ReferralStatus.DECLINED: "Declined",
    ReferralStatus.NOT_APPROACHED: "Not approached",
    ReferralStatus.WITHDRAWN: "Consent withdrawn",
    ReferralStatus.IN_SUPPORT: "In support",
    ReferralStatus.CLOSED: "Closed",
    ReferralStatus.VOIDED: "Cancelled by the ED",
    ReferralStatus.NOT_ASSAULT: "Not an assault",
}


class ContactMethod(enum.StrEnum):
    FACE_TO_FACE = "face_to_face"
    PHONE = "phone"

    @property
    def label(self) -> str:
        return "Face to face" if self is ContactMethod.FACE_TO_FACE else "Phone"


class ContactOutcome(enum.StrEnum):
    ENGAGED = "engaged"
    SPOKE_NOT_ENGAGED = "spoke_not_engaged"
    NO_ANSWER = "no_answer"
    MESSAGE_LEFT = "message_left"
    UNAVAILABLE = "unavailable"

    @property
    def label(self) -> str:
        return {
            ContactOutcome.ENGAGED: "Spoke, and they engaged",
            ContactOutcome.SPOKE_NOT_ENGAGED: "Spoke, but they did not engage",
            ContactOutcome.NO_ANSWER: "No answer",
            ContactOutcome.MESSAGE_LEFT: "Left a message",
            ContactOutcome.UNAVAILABLE: "Not available (in treatment, asleep, left)",
        }[self]


class SupportTier(enum.StrEnum):
    SHORT = "short"
    LONG = "long"

    @property
    def weeks(self) -> int:
        return 4 if self is SupportTier.SHORT else 12

    @property
    def label(self) -> str:
        return "Short (about 4 weeks)" if self is SupportTier.SHORT else "Long (up to 12 weeks)"


class OnwardKind(enum.StrEnum):
    REFERRAL = "referral"
    SIGNPOST = "signpost"

    @property
    def label(self) -> str:
        return "Referred on" if self is OnwardKind.REFERRAL else "Signposted"


class ServiceType(enum.StrEnum):
    MENTAL_HEALTH = "mental_health"
    SUBSTANCE_MISUSE = "substance_misuse"
    EDUCATION_EMPLOYMENT = "education_employment"
    HOUSING = "housing"
    SEXUAL_HEALTH = "sexual_health"
    CHILDRENS_SOCIAL_CARE = "childrens_social_care"
    VICTIM_SUPPORT = "victim_support"
    YOUTH_SERVICES = "youth_services"
    SPORT_ARTS = "sport_arts"
    FAMILY_SUPPORT = "family_support"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            ServiceType.MENTAL_HEALTH: "Mental health",
            ServiceType.SUBSTANCE_MISUSE: "Drugs and alcohol",
            ServiceType.EDUCATION_EMPLOYMENT: "Education, training or employment",
            ServiceType.HOUSING: "Housing",
            ServiceType.SEXUAL_HEALTH: "Sexual health",
            ServiceType.CHILDRENS_SOCIAL_CARE: "Children's social care",
            ServiceType.VICTIM_SUPPORT: "Victim support",
            ServiceType.YOUTH_SERVICES: "Youth services",
            ServiceType.SPORT_ARTS: "Sport and arts",
            ServiceType.FAMILY_SUPPORT: "Family support",
            ServiceType.OTHER: "Other",
        }[self]


class ClosureOutcome(enum.StrEnum):
    SUPPORT_COMPLETED = "support_completed"
    REFERRED_ON = "referred_on"
    SIGNPOSTED = "signposted"
    DISENGAGED = "disengaged"
    NO_CONTACT = "no_contact"
    DECLINED = "declined"
    NOT_APPROACHED = "not_approached"
    SAFEGUARDING_HANDOVER = "safeguarding_handover"
    MOVED_AWAY = "moved_away"

    @property
    def label(self) -> str:
        return {
            ClosureOutcome.SUPPORT_COMPLETED: "Support completed",
            ClosureOutcome.REFERRED_ON: "Referred on to another service",
            ClosureOutcome.SIGNPOSTED: "Signposted to services",
            ClosureOutcome.DISENGAGED: "Disengaged during support",
            ClosureOutcome.NO_CONTACT: "Could not be contacted",
            ClosureOutcome.DECLINED: "Declined support",
            ClosureOutcome.NOT_APPROACHED: "Not approached",
            ClosureOutcome.SAFEGUARDING_HANDOVER: "Handed over to safeguarding",
            ClosureOutcome.MOVED_AWAY: "Moved out of the area",
        }[self]


class FollowUpOutcome(enum.StrEnum):
    REACHED_NO_FURTHER_NEED = "reached_no_further_need"
    REACHED_NEEDS_SUPPORT = "reached_needs_support"
    NOT_REACHED = "not_reached"

    @property
    def label(self) -> str:
        return {
            FollowUpOutcome.REACHED_NO_FURTHER_NEED: "Reached: no further need",
            FollowUpOutcome.REACHED_NEEDS_SUPPORT: "Reached: needs more support",
            FollowUpOutcome.NOT_REACHED: "Not reached",
        }[self]


@dataclass(frozen=True, slots=True)
class Case:
    """A referral's casework state. Nothing identifiable: ids, codes, times."""

    referral_id: str
    site: str
    status: ReferralStatus
    created_at: datetime
    assigned_to: str | None = None
    claimed_at: datetime | None = None
    escalated_at: datetime | None = None
    support_tier: SupportTier | None = None
    support_started_on: date | None = None
    support_review_on: date | None = None
    closed_at: datetime | None = None
    closure_outcome: ClosureOutcome | None = None
    follow_up_due_on: date | None = None
    follow_up_done_at: datetime | None = None
    follow_up_outcome: FollowUpOutcome | None = None


@dataclass(frozen=True, slots=True)
class CaseRefusal:
    """What stops the action, by form field ("action" when it is not one field's fault)."""

    problems: Mapping[str, str]

    @property
    def message(self) -> str:
        return " ".join(self.problems.values())


def _refuse(message: str, field: str = "action") -> CaseRefusal:
    return CaseRefusal({field: message})


# -- who may act -------------------------------------------------------------------------------


def may_see(user: StaffUser, site: str) -> bool:
    """Whether the referral exists at all for this user (otherwise: not found)."""
    return user.active and user.works_queue and user.covers(site)


def may_act(user: StaffUser, case: Case) -> CaseRefusal | None:
    """None when `user` may record casework on `case`, else why not."""
    if not may_see(user, case.site):
        return _refuse("You do not work for this referral's site.")
    if case.status in TERMINAL_STATUSES:
        return _refuse("This referral is closed; nothing more can be recorded on it.")
    if user.assigns or case.assigned_to == user.id:
        return None
    if case.assigned_to is None:
        return _refuse("Claim this referral before recording anything on it.")
    return _refuse("This referral is claimed by another worker. Ask your team lead to reassign it.")


def claim(case: Case, user: StaffUser, *, now: datetime) -> Case | CaseRefusal:
    if not may_see(user, case.site):
        return _refuse("You do not work for this referral's site.")
    if case.status in TERMINAL_STATUSES:
        return _refuse("This referral is closed and cannot be claimed.")
    if case.assigned_to == user.id:
        return case
    if case.assigned_to is not None:
        return _refuse(
            "Someone else has already claimed this referral. Ask your team lead to reassign "
            "it if you are taking it over."
        )
    return replace(
        case,
        assigned_to=user.id,
        claimed_at=now,
        status=ReferralStatus.CLAIMED if case.status is ReferralStatus.NEW else case.status,
    )


def release(case: Case, user: StaffUser) -> Case | CaseRefusal:
    """Hand a claimed referral back to the queue before anyone recorded an outcome."""
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    if case.status is not ReferralStatus.CLAIMED:
        return _refuse("Only a claimed referral with no consent outcome can go back to the queue.")
    return replace(case, assigned_to=None, claimed_at=None, status=ReferralStatus.NEW)


def assign(
    case: Case, by: StaffUser, assignee: StaffUser | None, *, now: datetime
) -> Case | CaseRefusal:
    if not may_see(by, case.site):
        return _refuse("You do not work for this referral's site.")
    if not by.assigns:
        return _refuse("Only a team lead can assign referrals.")
    if case.status in TERMINAL_STATUSES:
        return _refuse("This referral is closed and cannot be assigned.")
    if assignee is None:
        return _refuse("Choose who to assign the referral to.", "assignee")
    if not may_see(assignee, case.site):
        return _refuse("Choose a youth worker or team lead of this referral's site.", "assignee")
    if case.assigned_to == assignee.id:
        return case
    return replace(
        case,
        assigned_to=assignee.id,
        claimed_at=now,
        status=ReferralStatus.CLAIMED if case.status is ReferralStatus.NEW else case.status,
    )


# -- consent outcome ---------------------------------------------------------------------------
# (recorded, with the referral's new status, by `services.sharing`: consent's own rules)


def may_record_consent(case: Case, user: StaffUser) -> CaseRefusal | None:
    """A consent outcome may be recorded by the assigned worker, a team lead, or anyone of
    the site on an unclaimed referral (which claims it for them)."""
    if not may_see(user, case.site):
        return _refuse("You do not work for this referral's site.")
    if case.assigned_to is None and case.status not in TERMINAL_STATUSES:
        return None
    return may_act(user, case)


# -- contact, support, onward referrals, notes --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactAttempt:
    referral_id: str
    at: datetime
    method: ContactMethod
    outcome: ContactOutcome
    recorded_by: str


@dataclass(frozen=True, slots=True)
class OnwardReferral:
    referral_id: str
    kind: OnwardKind
    service_type: ServiceType
    on: date
    recorded_by: str


def check_contact(
    case: Case,
    user: StaffUser,
    *,
    at: datetime | None,
    method: str,
    outcome: str,
    now: datetime,
) -> ContactAttempt | CaseRefusal:
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    if case.status not in CONTACT_STATUSES:
        return _refuse(
            "Record the young person's consent (or a safeguarding override) before logging "
            "contact attempts."
        )
    problems: dict[str, str] = {}
    if at is None:
        problems["at"] = "Enter the date and time of the contact attempt."
    elif at > now + CLOCK_SKEW:
        problems["at"] = "The contact attempt cannot be in the future."
    elif at < case.created_at - timedelta(days=1):
        problems["at"] = "The contact attempt cannot be before the referral was made."
    chosen_method = _member(ContactMethod, method)
    if chosen_method is None:
        problems["method"] = "Choose face to face or phone."
    chosen_outcome = _member(ContactOutcome, outcome)
    if chosen_outcome is None:
        problems["outcome"] = "Choose what happened."
    if problems or at is None or chosen_method is None or chosen_outcome is None:
        return CaseRefusal(problems)
    return ContactAttempt(case.referral_id, at, chosen_method, chosen_outcome, user.id)


def start_support(
    case: Case, user: StaffUser, *, tier: str, start_on: date | None, today: date
) -> Case | CaseRefusal:
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    if case.status not in CONTACT_STATUSES:
        return _refuse("Support starts after consent is given or a safeguarding override.")
    problems: dict[str, str] = {}
    chosen = _member(SupportTier, tier)
    if chosen is None:
        problems["tier"] = "Choose short (about 4 weeks) or long (up to 12 weeks) support."
    if start_on is None:
        problems["start_on"] = "Enter the date support starts."
    elif start_on > today + timedelta(days=28):
        problems["start_on"] = "Support must start within four weeks from today."
    elif start_on < case.created_at.date() - timedelta(days=1):
        problems["start_on"] = "Support cannot start before the referral was made."
    if problems or chosen is None or start_on is None:
        return CaseRefusal(problems)
    return replace(
        case,
        status=ReferralStatus.IN_SUPPORT,
        support_tier=chosen,
        support_started_on=start_on,
        support_review_on=start_on + timedelta(weeks=chosen.weeks),
    )


def check_onward(
    case: Case, user: StaffUser, *, kind: str, service_type: str, on: date | None, today: date
) -> OnwardReferral | CaseRefusal:
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    if case.status is ReferralStatus.NEW:
        return _refuse("Claim this referral before recording anything on it.")
    problems: dict[str, str] = {}
    chosen_kind = _member(OnwardKind, kind)
    if chosen_kind is None:
        problems["kind"] = "Choose whether you referred on or signposted."
    chosen_service = _member(ServiceType, service_type)
    if chosen_service is None:
        problems["service_type"] = "Choose the type of service."
    if on is None:
        problems["on"] = "Enter the date."
    elif on > today + timedelta(days=1):
        problems["on"] = "The date cannot be in the future."
    if problems or chosen_kind is None or chosen_service is None or on is None:
        return CaseRefusal(problems)
    return OnwardReferral(case.referral_id, chosen_kind, chosen_service, on, user.id)


def check_note(case: Case, user: StaffUser, text: str) -> str | CaseRefusal:
    """The note to store (stripped), or why not."""
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    body = text.strip()
    if not body:
        return _refuse("Write the note before saving it.", "note")
    if len(body) > MAX_NOTE_LENGTH:
        return _refuse(f"Keep a note under {MAX_NOTE_LENGTH} characters; split it.", "note")
    return body


# -- closure and follow-up ---------------------------------------------------------------------


def close(
    case: Case, user: StaffUser, *, outcome: str, now: datetime, today: date
) -> Case | CaseRefusal:
    refusal = may_act(user, case)
    if refusal is not None:
        return refusal
    chosen = _member(ClosureOutcome, outcome)
    if chosen is None:
        return _refuse("Choose the outcome of the referral before closing it.", "outcome")
    follow_up = add_months(today, FOLLOW_UP_MONTHS) if case.status in CONTACT_STATUSES else None
    return replace(
        case,
        status=ReferralStatus.CLOSED,
        closed_at=now,
        closure_outcome=chosen,
        follow_up_due_on=follow_up,
    )


def record_follow_up(
    case: Case, user: StaffUser, *, outcome: str, now: datetime
) -> Case | CaseRefusal:
    if not may_see(user, case.site):
        return _refuse("You do not work for this referral's site.")
    if case.follow_up_due_on is None or case.status is not ReferralStatus.CLOSED:
        return _refuse("This referral has no 6-month follow-up to record.")
    if case.follow_up_done_at is not None:
        return _refuse("The follow-up is already recorded.")
    if not (user.assigns or case.assigned_to == user.id):
        return _refuse("The follow-up is recorded by the assigned worker or a team lead.")
    chosen = _member(FollowUpOutcome, outcome)
    if chosen is None:
        return _refuse("Choose the outcome of the follow-up.", "outcome")
    return replace(case, follow_up_done_at=now, follow_up_outcome=chosen)


def reopen(
    case: Case, user: StaffUser, *, last_consent: ConsentOutcome | None
) -> Case | CaseRefusal:
    """A team lead takes a closed referral back into casework: it returns to where the
    approach left it (`last_consent`, the latest consent outcome recorded), its closure and
    the follow-up it set are cleared. A recorded follow-up ends the case for good."""
    if not may_see(user, case.site):
        return _refuse("You do not work for this referral's site.")
    if not user.assigns:
        return _refuse("Only a team lead can reopen a closed referral.")
    if case.status is not ReferralStatus.CLOSED:
        return _refuse("Only a closed referral can be reopened.")
    if case.follow_up_done_at is not None:
        return _refuse(
            "The six-month follow-up is recorded, so this referral stays closed. Make a new "
            "manual referral for new work."
        )
    return replace(
        case,
        status=_status_before_closing(case, last_consent),
        closed_at=None,
        closure_outcome=None,
        follow_up_due_on=None,
    )


def _status_before_closing(case: Case, last_consent: ConsentOutcome | None) -> ReferralStatus:
    if last_consent in (ConsentOutcome.GIVEN, ConsentOutcome.SAFEGUARDING_OVERRIDE):
        return ReferralStatus.IN_SUPPORT if case.support_tier else ReferralStatus.CONSENTED
    if last_consent is not None:
        return {
            ConsentOutcome.DECLINED: ReferralStatus.DECLINED,
            ConsentOutcome.NOT_APPROACHED: ReferralStatus.NOT_APPROACHED,
            ConsentOutcome.WITHDRAWN: ReferralStatus.WITHDRAWN,
        }[last_consent]
    return ReferralStatus.CLAIMED if case.assigned_to else ReferralStatus.NEW


def follow_up_pending(case: Case) -> bool:
    """Closed with a follow-up set and not yet recorded (it may be recorded early)."""
    return (
        case.status is ReferralStatus.CLOSED
        and case.follow_up_due_on is not None
        and case.follow_up_done_at is None
    )


def follow_up_due(case: Case, *, today: date, within: timedelta = timedelta(days=14)) -> bool:
    """Closed, follow-up not recorded, and due by `today + within`."""
    return (
        follow_up_pending(case)
        and case.follow_up_due_on is not None
        and case.follow_up_due_on <= today + within
    )


# -- escalation --------------------------------------------------------------------------------


def escalation_cutoff(now: datetime, after: timedelta) -> datetime:
    """Referrals created before this moment and still unclaimed are escalated."""
    return now - after


def is_escalated(case: Case, *, now: datetime, after: timedelta) -> bool:
    """Untouched (new, nobody claimed it) for `after` or longer."""
    return (
        case.status is ReferralStatus.NEW
        and case.assigned_to is None
        and (case.escalated_at is not None or now - case.created_at >= after)
    )


def escalation_due(case: Case, *, now: datetime, after: timedelta) -> bool:
    """Escalated by the clock but not yet marked (so the team lead has not been told)."""
    return case.escalated_at is None and is_escalated(case, now=now, after=after)


# -- helpers -----------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, or the month's last day if it is shorter
    (31 August + 6 months = 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _member(kind: type[E], value: str) -> E | None:
    try:
        return kind(value)
    except ValueError:
        return None
