"""Alerts hear what the gateway's other parts announce, as wired in the composition root: an
outside service accepting or declining an onward referral (its Task moved through the real
onward service) alerts the referral's youth worker, and the feed-silence watch going off or
clearing alerts the site's team leads and its team-chat room. The channels record what they
were given (tests/alerts/test_alert_service.py's)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from consent.policy import Actor, Role
from referral_gateway.config import Settings
from referral_gateway.domain.alerts import Alert, AlertChannel, AlertKind
from referral_gateway.domain.onward import TaskMove, TaskStatus
from referral_gateway.services.alerts import Senders
from referral_gateway.services.casework import Casework
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.inbox import Arrival, InboxStore
from referral_gateway.wiring.gateway import Gateway, build_gateway
from tests.alerts.test_alert_service import AUTH, KEY, Channels
from tests.conftest import FixedClock
from tests.consent_store.builders import SITE, given, seed_referral
from tests.onward.builders import add_service, fhir_service
from tests.web.builders import FAST_HASHER, add_account

MORNING = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)  # 09:00 in London: a 30-minute allowance
SERVICE = "wexcombe-youth"
DECLINE_REASON = "Outside our area: Quillfeather lives in Larkspur Mews"


class Wired:
    """A gateway built by the composition root, its alert channels recording, and a site's
    staff: a youth worker off shift, another on shift, a team lead on shift and one off."""

    def __init__(self, gateway: Gateway, clock: FixedClock) -> None:
        self.gateway, self.clock = gateway, clock
        self.channels = Channels()
        gateway.alerts.senders = Senders(
            push=self.channels.push, email=self.channels.email, chat=self.channels.room
        )
        gateway.alerts.retry_poll = 0.05
        gateway.alerts.start()
        self.accounts = AccountStore(gateway.engine, hasher=FAST_HASHER)
        self.ash = self.person("ash", Role.YOUTH_WORKER, on_shift=False, email="ash@example.test")
        self.birch = self.person("birch", Role.YOUTH_WORKER, on_shift=True)
        self.lead = self.person("lead", Role.TEAM_LEAD, on_shift=True, email="lead@example.test")
        self.resting = self.person("resting", Role.TEAM_LEAD, on_shift=False)
        self.far = self.person("far", Role.TEAM_LEAD, on_shift=True, sites=("RYY02",))

    def person(self, name, role, *, on_shift, email="", sites=(SITE,)):  # type: ignore[no-untyped-def]
        user = add_account(self.accounts, name, role, sites, now=self.clock())
        store = self.gateway.alerts.store
        channels = {AlertChannel.PUSH} | ({AlertChannel.EMAIL} if email else set())
        store.save_preference(
            user.id,
            on_shift=on_shift,
            channels=frozenset(channels),
            email=email,
            now=self.clock(),
        )
        store.add_push_subscription(
            user.id, endpoint=f"https://push.test/{name}", p256dh=KEY, auth=AUTH, now=self.clock()
        )
        return user

    def pushed_to(self, name: str) -> list[Alert]:
        return [a for a, endpoint in self.channels.pushed if endpoint.endswith(f"/{name}")]

    def everything_sent(self) -> list[Alert]:
        return (
            [a for a, _ in self.channels.pushed]
            + [a for a, _ in self.channels.mailed]
            + list(self.channels.chat)
        )


@pytest.fixture
def wired(engine, keyring, tmp_path) -> Iterator[Wired]:
    clock = FixedClock(MORNING)
    gateway = build_gateway(
        Settings(data_dir=tmp_path, alert_batch_seconds=0),
        clock=clock,
        keyring=keyring,
        engine=engine,
    )
    w = Wired(gateway, clock)
    yield w
    gateway.alerts.stop()


def settled(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def onward_task(w: Wired, visit_number: str) -> tuple[str, str]:
    """A referral assigned by the team lead to Ash, consented, sent onward: (referral, Task)."""
    gw, now = w.gateway, w.clock()
    rid = seed_referral(gw.engine, gw.keyring, visit_number=visit_number, now=now).referral_id
    casework = Casework(
        gw.engine,
        gw.keyring,
        w.clock,
        accounts=w.accounts,
        sharing=gw.sharing,
        publish=lambda _e: None,
        local_zone=ZoneInfo("Europe/London"),
    )
    assert casework.assign(w.lead, rid, w.ash.id) is None
    ash = Actor(w.ash.id, Role.YOUTH_WORKER, frozenset({SITE}))
    gw.sharing.record_consent_outcome(ash, rid, given(rid, by=ash, onward_sharing=True), now=now)
    task = gw.onward.refer(ash, rid, SERVICE, now=now)
    return rid, task.id  # type: ignore[union-attr]


def test_a_service_accepting_or_declining_alerts_the_referrals_youth_worker_only(wired):
    w = wired
    add_service(w.gateway.onward, fhir_service("http://127.0.0.1:9"), w.clock())
    accepted_rid, accepted_task = onward_task(w, "V5551")
    declined_rid, declined_task = onward_task(w, "V5552")

    w.gateway.onward.update_task(
        SERVICE, accepted_task, TaskMove(TaskStatus.ACCEPTED), now=w.clock()
    )
    w.gateway.onward.update_task(
        SERVICE,
        declined_task,
        TaskMove(TaskStatus.REJECTED, reason=DECLINE_REASON),
        now=w.clock(),
    )

    accepted = Alert(SITE, AlertKind.ONWARD_ACCEPTED, 1, f"/referrals/{accepted_rid}")
    declined = Alert(SITE, AlertKind.ONWARD_DECLINED, 1, f"/referrals/{declined_rid}")
    # Ash is off shift: the referral is theirs, so they hear it anyway, on each channel
    assert settled(lambda: {accepted, declined} <= set(w.pushed_to("ash")))
    assert settled(
        lambda: (
            {(accepted, "ash@example.test"), (declined, "ash@example.test")}
            <= set(w.channels.mailed)
        )
    )
    onward_kinds = {AlertKind.ONWARD_ACCEPTED, AlertKind.ONWARD_DECLINED}
    others = [
        a
        for name in ("birch", "lead", "resting", "far")
        for a in w.pushed_to(name)
        if a.kind in onward_kinds
    ]
    assert others == []  # not the lead who assigned it, nor anyone on shift
    assert [a for a in w.channels.chat if a.kind in onward_kinds] == []  # not the room
    deliveries = w.gateway.alerts.store.deliveries()
    assert sorted(d.alert.kind.value for d in deliveries if d.alert.kind in onward_kinds) == [
        "onward_accepted",
        "onward_accepted",
        "onward_declined",
        "onward_declined",
    ]


def test_a_feed_gone_silent_then_resuming_alerts_the_sites_team_leads_and_room_once_each(wired):
    w = wired
    inbox = InboxStore(w.gateway.engine, w.gateway.keyring)

    def arrive(key: str) -> None:
        inbox.store_batch(
            [Arrival("hl7v2", "EPIC^RXX01", key, "ADT^A04", SITE, b"MSH|^~\\&|", w.clock())]
        )

    arrive("1")
    w.clock.advance(minutes=31)
    assert [c.raised for c in w.gateway.feed_watch.check()] == [True]
    silent = Alert(SITE, AlertKind.FEED_SILENT, 1, "/queue")
    assert settled(lambda: w.channels.chat == [silent] and w.pushed_to("lead") == [silent])
    assert settled(lambda: (silent, "lead@example.test") in w.channels.mailed)

    w.clock.advance(minutes=10)
    assert w.gateway.feed_watch.check() == []  # still quiet: no second alarm, no alert
    arrive("2")
    assert [c.raised for c in w.gateway.feed_watch.check()] == [False]
    resumed = Alert(SITE, AlertKind.FEED_RESUMED, 1, "/queue")
    assert settled(lambda: w.channels.chat == [silent, resumed])
    assert settled(lambda: w.pushed_to("lead") == [silent, resumed])
    assert w.channels.mailed == [(silent, "lead@example.test"), (resumed, "lead@example.test")]
    # youth workers, a lead off shift and another site's lead hear nothing of it
    assert [w.pushed_to(n) for n in ("ash", "birch", "resting", "far")] == [[], [], [], []]
    assert len(w.gateway.alerts.store.deliveries()) == 6  # push, e-mail and room, twice
