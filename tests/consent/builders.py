"""Builders for consent tests: synthetic referrals, actors and consent histories.

Sites, user ids and referral ids are invented; no test here holds identifiable data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from consent.policy import Actor, ReferralView, Role
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentProposal,
    ConsentRecord,
    NotApproachedReason,
    Refusal,
    record_consent,
)

T0 = datetime(2025, 3, 14, 22, 30, tzinfo=UTC)  # a Friday night in ED
SITE = "SITE-A"
OTHER_SITE = "SITE-B"
REFERRAL = "ref-0001"
WORKER = "yw-ash"
OTHER_WORKER = "yw-birch"


def proposal(outcome: ConsentOutcome, **fields: Any) -> ConsentProposal:
    fields.setdefault("referral_id", REFERRAL)
    fields.setdefault("recorded_by", WORKER)
    return ConsentProposal(outcome=outcome, **fields)


def given_by_young_person(age: int = 17, **fields: Any) -> ConsentProposal:
    return proposal(
        ConsentOutcome.GIVEN,
        giver=ConsentGiver.YOUNG_PERSON_16_PLUS,
        young_person_age=age,
        **fields,
    )


def given_by_gillick_competent(age: int = 14, **fields: Any) -> ConsentProposal:
    fields.setdefault(
        "gillick_assessment",
        "Assessed by the youth worker with the ED nurse: understands what will be shared "
        "and why, and can weigh it up.",
    )
    return proposal(
        ConsentOutcome.GIVEN,
        giver=ConsentGiver.GILLICK_COMPETENT_UNDER_16,
        young_person_age=age,
        **fields,
    )


def given_by_parent(age: int = 12, **fields: Any) -> ConsentProposal:
    return proposal(
        ConsentOutcome.GIVEN, giver=ConsentGiver.PARENT_GUARDIAN, young_person_age=age, **fields
    )


def declined(**fields: Any) -> ConsentProposal:
    return proposal(ConsentOutcome.DECLINED, **fields)


def withdrawn(**fields: Any) -> ConsentProposal:
    return proposal(ConsentOutcome.WITHDRAWN, **fields)


def not_approached(
    reason: NotApproachedReason = NotApproachedReason.DISCHARGED_BEFORE_APPROACH, **fields: Any
) -> ConsentProposal:
    return proposal(ConsentOutcome.NOT_APPROACHED, not_approached_reason=reason, **fields)


def override(**fields: Any) -> ConsentProposal:
    fields.setdefault("override_reason", "Risk of further serious harm; sharing with the team.")
    fields.setdefault("authoriser_name", "Duty Safeguarding Lead")
    fields.setdefault("authoriser_role", "Named nurse for safeguarding children")
    fields.setdefault("override_at", T0)
    return proposal(ConsentOutcome.SAFEGUARDING_OVERRIDE, **fields)


def history_of(
    *proposals: ConsentProposal, start: datetime = T0, step: timedelta = timedelta(minutes=10)
) -> list[ConsentRecord]:
    """The history that recording `proposals` in turn, `step` apart, produces."""
    history: list[ConsentRecord] = []
    for n, p in enumerate(proposals):
        result = record_consent(history, p, now=start + n * step)
        if isinstance(result, Refusal):
            raise AssertionError(f"builder proposal refused: {result.message}")
        history.append(result)
    return history


def youth_worker(user_id: str = WORKER, *sites: str) -> Actor:
    return Actor(user_id=user_id, role=Role.YOUTH_WORKER, sites=frozenset(sites or (SITE,)))


def team_lead(user_id: str = "tl-cedar", *sites: str) -> Actor:
    return Actor(user_id=user_id, role=Role.TEAM_LEAD, sites=frozenset(sites or (SITE,)))


def programme_lead(user_id: str = "pl-dale") -> Actor:
    return Actor(user_id=user_id, role=Role.PROGRAMME_LEAD, sites=frozenset({SITE, OTHER_SITE}))


def administrator(user_id: str = "admin-elm") -> Actor:
    return Actor(user_id=user_id, role=Role.ADMINISTRATOR, sites=frozenset({SITE, OTHER_SITE}))


def referral(site: str = SITE, assigned_to: str | None = WORKER) -> ReferralView:
    return ReferralView(referral_id=REFERRAL, site=site, assigned_to=assigned_to)
