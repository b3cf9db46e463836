"""The casework rules, without a database: claiming, assigning, consent outcomes, contact,
support, onward referrals, closure, follow-up and escalation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from consent.policy import Role
from referral_gateway.domain.casework import (
    CaseRefusal,
    ClosureOutcome,
    ContactMethod,
    add_months,
    assign,
    check_contact,
    check_note,
    check_onward,
    claim,
    close,
    escalation_due,
    follow_up_due,
    is_escalated,
    may_record_consent,
    record_follow_up,
    release,
    start_support,
)
from referral_gateway.domain.referral import ReferralStatus as S
from tests.web.builders import SITE_A, SITE_B, T0, case, user

ASH = user(id="u-ash")
BIRCH = user(id="u-birch")
LEAD = user(Role.TEAM_LEAD, id="u-lead")
ELSEWHERE = user(id="u-far", sites=(SITE_B,))
PROGRAMME = user(Role.PROGRAMME_LEAD, id="u-prog")


def test_claiming_a_new_referral_puts_it_in_the_claimers_name():
    claimed = claim(case(), ASH, now=T0)
    assert not isinstance(claimed, CaseRefusal)
    assert (claimed.status, claimed.assigned_to, claimed.claimed_at) == (S.CLAIMED, "u-ash", T0)


def test_a_second_worker_cannot_take_over_a_claim():
    claimed = claim(case(), ASH, now=T0)
    refusal = claim(claimed, BIRCH, now=T0)  # type: ignore[arg-type]
    assert isinstance(refusal, CaseRefusal)
    assert "team lead" in refusal.message


def test_claiming_your_own_claim_again_changes_nothing():
    claimed = claim(case(), ASH, now=T0)
    assert claim(claimed, ASH, now=T0 + timedelta(minutes=5)) == claimed  # type: ignore[arg-type]


@pytest.mark.parametrize("who", [ELSEWHERE, PROGRAMME])
def test_only_caseworkers_of_the_site_can_claim(who):
    assert isinstance(claim(case(), who, now=T0), CaseRefusal)


def test_a_closed_referral_cannot_be_claimed():
    assert isinstance(claim(case(S.CLOSED), ASH, now=T0), CaseRefusal)


def test_release_hands_a_claimed_referral_back_before_any_outcome():
    claimed = claim(case(), ASH, now=T0)
    released = release(claimed, ASH)  # type: ignore[arg-type]
    assert not isinstance(released, CaseRefusal)
    assert (released.status, released.assigned_to) == (S.NEW, None)
    consented = case(S.CONSENTED, assigned_to="u-ash")
    assert isinstance(release(consented, ASH), CaseRefusal)


def test_team_lead_assigns_to_a_worker_of_the_site_and_can_reassign():
    assigned = assign(case(), LEAD, ASH, now=T0)
    assert not isinstance(assigned, CaseRefusal)
    assert (assigned.status, assigned.assigned_to) == (S.CLAIMED, "u-ash")
    reassigned = assign(assigned, LEAD, BIRCH, now=T0)
    assert not isinstance(reassigned, CaseRefusal)
    assert reassigned.assigned_to == "u-birch"


def test_youth_workers_cannot_assign_and_nobody_assigns_across_sites():
    assert isinstance(assign(case(), ASH, BIRCH, now=T0), CaseRefusal)
    refusal = assign(case(), LEAD, ELSEWHERE, now=T0)
    assert isinstance(refusal, CaseRefusal) and "assignee" in refusal.problems
    assert isinstance(assign(case(), LEAD, None, now=T0), CaseRefusal)


def test_anyone_of_the_site_may_record_the_approach_on_an_unclaimed_referral():
    assert may_record_consent(case(), BIRCH) is None
    assert isinstance(may_record_consent(case(), ELSEWHERE), CaseRefusal)


def test_someone_elses_claim_stops_a_youth_worker_recording_consent_but_not_the_team_lead():
    theirs = case(S.CLAIMED, assigned_to="u-ash")
    assert isinstance(may_record_consent(theirs, BIRCH), CaseRefusal)
    assert may_record_consent(theirs, LEAD) is None


def test_contacts_and_support_are_not_for_withdrawn_consent():
    withdrawn = case(S.WITHDRAWN, assigned_to="u-ash")
    assert isinstance(
        check_contact(withdrawn, ASH, at=T0, method="phone", outcome="no_answer", now=T0),
        CaseRefusal,
    )
    closed = close(withdrawn, ASH, outcome="declined", now=T0, today=T0.date())
    assert not isinstance(closed, CaseRefusal) and closed.follow_up_due_on is None


def test_contact_attempts_wait_for_consent():
    refusal = check_contact(
        case(S.CLAIMED, assigned_to="u-ash"),
        ASH,
        at=T0,
        method="phone",
        outcome="no_answer",
        now=T0,
    )
    assert isinstance(refusal, CaseRefusal) and "consent" in refusal.message


def test_a_contact_attempt_needs_a_time_not_in_the_future_a_method_and_an_outcome():
    consented = case(S.CONSENTED, assigned_to="u-ash")
    refusal = check_contact(consented, ASH, at=None, method="", outcome="", now=T0)
    assert isinstance(refusal, CaseRefusal)
    assert set(refusal.problems) == {"at", "method", "outcome"}
    future = check_contact(
        consented, ASH, at=T0 + timedelta(hours=1), method="phone", outcome="no_answer", now=T0
    )
    assert isinstance(future, CaseRefusal) and "future" in future.problems["at"]
    attempt = check_contact(consented, ASH, at=T0, method="face_to_face", outcome="engaged", now=T0)
    assert not isinstance(attempt, CaseRefusal)
    assert attempt.method is ContactMethod.FACE_TO_FACE


def test_short_support_is_reviewed_after_four_weeks_and_long_after_twelve():
    consented = case(S.CONSENTED, assigned_to="u-ash")
    start = date(2026, 3, 16)
    short = start_support(consented, ASH, tier="short", start_on=start, today=start)
    long = start_support(consented, ASH, tier="long", start_on=start, today=start)
    assert not isinstance(short, CaseRefusal) and not isinstance(long, CaseRefusal)
    assert short.status is S.IN_SUPPORT
    assert (short.support_review_on, long.support_review_on) == (
        date(2026, 4, 13),
        date(2026, 6, 8),
    )


def test_support_needs_a_tier_and_a_start_date():
    refusal = start_support(
        case(S.CONSENTED, assigned_to="u-ash"),
        ASH,
        tier="medium",
        start_on=None,
        today=date(2026, 3, 16),
    )
    assert isinstance(refusal, CaseRefusal) and set(refusal.problems) == {"tier", "start_on"}


def test_onward_referral_records_the_service_type_and_refuses_unknown_ones():
    consented = case(S.CONSENTED, assigned_to="u-ash")
    ok = check_onward(
        consented,
        ASH,
        kind="signpost",
        service_type="mental_health",
        on=date(2026, 3, 16),
        today=date(2026, 3, 16),
    )
    assert not isinstance(ok, CaseRefusal) and ok.service_type.value == "mental_health"
    bad = check_onward(
        consented, ASH, kind="gossip", service_type="astrology", on=None, today=date(2026, 3, 16)
    )
    assert isinstance(bad, CaseRefusal) and set(bad.problems) == {"kind", "service_type", "on"}


def test_an_empty_note_is_refused_and_a_note_is_stripped():
    consented = case(S.CONSENTED, assigned_to="u-ash")
    assert isinstance(check_note(consented, ASH, "   "), CaseRefusal)
    assert check_note(consented, ASH, "  met in the family room \n") == "met in the family room"


def test_closing_needs_an_outcome():
    refusal = close(
        case(S.CONSENTED, assigned_to="u-ash"), ASH, outcome="", now=T0, today=T0.date()
    )
    assert isinstance(refusal, CaseRefusal) and "outcome" in refusal.problems


def test_closing_after_consent_sets_a_follow_up_six_months_on():
    closed = close(
        case(S.IN_SUPPORT, assigned_to="u-ash"),
        ASH,
        outcome="support_completed",
        now=T0,
        today=date(2026, 3, 14),
    )
    assert not isinstance(closed, CaseRefusal)
    assert (closed.status, closed.closure_outcome) == (S.CLOSED, ClosureOutcome.SUPPORT_COMPLETED)
    assert closed.follow_up_due_on == date(2026, 9, 14)


def test_closing_a_declined_referral_sets_no_follow_up():
    closed = close(
        case(S.DECLINED, assigned_to="u-ash"), ASH, outcome="declined", now=T0, today=T0.date()
    )
    assert not isinstance(closed, CaseRefusal) and closed.follow_up_due_on is None


def test_six_months_after_the_end_of_august_is_the_end_of_february():
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert add_months(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert add_months(date(2026, 9, 30), 6) == date(2027, 3, 30)


def test_follow_up_is_listed_two_weeks_before_it_is_due_and_recorded_once():
    closed = case(S.CLOSED, assigned_to="u-ash", follow_up_due_on=date(2026, 9, 14), closed_at=T0)
    assert not follow_up_due(closed, today=date(2026, 8, 30))
    assert follow_up_due(closed, today=date(2026, 8, 31))
    done = record_follow_up(closed, ASH, outcome="reached_no_further_need", now=T0)
    assert not isinstance(done, CaseRefusal)
    assert not follow_up_due(done, today=date(2026, 9, 20))
    assert isinstance(record_follow_up(done, ASH, outcome="not_reached", now=T0), CaseRefusal)


def test_an_unclaimed_referral_escalates_after_the_configured_time_once():
    fresh = case()
    after = timedelta(minutes=20)
    assert not is_escalated(fresh, now=T0 + timedelta(minutes=19), after=after)
    assert escalation_due(fresh, now=T0 + timedelta(minutes=20), after=after)
    marked = case(escalated_at=T0 + timedelta(minutes=20))
    assert is_escalated(marked, now=T0 + timedelta(minutes=21), after=after)
    assert not escalation_due(marked, now=T0 + timedelta(minutes=21), after=after)


def test_a_claimed_referral_never_escalates():
    claimed = case(S.CLAIMED, assigned_to="u-ash")
    assert not is_escalated(claimed, now=T0 + timedelta(hours=5), after=timedelta(minutes=20))


def test_casework_on_another_sites_referral_is_refused_even_for_a_team_lead():
    far_lead = user(Role.TEAM_LEAD, id="u-far-lead", sites=(SITE_B,))
    refusal = close(
        case(S.CONSENTED, site=SITE_A), far_lead, outcome="moved_away", now=T0, today=T0.date()
    )
    assert isinstance(refusal, CaseRefusal)
