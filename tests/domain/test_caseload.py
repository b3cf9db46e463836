"""A youth worker's caseload as pure rules: what is in it and what each case needs next."""

from __future__ import annotations

from datetime import date, timedelta

from referral_gateway.domain.caseload import NextStep, caseload_order, in_caseload, next_action
from referral_gateway.domain.referral import ReferralStatus as S
from tests.web.builders import T0, case

TODAY = T0.date()


def test_every_case_with_an_outcome_recorded_stays_in_its_workers_caseload():
    for status in (S.CLAIMED, S.CONSENTED, S.IN_SUPPORT, S.DECLINED, S.NOT_APPROACHED, S.WITHDRAWN):
        assert in_caseload(case(status, assigned_to="u-ash"), "u-ash", today=TODAY), status
    assert not in_caseload(case(S.CONSENTED, assigned_to="u-birch"), "u-ash", today=TODAY)
    assert not in_caseload(case(S.NEW), "u-ash", today=TODAY)
    assert not in_caseload(case(S.VOIDED, assigned_to="u-ash"), "u-ash", today=TODAY)


def test_a_closed_case_is_back_only_while_its_follow_up_is_due_and_not_done():
    due = case(S.CLOSED, assigned_to="u-ash", follow_up_due_on=TODAY + timedelta(days=14))
    later = case(S.CLOSED, assigned_to="u-ash", follow_up_due_on=TODAY + timedelta(days=15))
    done = case(S.CLOSED, assigned_to="u-ash", follow_up_due_on=TODAY, follow_up_done_at=T0)
    assert in_caseload(due, "u-ash", today=TODAY)
    assert not in_caseload(later, "u-ash", today=TODAY)
    assert not in_caseload(done, "u-ash", today=TODAY)
    assert next_action(due).step is NextStep.FOLLOW_UP
    assert next_action(due).on == TODAY + timedelta(days=14)


def test_the_next_action_follows_the_status_with_its_day():
    claimed_at = T0 - timedelta(days=2)
    review = date(2026, 4, 11)
    assert next_action(case(S.CLAIMED, claimed_at=claimed_at)).step is NextStep.APPROACH
    assert next_action(case(S.CLAIMED, claimed_at=claimed_at)).on == claimed_at.date()
    assert next_action(case(S.CONSENTED)).step is NextStep.CONTACT
    assert next_action(case(S.WITHDRAWN)).step is NextStep.CLOSE
    in_support = next_action(case(S.IN_SUPPORT, support_review_on=review))
    assert (in_support.step, in_support.on) == (NextStep.REVIEW_SUPPORT, review)
    assert in_support.step.date_label == "Due"


def test_the_soonest_due_is_worked_first():
    soon = case(S.IN_SUPPORT, referral_id="r-soon", support_review_on=TODAY)
    fresh = case(S.CLAIMED, referral_id="r-fresh", claimed_at=T0 + timedelta(days=1))
    old = case(S.CLAIMED, referral_id="r-old", claimed_at=T0 - timedelta(days=3))
    ordered = sorted([fresh, soon, old], key=caseload_order)
    assert [c.referral_id for c in ordered] == ["r-old", "r-soon", "r-fresh"]
