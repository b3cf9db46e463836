"""One key per site, versions of a month's report, and drift: the push service against the
real hub receiver and store (a database of its own), reached through an httpx transport.

A gateway serving two sites signs each site's month with that site's key; a site without a
key, or a key the hub refuses for the site, fails once with the reason and is not retried
every hour until the configuration changes; a correction is the next version with its
reason; a second report without a reason cannot replace the hub's; the live figures of a
frozen month are compared with what was frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.reporting import Cell, build_monthly_report
from referral_gateway.report_formats.signing import SigningKey
from referral_gateway.services.errors import ReissueRefused
from referral_gateway.services.hub import HubKey, HubReceiver
from referral_gateway.services.report_push import MonthlyPush, PushResult, ReportSender
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.errors import VersionRace
from referral_gateway.storage.reports import PushStatus, ReportStore
from tests.conftest import FixedClock
from tests.reporting.builders import OTHER_SITE, SITE, at, many, october_2024

OCTOBER = ReportMonth(2024, 10)
KEY_A = SigningKey("rxx01-2024", b"a" * 32)
KEY_B = SigningKey("ryy02-2024", b"b" * 32)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


class Facts:
    """The sites' facts, which a test can add late arrivals to."""

    def __init__(self) -> None:
        self.facts = october_2024()

    def __call__(self, site: str, month: ReportMonth):  # type: ignore[no-untyped-def]
        return publish(build_monthly_report(site, month, self.facts))


@dataclass
class Hub:
    """The programme hub's receiver and store, answering over an httpx transport."""

    store: ReportStore
    receiver: HubReceiver
    requests: list[str] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.headers["x-report-key-id"])
        answer = self.receiver.receive(dict(request.headers), request.read())
        return httpx.Response(answer.status_code, json=answer.body)


@dataclass
class Rig:
    clock: FixedClock
    hub: Hub
    store: ReportStore
    facts: Facts

    def sender(self, default: SigningKey | None, **site_keys: SigningKey) -> ReportSender:
        return ReportSender(
            "https://programme.invalid/api/hub/reports",
            default,
            site_keys=site_keys,
            client=httpx.Client(transport=httpx.MockTransport(self.hub.handler)),
            clock=self.clock,
            sleep=lambda _s: None,
            attempts=3,
        )

    def push(self, sender: ReportSender | None, store: ReportStore | None = None) -> MonthlyPush:
        return MonthlyPush(
            store or self.store,
            self.facts,
            lambda: [SITE, OTHER_SITE],
            sender,
            clock=self.clock,
        )


@pytest.fixture
def rig(engine, tmp_path) -> Rig:
    clock = FixedClock(utc(2024, 11, 1, 6, 0))
    hub_engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    migrate(hub_engine)
    hub_store = ReportStore(hub_engine)
    keys = {KEY_A.key_id: HubKey(KEY_A, SITE), KEY_B.key_id: HubKey(KEY_B, OTHER_SITE)}
    yield Rig(
        clock, Hub(hub_store, HubReceiver(hub_store, keys, clock)), ReportStore(engine), Facts()
    )
    hub_engine.dispose()


def results(outcomes) -> list[tuple[str, PushResult]]:  # type: ignore[no-untyped-def]
    return [(o.site, o.result) for o in outcomes]


# -- one key per site ------------------------------------------------------------------------


def test_a_gateway_serving_two_sites_signs_each_sites_month_with_its_own_key(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A, OTHER_SITE: KEY_B}))
    assert results(push.run()) == [(SITE, PushResult.SENT), (OTHER_SITE, PushResult.SENT)]
    received = rig.hub.store.received(OCTOBER)
    assert [(r.snapshot.site, r.key_id, r.version) for r in received] == [
        (SITE, KEY_A.key_id, 1),
        (OTHER_SITE, KEY_B.key_id, 1),
    ]


def test_a_site_without_a_key_fails_with_the_reason_and_waits_for_the_configuration(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A}))
    outcomes = push.run()
    assert results(outcomes) == [(SITE, PushResult.SENT), (OTHER_SITE, PushResult.FAILED)]
    state = rig.store.push_state(OTHER_SITE, OCTOBER)
    assert state.status is PushStatus.FAILED
    assert (
        state.last_error
        == f"no programme key for site {OTHER_SITE}: add [sites.{OTHER_SITE}.programme]"
    )

    rig.clock.advance(hours=1)  # the hourly retry, and a restarted process's catch-up run
    assert results(push.retry_unsent()) == [(OTHER_SITE, PushResult.REFUSED)]
    assert results(rig.push(rig.sender(None, **{SITE: KEY_A})).run()) == [
        (SITE, PushResult.SKIPPED),
        (OTHER_SITE, PushResult.REFUSED),
    ]
    assert rig.hub.requests == [KEY_A.key_id]

    # the site's key is configured: the next retry sends it
    fixed = rig.push(rig.sender(None, **{SITE: KEY_A, OTHER_SITE: KEY_B}))
    assert results(fixed.retry_unsent()) == [(OTHER_SITE, PushResult.SENT)]
    assert rig.store.push_state(OTHER_SITE, OCTOBER).refused_under is None


def test_a_key_the_hub_refuses_for_the_site_is_not_retried_hourly_for_ever(rig: Rig):
    """The issue as found: one RG_PROGRAMME_KEY_ID for two sites; the hub answers 403."""
    push = rig.push(rig.sender(KEY_A))
    assert results(push.run()) == [(SITE, PushResult.SENT), (OTHER_SITE, PushResult.FAILED)]
    assert rig.store.push_state(OTHER_SITE, OCTOBER).last_error == (
        "programme endpoint answered 403 (site_not_allowed_for_key)"
    )
    for _ in range(3):
        rig.clock.advance(hours=1)
        assert results(push.retry_unsent()) == [(OTHER_SITE, PushResult.REFUSED)]
    assert rig.hub.requests == [KEY_A.key_id, KEY_A.key_id]  # one try each, no more

    # an administrator who fixed the hub's side pushes it by hand: it is sent again (and
    # refused again here, since nothing changed)
    assert results(push.retry_unsent(force=True)) == [(OTHER_SITE, PushResult.FAILED)]
    assert len(rig.hub.requests) == 3


def test_a_hub_that_is_down_keeps_being_retried(rig: Rig):
    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    sender = rig.sender(None, **{SITE: KEY_A, OTHER_SITE: KEY_B})
    sender.client = httpx.Client(transport=httpx.MockTransport(down))
    push = rig.push(sender)
    assert {r for _, r in results(push.run())} == {PushResult.FAILED}
    assert rig.store.push_state(SITE, OCTOBER).refused_under is None
    rig.clock.advance(hours=1)
    assert {r for _, r in results(push.retry_unsent())} == {PushResult.FAILED}
    assert len(calls) == 12  # 3 attempts per site, each hour


# -- versions --------------------------------------------------------------------------------


def test_a_correction_is_the_next_version_at_the_hub_with_its_reason(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A, OTHER_SITE: KEY_B}))
    push.run()
    rig.facts.facts += many(10, at("2024-10-20T10:00"))  # late messages after the freeze
    rig.clock.advance(days=2)

    outcome = push.reissue(SITE, OCTOBER, reason="  late A08 updates\nfrom the ED system ")
    assert (outcome.result, outcome.version) == (PushResult.SENT, 2)
    history = rig.hub.store.receipt_history(SITE, OCTOBER)
    assert [(r.version, r.reason, r.key_id, r.received_at) for r in history] == [
        (1, None, KEY_A.key_id, utc(2024, 11, 1, 6, 0)),
        (2, "late A08 updates from the ED system", KEY_A.key_id, utc(2024, 11, 3, 6, 0)),
    ]
    current = {r.snapshot.site: r for r in rig.hub.store.received(OCTOBER)}
    assert current[SITE].version == 2
    assert current[SITE].snapshot.report().value("candidates") == 50  # 40 + 10 late
    assert history[0].snapshot.report().value("candidates") == 40  # kept as it was
    assert current[OTHER_SITE].version == 1
    # at the site: both versions kept, the push follows the newest
    assert [(s.version, s.reason) for s in rig.store.versions(SITE, OCTOBER)] == [
        (1, None),
        (2, "late A08 updates from the ED system"),
    ]
    assert rig.store.push_state(SITE, OCTOBER).report_id == outcome.report_id


def test_a_second_report_without_a_reason_is_refused_and_the_hub_keeps_the_first(
    rig: Rig, tmp_path
):
    """A staging gateway with the production key and a database of its own."""
    rig.push(rig.sender(None, **{SITE: KEY_A})).run()
    staging_engine = make_engine(f"sqlite:///{tmp_path / 'staging.db'}")
    migrate(staging_engine)
    staging = ReportStore(staging_engine)
    rig.facts.facts += many(3, at("2024-10-21T10:00"))
    outcome = rig.push(rig.sender(None, **{SITE: KEY_A}), store=staging).push(
        SITE, OCTOBER, now=rig.clock.now
    )
    assert outcome.result is PushResult.FAILED
    assert staging.push_state(SITE, OCTOBER).last_error == (
        "programme endpoint answered 409 (month_already_received)"
    )
    assert staging.push_state(SITE, OCTOBER).refused_under is not None  # not retried hourly
    history = rig.hub.store.receipt_history(SITE, OCTOBER)
    assert [(r.version, r.snapshot.report().value("candidates")) for r in history] == [(1, 40)]
    staging_engine.dispose()


def test_the_identical_signed_report_sent_again_is_not_a_new_version(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A}))
    push.push(SITE, OCTOBER, now=rig.clock.now)
    snapshot = rig.store.snapshot(SITE, OCTOBER)
    rig.store.finish_push(  # as if the process died before noting the hub's answer
        SITE, OCTOBER, delivered=False, now=rig.clock.now, attempts=0, status_code=None, error="x"
    )
    assert push.push(SITE, OCTOBER, now=rig.clock.now).result is PushResult.SENT  # a replay
    assert [r.version for r in rig.hub.store.receipt_history(SITE, OCTOBER)] == [1]
    assert rig.hub.store.received(OCTOBER)[0].snapshot == snapshot


def test_a_correction_with_the_same_figures_or_no_reason_or_nothing_frozen_is_refused(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A}))
    with pytest.raises(ReissueRefused, match="has not been frozen yet"):
        push.reissue(SITE, OCTOBER, reason="late updates")
    push.push(SITE, OCTOBER, now=rig.clock.now)
    with pytest.raises(ReissueRefused, match="the same as version 1"):
        push.reissue(SITE, OCTOBER, reason="late updates")
    rig.facts.facts += many(10, at("2024-10-20T10:00"))
    with pytest.raises(ReissueRefused, match="reason"):
        push.reissue(SITE, OCTOBER, reason=" \n ")
    assert [s.version for s in rig.store.versions(SITE, OCTOBER)] == [1]
    assert len(rig.hub.requests) == 1


def test_a_correction_without_a_programme_endpoint_is_frozen_as_the_next_version(rig: Rig):
    push = rig.push(None)
    push.run()
    rig.facts.facts += many(10, at("2024-10-20T10:00"))
    outcome = push.reissue(SITE, OCTOBER, reason="late updates")
    assert (outcome.result, outcome.version) == (PushResult.FROZEN, 2)
    assert rig.store.snapshot(SITE, OCTOBER).version == 2
    assert {s.version for s in rig.store.snapshots(OCTOBER)} == {1, 2}  # newest per site


# -- drift ---------------------------------------------------------------------------------


def test_live_figures_that_moved_after_the_freeze_are_reported_as_drift(rig: Rig):
    push = rig.push(rig.sender(None, **{SITE: KEY_A}))
    assert push.drift(SITE, OCTOBER) is None  # nothing frozen yet
    push.push(SITE, OCTOBER, now=rig.clock.now)
    assert push.drift(SITE, OCTOBER) is None  # the live figures match

    rig.facts.facts += many(10, at("2024-10-20T10:00"))
    drift = push.drift(SITE, OCTOBER)
    assert (drift.version, drift.sent_at) == (1, utc(2024, 11, 1, 6, 0))
    changes = {c.cell: (c.frozen, c.live) for c in drift.changes}
    assert changes[Cell("candidates")] == (40, 50)

    rig.clock.advance(days=1)
    push.reissue(SITE, OCTOBER, reason="late messages")
    assert push.drift(SITE, OCTOBER) is None  # version 2 is what the live figures say


class RacingStore(ReportStore):
    """A store in which another process always stores the same version first."""

    def receive(self, snapshot, *, key_id, now):  # type: ignore[no-untyped-def]
        raise VersionRace("stored by another process")

    def reissue(self, snapshot, *, track_push):  # type: ignore[no-untyped-def]
        raise VersionRace("stored by another process")


def test_a_version_stored_at_the_same_time_elsewhere_is_answered_busy_and_retried(rig: Rig):
    rig.hub.receiver.store = RacingStore(rig.hub.store.engine)
    push = rig.push(rig.sender(None, **{SITE: KEY_A}))
    outcome = push.push(SITE, OCTOBER, now=rig.clock.now)
    assert (outcome.result, outcome.detail) == (
        PushResult.FAILED,
        "programme endpoint answered 503 (busy)",
    )
    assert rig.store.push_state(SITE, OCTOBER).refused_under is None  # retried hourly
    assert len(rig.hub.requests) == 3  # and at once, with backoff


def test_two_re_issues_at_once_store_one_version(rig: Rig):
    rig.push(rig.sender(None, **{SITE: KEY_A})).push(SITE, OCTOBER, now=rig.clock.now)
    rig.facts.facts += many(10, at("2024-10-20T10:00"))
    racing = rig.push(rig.sender(None, **{SITE: KEY_A}), store=RacingStore(rig.store.engine))
    with pytest.raises(ReissueRefused, match="another re-issue stored version 2 first"):
        racing.reissue(SITE, OCTOBER, reason="late updates")
