"""The alert service against a real database and the real pipeline (an ED feeding it), with
channels that record what they were given (or fail): who hears what, batching, retries and
what is recorded."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from consent.policy import Role
from referral_gateway.domain.alerts import (
    Alert,
    AlertChannel,
    AlertKind,
    DeliveryStatus,
    RetryPolicy,
)
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.alerts import Alerts, Senders
from referral_gateway.services.casework import Casework, escalate_untouched
from referral_gateway.services.errors import DeliveryFailed
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.alerts import AlertStore, PushSubscription
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import assigned_to
from tests.web.builders import FAST_HASHER, SITE_A, SITE_B, FakeEd, add_account

KEY = "B" + "A" * 86
AUTH = "A" * 22


class Channels:
    """Channels that keep what they send; `failing` makes the chat room fail."""

    def __init__(self) -> None:
        self.pushed: list[tuple[Alert, str]] = []
        self.mailed: list[tuple[Alert, str]] = []
        self.chat: list[Alert] = []
        self.chat_failures = 0

    def push(self, alert: Alert, sub: PushSubscription) -> None:
        self.pushed.append((alert, sub.endpoint))

    def email(self, alert: Alert, to: str) -> None:
        self.mailed.append((alert, to))

    def room(self, alert: Alert) -> None:
        if self.chat_failures:
            self.chat_failures -= 1
            raise DeliveryFailed("webhook HTTP 503")
        self.chat.append(alert)


class Setup:
    def __init__(self, engine, keyring, clock, *, batch: float) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.clock = engine, clock
        self.accounts = AccountStore(engine, hasher=FAST_HASHER)
        self.store = AlertStore(engine)
        self.channels = Channels()
        self.alerts = Alerts(
            self.store,
            Senders(push=self.channels.push, email=self.channels.email, chat=self.channels.room),
            clock,
            batch_seconds=batch,
            retry=RetryPolicy(first=timedelta(seconds=1), attempts=3),
            retry_poll_seconds=0.05,
        ).start()
        self.casework = Casework(
            engine,
            keyring,
            clock,
            accounts=self.accounts,
            sharing=Sharing(engine, keyring, AuditStore(), assignments=assigned_to),
            publish=lambda _e: None,
            local_zone=ZoneInfo("Europe/London"),
            on_assigned=self.alerts.on_assigned,
        )
        self.ed = FakeEd(engine, keyring, clock, on_referral=self.alerts.on_referral)
        self.ash = self.worker("ash", on_shift=True, email="ash@example.test")
        self.birch = self.worker("birch", on_shift=False, email="birch@example.test")
        self.lead = self.worker("lead", Role.TEAM_LEAD, on_shift=True)
        self.far = self.worker("far", on_shift=True, sites=(SITE_B,))

    def worker(self, name, role=Role.YOUTH_WORKER, *, on_shift, email="", sites=(SITE_A,)):  # type: ignore[no-untyped-def]
        user = add_account(self.accounts, name, role, sites, now=self.clock())
        channels = {AlertChannel.PUSH} | ({AlertChannel.EMAIL} if email else set())
        self.store.save_preference(
            user.id, on_shift=on_shift, channels=frozenset(channels), email=email, now=self.clock()
        )
        self.store.add_push_subscription(
            user.id, endpoint=f"https://push.test/{name}", p256dh=KEY, auth=AUTH, now=self.clock()
        )
        return user

    def settled(self, predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def pushed_to(self, name: str) -> list[Alert]:
        return [a for a, endpoint in self.channels.pushed if endpoint.endswith(f"/{name}")]


@pytest.fixture
def setup(engine, keyring, clock):  # type: ignore[no-untyped-def]
    made: list[Setup] = []

    def make(batch: float = 0.0) -> Setup:
        made.append(Setup(engine, keyring, clock, batch=batch))
        return made[-1]

    yield make
    for s in made:
        s.alerts.stop()


def test_a_new_candidate_reaches_the_sites_workers_on_shift_by_push_email_and_chat(setup):
    s = setup()
    rid = s.ed.stab_wound()
    link = f"/referrals/{rid}"
    assert s.settled(lambda: len(s.channels.pushed) == 2 and s.channels.mailed and s.channels.chat)
    expected = Alert(SITE_A, AlertKind.NEW_CANDIDATE, 1, link)
    assert s.pushed_to("ash") == [expected] and s.pushed_to("lead") == [expected]
    assert s.pushed_to("birch") == [] and s.pushed_to("far") == []  # off shift; other site
    assert s.channels.mailed == [(expected, "ash@example.test")]
    assert s.channels.chat == [expected]
    assert s.settled(lambda: {d.status for d in s.store.deliveries()} == {DeliveryStatus.SENT})
    assert len(s.store.deliveries()) == 4  # two pushes, one e-mail, one chat message


def test_arrivals_within_the_window_are_one_alert_linking_to_the_new_tab(setup):
    s = setup(batch=0.5)
    s.ed.stab_wound()
    s.ed.stab_wound()
    assert s.settled(lambda: len(s.channels.chat) == 1)
    time.sleep(0.2)
    assert s.channels.chat == [Alert(SITE_A, AlertKind.NEW_CANDIDATE, 2, "/queue?tab=new")]
    assert s.pushed_to("ash") == [Alert(SITE_A, AlertKind.NEW_CANDIDATE, 2, "/queue?tab=new")]


def test_a_discharge_alerts_only_while_the_candidate_is_unclaimed(setup):
    s = setup()
    unclaimed = s.ed.stab_wound(visit="V1")
    claimed = s.ed.stab_wound(visit="V2")
    assert s.casework.claim(s.ash, claimed) is None
    s.ed.news("discharge", visit="V1", discharge=s.clock().isoformat())
    s.ed.news("discharge", visit="V2", discharge=s.clock().isoformat())
    kind = AlertKind.DISCHARGED_UNCLAIMED
    assert s.settled(lambda: any(a.kind is kind for a in s.channels.chat))
    time.sleep(0.2)
    assert [a.link for a in s.channels.chat if a.kind is kind] == [f"/referrals/{unclaimed}"]


def test_an_escalation_reaches_the_team_lead_and_not_the_youth_worker(setup):
    s = setup()
    rid = s.ed.stab_wound()
    assert s.settled(lambda: len(s.channels.chat) == 1)
    s.clock.advance(minutes=30)
    escalated_now = escalate_untouched(s.engine, now=s.clock(), after=timedelta(minutes=20))
    for referral_id, site in escalated_now:
        s.alerts.on_referral(ReferralNews(referral_id, site, ReferralUpdate.ESCALATED))
    escalated = Alert(SITE_A, AlertKind.ESCALATED, 1, f"/referrals/{rid}")
    assert s.settled(lambda: escalated in s.pushed_to("lead"))
    time.sleep(0.2)
    assert escalated not in s.pushed_to("ash")


def test_an_assignment_reaches_the_assignee_even_off_shift(setup):
    s = setup()
    rid = s.ed.stab_wound()
    assert s.casework.assign(s.lead, rid, s.birch.id) is None
    assigned = Alert(SITE_A, AlertKind.ASSIGNED, 1, f"/referrals/{rid}")
    assert s.settled(lambda: assigned in s.pushed_to("birch"))
    assert s.settled(lambda: (assigned, "birch@example.test") in s.channels.mailed)
    assert all(a.kind is not AlertKind.ASSIGNED for a in s.channels.chat)


def test_a_failed_delivery_is_recorded_then_retried_after_its_backoff(setup):
    s = setup()
    s.channels.chat_failures = 1
    s.ed.stab_wound()

    def chat_delivery():  # type: ignore[no-untyped-def]
        return next((d for d in s.store.deliveries() if d.channel is AlertChannel.CHAT), None)

    assert s.settled(lambda: getattr(chat_delivery(), "status", None) is DeliveryStatus.FAILED)
    failed = chat_delivery()
    assert (failed.attempts, failed.last_error) == (1, "webhook HTTP 503")
    assert failed.next_attempt_at == s.clock() + timedelta(seconds=1)
    time.sleep(0.3)
    assert chat_delivery().status is DeliveryStatus.FAILED  # not due yet: the clock stands
    s.clock.advance(seconds=1)
    assert s.settled(lambda: chat_delivery().status is DeliveryStatus.SENT)
    assert chat_delivery().attempts == 2
    assert len(s.channels.chat) == 1


def test_a_delivery_recorded_but_never_tried_is_sent_after_a_restart(setup):
    s = setup()
    alert = Alert(SITE_A, AlertKind.NEW_CANDIDATE, 1, "/queue")
    # what a process stopped between recording and sending leaves behind
    s.store.record(alert, channel=AlertChannel.CHAT, user_id=None, now=s.clock())
    assert s.settled(lambda: [d.status for d in s.store.deliveries()] == [DeliveryStatus.SENT])
    assert s.channels.chat == [alert]
    assert s.store.deliveries()[0].attempts == 1
