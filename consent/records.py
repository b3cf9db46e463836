"""The consent model: what a youth worker records after approaching a young person.

A referral's consent history is a sequence of `ConsentRecord`s numbered 1, 2, 3... Nothing
is ever changed or deleted: a new record supersedes the one before it, and the latest record
in force decides whether identifiable data may be shared (`current_basis`).

Which outcome may follow which:

    latest record          may be followed by
    (none)                 given, declined, not_approached, safeguarding_override
    not_approached         given, declined, not_approached, safeguarding_override
    declined / withdrawn   given, declined, safeguarding_override
    given                  given (e.g. the young person turns 16 and consents themselves),
                           withdrawn
    safeguarding_override  given, safeguarding_override (renewed), withdrawn

So a basis for sharing (given consent or a safeguarding override) only ends by an explicit
withdrawal, "not approached" cannot follow an approach or an override, and an override is
refused while consent is already given because it is not needed.

Who may give consent:
- `young_person_16_plus`: the young person, aged 16 or over (presumed to have capacity).
- `gillick_competent_under_16`: the young person, under 16, with a note of the Gillick
  competence assessment (who assessed, what they found).
- `parent_guardian`: for a young person under 18. From 18 nobody consents for them.

A proposal a youth worker can correct comes back as a `Refusal` whose `problems` map each
form field to a sentence saying what to do. Fields that do not belong to the outcome (an
override reason on a "declined" record, say, or a not-approached detail when the reason is
not "other") are not stored: free text is kept only where a rule asks for it. Exceptions
are kept for programming errors: naive datetimes, empty user ids, a history that breaks its
invariants.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from consent.errors import ConsentHistoryError, InvalidInputError, require_aware

MAX_AGE = 120


class ConsentOutcome(enum.StrEnum):
    GIVEN = "given"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    NOT_APPROACHED = "not_approached"
    SAFEGUARDING_OVERRIDE = "safeguarding_override"


class ConsentGiver(enum.StrEnum):
    YOUNG_PERSON_16_PLUS = "young_person_16_plus"
    GILLICK_COMPETENT_UNDER_16 = "gillick_competent_under_16"
    PARENT_GUARDIAN = "parent_guardian"


class NotApproachedReason(enum.StrEnum):
    DISCHARGED_BEFORE_APPROACH = "discharged_before_approach"
    TOO_UNWELL = "too_unwell"
    IN_POLICE_CUSTODY = "in_police_custody"
    CLINICAL_TEAM_ADVISED_AGAINST = "clinical_team_advised_against"
    OTHER = "other"  # needs a free-text detail


class BasisKind(enum.StrEnum):
    """Why identifiable data may be shared right now."""

    CONSENT_GIVEN = "consent_given"
    SAFEGUARDING_OVERRIDE = "safeguarding_override"


@dataclass(frozen=True, slots=True)
class ConsentProposal:
    """What the youth worker submitted: the outcome and the fields that go with it."""

    referral_id: str
    outcome: ConsentOutcome
    recorded_by: str  # user id of the youth worker
    giver: ConsentGiver | None = None  # required for given; optional for declined/withdrawn
    young_person_age: int | None = None  # required for given
    gillick_assessment: str | None = None
    not_approached_reason: NotApproachedReason | None = None
    not_approached_detail: str | None = None
    override_reason: str | None = None
    authoriser_name: str | None = None
    authoriser_role: str | None = None
    override_at: datetime | None = None  # when the override was authorised
    # given consent covers sending the referral to services outside the programme, or the
    # override's authoriser decided it must go to one (kept for given and override only)
    onward_sharing: bool = False

    def __repr__(self) -> str:  # free text may describe the young person
        return f"ConsentProposal(referral_id={self.referral_id!r}, outcome={self.outcome.value})"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One entry in a referral's consent history. Never updated: superseded."""

    referral_id: str
    seq: int  # 1 for a referral's first record, then 2, 3...
    outcome: ConsentOutcome
    recorded_by: str
    recorded_at: datetime
    giver: ConsentGiver | None = None
    young_person_age: int | None = None
    gillick_assessment: str | None = None
    not_approached_reason: NotApproachedReason | None = None
    not_approached_detail: str | None = None
    override_reason: str | None = None
    authoriser_name: str | None = None
    authoriser_role: str | None = None
    override_at: datetime | None = None
    supersedes: int | None = None  # seq of the record this one follows
    onward_sharing: bool = False  # see ConsentProposal.onward_sharing

    def __repr__(self) -> str:  # free text may describe the young person
        return (
            f"ConsentRecord(referral_id={self.referral_id!r}, seq={self.seq}, "
            f"outcome={self.outcome.value})"
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A proposal that cannot be recorded as it stands. `problems` maps a proposal field (or
    "outcome" when the outcome itself cannot follow the history) to what to do about it."""

    problems: Mapping[str, str]

    @property
    def message(self) -> str:
        return " ".join(self.problems.values())


@dataclass(frozen=True, slots=True)
class SharingBasis:
    kind: BasisKind
    record: ConsentRecord  # the given-consent or override record in force

    @property
    def since(self) -> datetime:
        return self.record.recorded_at


# -- recording ---------------------------------------------------------------------------------


def record_consent(
    history: Sequence[ConsentRecord], proposal: ConsentProposal, *, now: datetime
) -> ConsentRecord | Refusal:
    """The record to append to `history`, or a `Refusal` saying what to correct.

    `history` is the referral's records so far, in order. The caller stores the new record;
    nothing in `history` changes.
    """
    require_aware(now, "now")
    if not proposal.referral_id.strip():
        raise InvalidInputError("A consent proposal needs a referral id.")
    if not proposal.recorded_by.strip():
        raise InvalidInputError("A consent proposal needs the id of the user recording it.")
    if proposal.override_at is not None:
        require_aware(proposal.override_at, "override_at")
    check_history(history, referral_id=proposal.referral_id)
    latest = history[-1] if history else None
    if latest is not None and now < latest.recorded_at:
        raise ConsentHistoryError(
            f"The clock reads earlier than consent record {latest.seq} of referral "
            f"{proposal.referral_id!r}; check the server clock."
        )

    transition = _transition_problem(latest, proposal.outcome)
    if transition is not None:
        return Refusal({"outcome": transition})
    problems = _field_problems(proposal, now)
    if problems:
        return Refusal(problems)
    return _record(proposal, seq=len(history) + 1, now=now)


def check_history(history: Sequence[ConsentRecord], *, referral_id: str | None = None) -> None:
    """Raise `ConsentHistoryError` unless `history` is one referral's records numbered 1..n,
    each superseding the one before, with time never running backwards."""
    if referral_id is None and history:
        referral_id = history[0].referral_id
    previous: ConsentRecord | None = None
    for expected_seq, record in enumerate(history, start=1):
        where = f"consent record {record.seq} of referral {record.referral_id!r}"
        if record.referral_id != referral_id:
            raise ConsentHistoryError(f"{where} is in the history of referral {referral_id!r}.")
        if record.seq != expected_seq:
            raise ConsentHistoryError(f"{where} is at position {expected_seq}.")
        if record.supersedes != (previous.seq if previous else None):
            raise ConsentHistoryError(f"{where} does not supersede the record before it.")
        require_aware(record.recorded_at, "recorded_at")
        if previous is not None and record.recorded_at < previous.recorded_at:
            raise ConsentHistoryError(f"{where} was recorded before the record it supersedes.")
        previous = record


# -- reading -----------------------------------------------------------------------------------


def latest_record(
    history: Sequence[ConsentRecord], *, at: datetime | None = None
) -> ConsentRecord | None:
    """The record in force at `at` (default: the latest), or None before any record."""
    check_history(history)
    if at is None:
        return history[-1] if history else None
    require_aware(at, "at")
    in_force = None
    for record in history:
        if record.recorded_at > at:
            break
        in_force = record
    return in_force


def current_basis(
    history: Sequence[ConsentRecord], *, at: datetime | None = None
) -> SharingBasis | None:
    """The basis for sharing identifiable data at `at` (default: now, i.e. the latest record):
    given consent, an active safeguarding override, or None. Declined, not approached and
    withdrawn all mean None, so a withdrawal locks identifiable data again."""
    record = latest_record(history, at=at)
    if record is None:
        return None
    if record.outcome is ConsentOutcome.GIVEN:
        return SharingBasis(BasisKind.CONSENT_GIVEN, record)
    if record.outcome is ConsentOutcome.SAFEGUARDING_OVERRIDE:
        return SharingBasis(BasisKind.SAFEGUARDING_OVERRIDE, record)
    return None


# -- rules -------------------------------------------------------------------------------------

_ALLOWED_AFTER: dict[ConsentOutcome | None, frozenset[ConsentOutcome]] = {
    None: frozenset(
        {
            ConsentOutcome.GIVEN,
            ConsentOutcome.DECLINED,
            ConsentOutcome.NOT_APPROACHED,
            ConsentOutcome.SAFEGUARDING_OVERRIDE,
        }
    ),
    ConsentOutcome.GIVEN: frozenset({ConsentOutcome.GIVEN, ConsentOutcome.WITHDRAWN}),
    ConsentOutcome.SAFEGUARDING_OVERRIDE: frozenset(
        {ConsentOutcome.GIVEN, ConsentOutcome.SAFEGUARDING_OVERRIDE, ConsentOutcome.WITHDRAWN}
    ),
    ConsentOutcome.DECLINED: frozenset(
        {ConsentOutcome.GIVEN, ConsentOutcome.DECLINED, ConsentOutcome.SAFEGUARDING_OVERRIDE}
    ),
}
_ALLOWED_AFTER[ConsentOutcome.NOT_APPROACHED] = _ALLOWED_AFTER[None]
_ALLOWED_AFTER[ConsentOutcome.WITHDRAWN] = _ALLOWED_AFTER[ConsentOutcome.DECLINED]


def _transition_problem(latest: ConsentRecord | None, outcome: ConsentOutcome) -> str | None:
    previous = latest.outcome if latest else None
    if outcome in _ALLOWED_AFTER[previous]:
        return None
    if outcome is ConsentOutcome.WITHDRAWN:
        return (
            "Consent can be withdrawn only after it was given or a safeguarding override "
            "was recorded."
        )
    if previous is ConsentOutcome.GIVEN:
        if outcome is ConsentOutcome.SAFEGUARDING_OVERRIDE:
            return "Consent is already given, so no safeguarding override is needed."
        return (
            "Consent is on record. If the young person has changed their mind, record a withdrawal."
        )
    if previous is ConsentOutcome.SAFEGUARDING_OVERRIDE:
        return "A safeguarding override is in place. To end it, record a withdrawal."
    # only "not approached" after an approach is left
    return "The young person has already been approached. Record their decision instead."


def _field_problems(proposal: ConsentProposal, now: datetime) -> dict[str, str]:
    problems: dict[str, str] = {}
    outcome = proposal.outcome
    if outcome is ConsentOutcome.GIVEN:
        _check_giver(proposal, problems)
    elif outcome is ConsentOutcome.NOT_APPROACHED:
        if proposal.not_approached_reason is None:
            problems["not_approached_reason"] = "Choose why the young person was not approached."
        elif proposal.not_approached_reason is NotApproachedReason.OTHER and not _text(
            proposal.not_approached_detail
        ):
            problems["not_approached_detail"] = "Say why the young person was not approached."
    elif outcome is ConsentOutcome.SAFEGUARDING_OVERRIDE:
        if not _text(proposal.override_reason):
            problems["override_reason"] = (
                "Enter the safeguarding reason for sharing without consent."
            )
        if not _text(proposal.authoriser_name):
            problems["authoriser_name"] = (
                "Enter the name of the person who authorised the override."
            )
        if not _text(proposal.authoriser_role):
            problems["authoriser_role"] = (
                "Enter the role of the person who authorised the override."
            )
        if proposal.override_at is None:
            problems["override_at"] = "Enter when the override was authorised."
        elif proposal.override_at > now:
            problems["override_at"] = (
                "The time the override was authorised cannot be in the future."
            )
    return problems


def _check_giver(proposal: ConsentProposal, problems: dict[str, str]) -> None:
    age = proposal.young_person_age
    if age is None:
        problems["young_person_age"] = "Enter the young person's age in years."
    elif not 0 <= age <= MAX_AGE:
        problems["young_person_age"] = f"Enter an age in years between 0 and {MAX_AGE}."
        age = None
    giver = proposal.giver
    if giver is None:
        problems["giver"] = "Choose who gave consent."
    elif giver is ConsentGiver.YOUNG_PERSON_16_PLUS and age is not None and age < 16:
        problems["giver"] = (
            "Under 16, a young person can consent only if assessed as Gillick competent. "
            "Choose that option, or record a parent or guardian's consent."
        )
    elif giver is ConsentGiver.GILLICK_COMPETENT_UNDER_16 and age is not None and age >= 16:
        problems["giver"] = (
            "At 16 or over the young person consents for themselves. "
            "Choose 'young person aged 16 or over'."
        )
    elif giver is ConsentGiver.PARENT_GUARDIAN and age is not None and age >= 18:
        problems["giver"] = (
            "A parent or guardian cannot consent for someone aged 18 or over. "
            "Ask the young person for their consent."
        )
    if giver is ConsentGiver.GILLICK_COMPETENT_UNDER_16 and not _text(proposal.gillick_assessment):
        problems["gillick_assessment"] = (
            "Describe the Gillick competence assessment: who assessed the young person "
            "and what they found."
        )


def _record(proposal: ConsentProposal, *, seq: int, now: datetime) -> ConsentRecord:
    """The new record, keeping only the fields that belong to its outcome."""
    outcome = proposal.outcome
    record = ConsentRecord(
        referral_id=proposal.referral_id,
        seq=seq,
        outcome=outcome,
        recorded_by=proposal.recorded_by,
        recorded_at=now,
        supersedes=seq - 1 if seq > 1 else None,
    )
    if outcome is ConsentOutcome.GIVEN:
        gillick = proposal.giver is ConsentGiver.GILLICK_COMPETENT_UNDER_16
        return replace(
            record,
            giver=proposal.giver,
            young_person_age=proposal.young_person_age,
            gillick_assessment=_text(proposal.gillick_assessment) if gillick else None,
            onward_sharing=proposal.onward_sharing,
        )
    if outcome in (ConsentOutcome.DECLINED, ConsentOutcome.WITHDRAWN):
        return replace(record, giver=proposal.giver)
    if outcome is ConsentOutcome.NOT_APPROACHED:
        other = proposal.not_approached_reason is NotApproachedReason.OTHER
        return replace(
            record,
            not_approached_reason=proposal.not_approached_reason,
            not_approached_detail=_text(proposal.not_approached_detail) if other else None,
        )
    return replace(
        record,
        override_reason=_text(proposal.override_reason),
        authoriser_name=_text(proposal.authoriser_name),
        authoriser_role=_text(proposal.authoriser_role),
        override_at=proposal.override_at,
        onward_sharing=proposal.onward_sharing,
    )


def _text(value: str | None) -> str | None:
    """The stripped text, or None when there is none."""
    if value is None:
        return None
    return value.strip() or None
