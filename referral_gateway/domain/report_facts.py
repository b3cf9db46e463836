"""What the monthly report needs to know about one attendance, and nothing more.

The storage layer builds one `ReportFacts` per attendance from the attendance, its referral,
consent history and queue records, by the rules of `domain.report_history`. Nothing here
identifies anyone: no name, NHS number, date of birth, address, phone or visit number;
re-attendance arrives as a yes/no computed through the keyed NHS-number hash.

The enums are the ones the rest of the gateway speaks: consent outcomes and givers from
`consent.records` (pure, like this module), contact methods from `domain.casework`, injury
categories from `domain.valuesets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consent.records import ConsentGiver, ConsentOutcome
from referral_gateway.domain.casework import ContactMethod
from referral_gateway.domain.valuesets import InjuryCategory

__all__ = [
    "AssaultDetail",
    "ConsentGiver",
    "ConsentOutcome",
    "ContactMethod",
    "InjuryCategory",
    "ReportFacts",
]


_APPROACH_OUTCOMES = frozenset(
    {ConsentOutcome.GIVEN, ConsentOutcome.DECLINED, ConsentOutcome.NOT_APPROACHED}
)


@dataclass(frozen=True, slots=True)
class AssaultDetail:
    """What the Cardiff Model (ISTV) extract adds about an assault. The gateway's feeds do
    not carry these today: every field is optional and the extract leaves blanks."""

    assault_at: datetime | None = None
    method: str | None = None  # weapon or method as recorded; the injury category otherwise
    location_type: str | None = None  # e.g. "street", "licensed premises", "home", "school"
    location_description: str | None = None  # free text: where exactly

    def __repr__(self) -> str:  # the description is free text
        return f"AssaultDetail(location_type={self.location_type!r})"


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """One attendance as the report sees it.

    `arrival` decides the month an attendance, its candidate referral and everything that
    follows from the approach count in (a month's *cohort*). Closures and follow-ups count
    in the month they happened (`closed_at`, `follow_up_done_at`). `reattended_violent_12m`
    says whether the same young person (by keyed NHS-number hash) came back to an ED with a
    violent injury within 12 months of `arrival`; the report reads it only for cohorts whose
    12 months are over.

    `consent_outcome` is the outcome of the approach: given, declined or not approached
    (None while nothing is recorded); never withdrawn or an override, which are not
    outcomes of an approach (`report_history.approach_of`). A later withdrawal does not
    undo that consent was given. `safeguarding_override` is True when an override was ever
    recorded.
    `approached_at` is when the youth worker first spoke to the young person.
    """

    site: str
    arrival: datetime
    age_at_arrival: int | None = None
    sex: str = "unknown"  # domain.attendance.Sex value
    screened: bool = True  # an ED attendance the detector looked at
    candidate_rule: str | None = None  # the detection rule that made it a candidate
    possible: bool = False  # a candidate on suspicion only ("?assault"): not definite
    injury_category: InjuryCategory | None = None
    approached_at: datetime | None = None
    consent_outcome: ConsentOutcome | None = None
    consent_giver: ConsentGiver | None = None
    not_approached_reason: str | None = None  # consent.records.NotApproachedReason value
    safeguarding_override: bool = False
    engaged: bool = False
    first_contact_method: ContactMethod | None = None
    signposted: bool = False
    onward_referrals: tuple[str, ...] = ()  # service types, e.g. "camhs", "substance_misuse"
    closed_at: datetime | None = None
    closed_outcome: str | None = None
    # onward referrals sent to services of the directory: (made at, service id, status now),
    # counted in the month each was made
    onward_tasks: tuple[tuple[datetime, str, str], ...] = ()
    follow_up_done_at: datetime | None = None  # the 6-month follow-up
    reattended_violent_12m: bool = False
    assault: bool = False  # an assault signal at any age (the ISTV extract); implied by a rule
    assault_detail: AssaultDetail | None = None

    def __post_init__(self) -> None:
        # no getattr by name: a year's report builds some 40,000 of these
        for moment in (self.arrival, self.approached_at, self.closed_at, self.follow_up_done_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("ReportFacts times must be timezone-aware")
        if self.consent_outcome is not None and self.consent_outcome not in _APPROACH_OUTCOMES:
            raise ValueError("ReportFacts.consent_outcome is given, declined or not approached")

    @property
    def is_candidate(self) -> bool:
        return self.screened and self.candidate_rule is not None

    @property
    def is_assault(self) -> bool:
        return self.assault or self.is_candidate

    def __repr__(self) -> str:
        return (
            f"ReportFacts(site={self.site!r}, candidate={self.is_candidate}, "
            f"outcome={self.consent_outcome.value if self.consent_outcome else None})"
        )
