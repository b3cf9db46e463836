"""Account rules without a database: new accounts, passwords, sign-in throttling, session
expiry."""

from __future__ import annotations

from datetime import timedelta

from consent.policy import Role
from referral_gateway.domain.accounts import (
    AccountProblems,
    SessionPolicy,
    SessionState,
    StaffUser,
    ThrottlePolicy,
    check_new_account,
    session_state,
    sign_in_throttle,
    sites_gained,
)
from tests.web.builders import PASSWORD, T0

POLICY = ThrottlePolicy(
    failures_per_username=5, failures_per_address=20, window=timedelta(minutes=15)
)


def test_a_youth_worker_account_needs_a_site_and_a_long_password():
    result = check_new_account("Ash.Worker", "youth_worker", [], "short")
    assert isinstance(result, AccountProblems)
    assert set(result.problems) == {"sites", "password"}


def test_a_valid_account_has_a_normalised_username_and_site_codes():
    result = check_new_account(" Ash.Worker ", "team_lead", ["rxa01", " rxb02 "], PASSWORD)
    assert not isinstance(result, AccountProblems)
    assert (result.username, result.role, result.sites) == (
        "ash.worker",
        Role.TEAM_LEAD,
        frozenset({"RXA01", "RXB02"}),
    )


def test_an_administrator_needs_no_site_but_an_unknown_role_is_refused():
    assert not isinstance(
        check_new_account("admin", "administrator", [], PASSWORD), AccountProblems
    )
    refusal = check_new_account("root", "superuser", [], PASSWORD)
    assert isinstance(refusal, AccountProblems) and "role" in refusal.problems


def test_a_password_containing_the_username_is_refused():
    refusal = check_new_account("jordan", "youth_worker", ["RXA01"], "jordan-is-great-2026")
    assert isinstance(refusal, AccountProblems) and "password" in refusal.problems


def test_five_failures_for_a_username_within_the_window_refuse_the_sixth_try():
    failures = [T0 + timedelta(minutes=i) for i in range(5)]
    decision = sign_in_throttle(failures, [], now=T0 + timedelta(minutes=5), policy=POLICY)
    assert not decision.allowed
    # the oldest failure leaves the window at T0 + 15 min: 10 minutes from now
    assert decision.retry_after == timedelta(minutes=10)
    assert "10 minutes" in decision.message


def test_failures_older_than_the_window_do_not_count():
    failures = [T0 + timedelta(minutes=i) for i in range(5)]
    assert sign_in_throttle(failures, [], now=T0 + timedelta(minutes=15), policy=POLICY).allowed


def test_many_failures_from_one_address_throttle_every_username_from_it():
    failures = [T0 + timedelta(seconds=10 * i) for i in range(20)]
    assert not sign_in_throttle([], failures, now=T0 + timedelta(minutes=4), policy=POLICY).allowed
    assert sign_in_throttle([], failures[:19], now=T0 + timedelta(minutes=4), policy=POLICY).allowed


def test_a_session_idles_out_and_ends_after_its_lifetime():
    policy = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=12))

    def state(created_ago: timedelta, seen_ago: timedelta, ended: bool = False) -> SessionState:
        now = T0 + timedelta(days=1)
        return session_state(
            created_at=now - created_ago,
            last_seen_at=now - seen_ago,
            ended=ended,
            now=now,
            policy=policy,
        )

    assert state(timedelta(hours=1), timedelta(minutes=29)) is SessionState.ACTIVE
    assert state(timedelta(hours=1), timedelta(minutes=30)) is SessionState.IDLE_EXPIRED
    assert state(timedelta(hours=12), timedelta(minutes=1)) is SessionState.EXPIRED
    assert state(timedelta(hours=1), timedelta(minutes=1), ended=True) is SessionState.ENDED


def test_an_account_gains_a_site_when_it_is_made_added_promoted_or_enabled_there():
    worker = StaffUser("u1", "ash", Role.YOUTH_WORKER, frozenset({"RXA01"}))
    both = StaffUser("u1", "ash", Role.YOUTH_WORKER, frozenset({"RXA01", "RXB02"}))
    lead = StaffUser("u1", "ash", Role.TEAM_LEAD, frozenset({"RXA01", "RXB02"}))
    disabled = StaffUser("u1", "ash", Role.TEAM_LEAD, frozenset({"RXA01", "RXB02"}), active=False)
    assert sites_gained(None, worker) == {"RXA01"}
    assert sites_gained(worker, both) == {"RXB02"}
    assert sites_gained(both, lead) == {"RXA01", "RXB02"}
    assert sites_gained(disabled, lead) == {"RXA01", "RXB02"}


def test_losing_reach_or_being_disabled_gains_no_site():
    lead = StaffUser("u1", "ash", Role.TEAM_LEAD, frozenset({"RXA01", "RXB02"}))
    worker = StaffUser("u1", "ash", Role.YOUTH_WORKER, frozenset({"RXA01"}))
    disabled = StaffUser("u1", "ash", Role.TEAM_LEAD, frozenset({"RXA01", "RXB02"}), active=False)
    admin = StaffUser("u2", "root", Role.ADMINISTRATOR, frozenset())
    assert sites_gained(lead, worker) == frozenset()
    assert sites_gained(lead, disabled) == frozenset()
    assert sites_gained(None, admin) == frozenset()
