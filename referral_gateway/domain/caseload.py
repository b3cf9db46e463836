"""A youth worker's caseload: which of their cases are still theirs to act on, what each
needs next and by when, and in what order they are worked.

- A case is in its worker's caseload from the claim until it is closed, and again while its
  6-month follow-up is due (within `FOLLOW_UP_NOTICE` of the due day) and not recorded. A
  recorded consent outcome does not take it out: consented, declined, not approached and
  withdrawn cases still need contact, support or closing.
- The caseload is worked soonest-due first; a case with no due day of its own sorts by the
  day it was claimed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from referral_gateway.domain.casework import Case, follow_up_due
from referral_gateway.domain.referral import ReferralStatus

FOLLOW_UP_NOTICE = timedelta(days=14)

S = ReferralStatus
# statuses a claimed case holds until it is closed (or voided by the ED)
CASELOAD_STATUSES = frozenset(
    {S.CLAIMED, S.CONSENTED, S.IN_SUPPORT, S.DECLINED, S.NOT_APPROACHED, S.WITHDRAWN}
)


class NextStep(enum.StrEnum):
    APPROACH = "approach"
    CONTACT = "contact"
    REVIEW_SUPPORT = "review_support"
    CLOSE = "close"
    FOLLOW_UP = "follow_up"

    @property
    def label(self) -> str:
        return {
            NextStep.APPROACH: "Approach and record the outcome",
            NextStep.CONTACT: "Make contact and agree support",
            NextStep.REVIEW_SUPPORT: "Review support",
            NextStep.CLOSE: "Close the referral",
            NextStep.FOLLOW_UP: "Do the 6-month follow-up",
        }[self]

    @property
    def date_label(self) -> str:
        """What the date beside the step means."""
        if self in (NextStep.REVIEW_SUPPORT, NextStep.FOLLOW_UP):
            return "Due"
        return "Since"


@dataclass(frozen=True, slots=True)
class NextAction:
    step: NextStep
    on: date | None  # the due day (review, follow-up) or the day the case got here

    @property
    def label(self) -> str:
        return self.step.label


def in_caseload(case: Case, worker_id: str, *, today: date) -> bool:
    """The case is `worker_id`'s and still needs something from them."""
    if case.assigned_to != worker_id:
        return False
    return case.status in CASELOAD_STATUSES or follow_up_due(
        case, today=today, within=FOLLOW_UP_NOTICE
    )


def next_action(case: Case) -> NextAction:
    """What the case needs next, and the day that goes with it."""
    claimed = _day(case.claimed_at) or _day(case.created_at)
    if case.status is S.CLOSED:
        return NextAction(NextStep.FOLLOW_UP, case.follow_up_due_on)
    if case.status is S.IN_SUPPORT:
        return NextAction(NextStep.REVIEW_SUPPORT, case.support_review_on or claimed)
    if case.status is S.CONSENTED:
        return NextAction(NextStep.CONTACT, claimed)
    if case.status in (S.DECLINED, S.NOT_APPROACHED, S.WITHDRAWN):
        return NextAction(NextStep.CLOSE, claimed)
    return NextAction(NextStep.APPROACH, claimed)


def caseload_order(case: Case) -> tuple[date, datetime, str]:
    """Sort key: the soonest next-action day first, then the oldest case."""
    return (next_action(case).on or date.max, case.created_at, case.referral_id)


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment else None
