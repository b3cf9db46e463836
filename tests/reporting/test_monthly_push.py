"""The monthly push: frozen once, sent once, retried with backoff, on time in London."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.reporting import build_monthly_report
from referral_gateway.report_formats.signing import SigningKey
from referral_gateway.services.report_jobs import push_trigger
from referral_gateway.services.report_push import (
    MonthlyPush,
    PushResult,
    ReportSender,
)
from referral_gateway.storage.reports import PushStatus, ReportStore
from tests.conftest import FixedClock
from tests.reporting.builders import OTHER_SITE, SITE, at, many, october_2024
from tests.reporting.fakes import FakeHub

KEY = SigningKey("site-key-1", b"k" * 32)
OCTOBER = ReportMonth(2024, 10)
SEPTEMBER = ReportMonth(2024, 9)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


class Builds:
    """Counts how often a report is built, so a test can tell a frozen one from a rebuild."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ReportMonth]] = []
        self.facts = october_2024() + many(4, at("2024-09-12T10:00"))

    def __call__(self, site: str, month: ReportMonth):
        self.calls.append((site, month))
        return publish(build_monthly_report(site, month, self.facts))


@dataclass
class Rig:
    clock: FixedClock
    hub: FakeHub
    sleeps: list[float]
    store: ReportStore
    builds: Builds
    sender: ReportSender

    def make_push(self) -> MonthlyPush:  # what a (re)started process builds
        return MonthlyPush(self.store, self.builds, lambda: [SITE], self.sender, clock=self.clock)


@pytest.fixture
def rig(engine) -> Rig:
    clock = FixedClock(utc(2024, 11, 1, 6, 0))
    hub = FakeHub(KEY, clock)
    sleeps: list[float] = []
    sender = ReportSender(
        "https://programme.invalid/api/hub/reports",
        KEY,
        client=hub.client(),
        clock=clock,
        sleep=sleeps.append,
        attempts=4,
    )
    return Rig(clock, hub, sleeps, ReportStore(engine), Builds(), sender)


def test_the_cron_fires_at_six_london_time_across_the_october_clock_change():
    trigger = push_trigger()
    # from 05:00 UTC on 1 Oct 2024 (06:00 BST): the next is 1 Nov 06:00 GMT = 06:00 UTC
    first = trigger.get_next_fire_time(None, utc(2024, 10, 1, 5, 0, 1))
    assert first.astimezone(UTC) == utc(2024, 11, 1, 6, 0)
    # walking a year of fires: 06:00 local every time, 05:00 UTC only in BST months
    fires, moment = [], utc(2024, 1, 15)
    for _ in range(12):
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        fires.append(moment.astimezone(UTC))
    assert fires[:3] == [utc(2024, 2, 1, 6), utc(2024, 3, 1, 6), utc(2024, 4, 1, 5)]
    assert fires[8:11] == [utc(2024, 10, 1, 5), utc(2024, 11, 1, 6), utc(2024, 12, 1, 6)]


def test_before_six_on_the_first_of_november_october_is_not_pushed(rig):
    rig.clock.now = utc(
        2024, 11, 1, 5, 30
    )  # 05:30 GMT: would be 06:30 had the clocks not gone back
    outcomes = rig.make_push().run()
    assert [(o.month, o.result) for o in outcomes] == [(SEPTEMBER, PushResult.SENT)]
    assert rig.store.snapshot(SITE, OCTOBER) is None


def test_at_six_the_finished_month_is_frozen_signed_and_sent(rig):
    outcomes = rig.make_push().run()
    assert [(o.site, o.month, o.result) for o in outcomes] == [(SITE, OCTOBER, PushResult.SENT)]
    assert [s.report().value("candidates") for s in rig.hub.received] == [40]
    state = rig.store.push_state(SITE, OCTOBER)
    assert (state.status, state.attempts, state.sent_at) == (PushStatus.SENT, 1, rig.clock.now)


def test_a_restarted_process_does_not_send_a_month_again(rig):
    rig.make_push().run()
    rig.clock.advance(hours=1)
    again = rig.make_push().run()  # a new process, same database
    assert [o.result for o in again] == [PushResult.SKIPPED]
    assert (rig.hub.requests, len(rig.builds.calls)) == (1, 1)


def test_a_snapshot_never_changes_once_frozen(rig):
    push = rig.make_push()
    first = push.freeze(SITE, OCTOBER, now=rig.clock.now)
    rig.builds.facts += many(10, at("2024-10-20T10:00"))  # late data arrives
    rig.clock.advance(days=3)
    assert push.freeze(SITE, OCTOBER, now=rig.clock.now) == first


def test_a_month_still_running_cannot_be_frozen(rig):
    with pytest.raises(ValueError):
        rig.make_push().freeze(SITE, ReportMonth(2024, 11), now=rig.clock.now)


def test_server_errors_are_retried_with_growing_waits_then_succeed(rig):
    rig.hub.script = [503, httpx.ConnectError("refused"), 500]
    outcome = rig.make_push().run()[0]
    assert outcome.result is PushResult.SENT
    assert rig.sleeps == [2.0, 4.0, 8.0]
    assert rig.store.push_state(SITE, OCTOBER).attempts == 4


def test_when_every_attempt_fails_the_month_shows_as_failed_and_is_retried_later(rig):
    rig.hub.script = [503, 503, 503, 503]
    assert rig.make_push().run()[0].result is PushResult.FAILED
    state = rig.store.push_state(SITE, OCTOBER)
    assert (state.status, state.last_status_code) == (PushStatus.FAILED, 503)
    assert "503" in state.last_error
    rig.clock.advance(hours=1)
    retried = rig.make_push().retry_unsent()
    assert [o.result for o in retried] == [PushResult.SENT]
    assert rig.store.push_state(SITE, OCTOBER).status is PushStatus.SENT


def test_a_refused_signature_is_not_retried(rig):
    rig.hub.keys = {KEY.key_id: SigningKey(KEY.key_id, b"z" * 32)}  # the rig.hub has another secret
    outcome = rig.make_push().run()[0]
    assert outcome.result is PushResult.FAILED
    assert rig.sleeps == []
    assert rig.store.push_state(SITE, OCTOBER).last_error == (
        "programme endpoint answered 401 (bad_signature)"
    )


def test_a_hub_that_already_holds_the_report_counts_as_delivered(rig):
    push = rig.make_push()
    snapshot = push.freeze(SITE, OCTOBER, now=rig.clock.now)
    rig.hub.received.append(snapshot)  # it arrived, but our process died before noting it
    assert push.run()[0].result is PushResult.SENT


def test_two_processes_claiming_the_same_month_send_it_once(rig):
    rig.make_push().freeze(SITE, OCTOBER, now=rig.clock.now)
    lease = timedelta(minutes=30)
    assert rig.store.claim_push(SITE, OCTOBER, now=rig.clock.now, lease=lease)
    assert not rig.store.claim_push(SITE, OCTOBER, now=rig.clock.now, lease=lease)
    # the first process died: after the lease another may take over
    assert rig.store.claim_push(
        SITE, OCTOBER, now=rig.clock.now + lease + timedelta(seconds=1), lease=lease
    )


def test_without_a_programme_endpoint_snapshots_are_still_frozen(engine):
    clock = FixedClock(utc(2024, 11, 1, 6, 0))
    store = ReportStore(engine)
    push = MonthlyPush(store, Builds(), lambda: [SITE, OTHER_SITE], None, clock=clock)
    assert {o.result for o in push.run()} == {PushResult.FROZEN}
    assert {s.site for s in store.snapshots(OCTOBER)} == {SITE, OTHER_SITE}
    assert store.push_states() == []
