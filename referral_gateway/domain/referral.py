"""Referrals: what a candidate attendance becomes, and how it moves."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from referral_gateway.domain.attendance import Attendance, AttendanceStatus, EventKind


class ReferralStatus(enum.StrEnum):
    NEW = "new"  # detected, nobody has picked it up yet
    CLAIMED = "claimed"  # a youth worker is on their way
    CONSENTED = "consented"  # consent given or safeguarding override: identifiable data unlock
    DECLINED = "declined"
    NOT_APPROACHED = "not_approached"
    WITHDRAWN = "withdrawn"  # consent (or an override) withdrawn: identifiable data locked again
    IN_SUPPORT = "in_support"
    CLOSED = "closed"
    VOIDED = "voided"  # the arrival was cancelled or entered in error
    NOT_ASSAULT = "not_assault"  # a youth worker marked it not an assault (domain.dismissal)


OPEN_STATUSES = frozenset({ReferralStatus.NEW, ReferralStatus.CLAIMED})


class ReferralAction(enum.StrEnum):
    CREATE = "create"
    VOID = "void"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ReferralChange:
    action: ReferralAction
    reason: str


class ReferralUpdate(enum.StrEnum):
    """What an open queue page hears about a referral, with its id and nothing else: the
    page then fetches the cards its user may see."""

    NEW = "new"  # a new candidate
    DISCHARGED = "discharged"  # the young person left the department (A03, a discharge time)
    BACK_IN_DEPARTMENT = "back_in_department"  # A13 undid the discharge
    CANCELLED = "cancelled"  # the ED cancelled the arrival (A11); an open referral is voided
    MOVED = "moved"  # another ED area or bay
    ESCALATED = "escalated"  # nobody claimed it within the escalation time
    ONWARD_ACCEPTED = "onward_accepted"  # a service accepted the onward referral
    ONWARD_REJECTED = "onward_rejected"  # a service rejected the onward referral


@dataclass(frozen=True, slots=True)
class ReferralNews:
    """What the live queue hears after a commit: a referral's random id, its site (to know
    whose pages to tell) and one word. Nothing identifying."""

    referral_id: str
    site: str
    update: ReferralUpdate
    possible: bool = False  # a new candidate on suspicion only (alerts say "possible")


def referral_change(
    attendance: Attendance,
    event_kind: EventKind,
    is_candidate: bool,
    existing: ReferralStatus | None,
) -> ReferralChange:
    """What an event does to the attendance's referral.

    A candidate is created the first time detection says so (an A08 can do it late). A
    cancelled arrival voids a referral nobody has acted on yet; once a youth worker has
    recorded an outcome the referral is theirs to close. Later messages that lack the
    signal never void a candidate: the first signal was enough to approach.
    """
    if attendance.status is AttendanceStatus.CANCELLED or event_kind is EventKind.CANCEL_ARRIVAL:
        if existing in OPEN_STATUSES:
            return ReferralChange(ReferralAction.VOID, "arrival_cancelled")
        return ReferralChange(ReferralAction.NONE, "cancelled")
    if existing is None and is_candidate:
        return ReferralChange(ReferralAction.CREATE, "detected")
    return ReferralChange(ReferralAction.NONE, "unchanged")


def referral_update(
    before: Attendance, after: Attendance, action: ReferralAction
) -> ReferralUpdate | None:
    """What the youth workers must hear about an existing referral once a message changed
    its attendance from `before` to `after`, or None when nothing on its card changed."""
    cancelled = AttendanceStatus.CANCELLED
    if action is ReferralAction.VOID or (
        after.status is cancelled and before.status is not cancelled
    ):
        return ReferralUpdate.CANCELLED
    if after.status is not before.status:
        if after.status is AttendanceStatus.DISCHARGED:
            return ReferralUpdate.DISCHARGED
        return ReferralUpdate.BACK_IN_DEPARTMENT
    if after.location != before.location:
        return ReferralUpdate.MOVED
    return None
