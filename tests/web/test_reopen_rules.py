"""Reopening a closed referral, as pure rules: team leads only, back to where the approach
left it, never after the follow-up is recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from consent.policy import Role
from consent.records import ConsentOutcome
from referral_gateway.domain.casework import (
    CaseRefusal,
    ClosureOutcome,
    FollowUpOutcome,
    SupportTier,
    reopen,
)
from referral_gateway.domain.referral import ReferralStatus as S
from tests.web.builders import SITE_B, T0, case, user

LEAD = user(Role.TEAM_LEAD, id="u-lead")
CLOSED = case(
    S.CLOSED,
    assigned_to="u-ash",
    closed_at=T0,
    closure_outcome=ClosureOutcome.SUPPORT_COMPLETED,
    follow_up_due_on=date(2026, 9, 14),
)


def test_a_team_lead_reopens_a_consented_case_into_casework_without_its_closure():
    reopened = reopen(CLOSED, LEAD, last_consent=ConsentOutcome.GIVEN)
    assert not isinstance(reopened, CaseRefusal)
    assert reopened.status is S.CONSENTED
    assert reopened.closed_at is None and reopened.closure_outcome is None
    assert reopened.follow_up_due_on is None and reopened.assigned_to == "u-ash"


def test_a_case_that_was_in_support_goes_back_into_support():
    supported = replace(CLOSED, support_tier=SupportTier.SHORT)
    reopened = reopen(supported, LEAD, last_consent=ConsentOutcome.SAFEGUARDING_OVERRIDE)
    assert not isinstance(reopened, CaseRefusal) and reopened.status is S.IN_SUPPORT


def test_without_consent_it_goes_back_to_what_the_approach_recorded_or_to_claimed():
    declined = reopen(CLOSED, LEAD, last_consent=ConsentOutcome.DECLINED)
    untouched = reopen(CLOSED, LEAD, last_consent=None)
    assert not isinstance(declined, CaseRefusal) and declined.status is S.DECLINED
    assert not isinstance(untouched, CaseRefusal) and untouched.status is S.CLAIMED


def test_a_youth_worker_another_sites_lead_or_an_open_case_are_refused():
    assert isinstance(reopen(CLOSED, user(), last_consent=None), CaseRefusal)
    far_lead = user(Role.TEAM_LEAD, id="u-far", sites=(SITE_B,))
    assert isinstance(reopen(CLOSED, far_lead, last_consent=None), CaseRefusal)
    assert isinstance(reopen(case(S.CONSENTED), LEAD, last_consent=None), CaseRefusal)


def test_a_recorded_follow_up_ends_the_case_for_good():
    done = replace(CLOSED, follow_up_done_at=T0, follow_up_outcome=FollowUpOutcome.NOT_REACHED)
    refusal = reopen(done, LEAD, last_consent=ConsentOutcome.GIVEN)
    assert isinstance(refusal, CaseRefusal) and "follow-up is recorded" in refusal.message
