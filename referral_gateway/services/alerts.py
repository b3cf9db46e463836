"""Sending alerts: `Alerts` hears referral news (the pipeline's, the escalation job's, an
outside service's answer to an onward referral), assignments and the feed-silence watch's
changes, and a background thread of its own decides who hears what (the rules are in
`domain.alerts`), batches, records each delivery and sends it through the channels the
composition root hands in (Web Push, e-mail, team chat: `adapters.alerts`).

Hearing is a `queue.put`: the pipeline's thread (and so an ACK) never waits for the database
reads, the batching window or a channel. Sends run on a small pool so one slow channel does
not hold the others. A failed send is recorded as failed with its next attempt (exponential
backoff); the thread retries what is due; after the last attempt, or when the target is gone
for good, the delivery is recorded as given up. Logs hold counts, kinds and reasons only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from referral_gateway.domain.alerts import (
    PERSONAL_KINDS,
    Alert,
    AlertChannel,
    AlertEvent,
    AlertKind,
    AlertPreference,
    Batcher,
    BatchKey,
    DeliveryStatus,
    RetryPolicy,
    alert_event,
    feed_alert,
    feed_event,
    next_attempt,
    recipients,
)
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.feed_silence import SilenceChange
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.errors import DeliveryFailed
from referral_gateway.storage.alerts import AlertStore, Delivery, PushSubscription

log = logging.getLogger(__name__)

PushSend = Callable[[Alert, PushSubscription], None]
EmailSend = Callable[[Alert, str], None]
ChatSend = Callable[[Alert], None]
CHAT = "chat"


@dataclass(frozen=True)
class Senders:
    """The channels that are configured (None: not configured). Each raises DeliveryFailed."""

    push: PushSend | None = None
    email: EmailSend | None = None
    chat: ChatSend | None = None
    chat_sites: Callable[[str], bool] = lambda _site: True  # does this site have a room?


@dataclass(frozen=True)
class _Assigned:
    referral_id: str
    site: str
    assignee: str


@dataclass(frozen=True)
class _FeedChanged:
    site: str
    raised: bool


_ONWARD_NEWS = (ReferralUpdate.ONWARD_ACCEPTED, ReferralUpdate.ONWARD_REJECTED)


class Alerts:
    def __init__(
        self,
        store: AlertStore,
        senders: Senders,
        clock: Clock,
        *,
        batch_seconds: float = 0.0,
        retry: RetryPolicy | None = None,
        retry_poll_seconds: float = 1.0,
        send_threads: int = 4,
        on_sent: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.store = store
        self.senders = senders
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.retry_poll = retry_poll_seconds
        self.on_sent = on_sent
        self._batcher = Batcher(batch_seconds)
        self._inbox: queue.Queue[ReferralNews | _Assigned | _FeedChanged | None] = queue.Queue()
        self._pool = ThreadPoolExecutor(max_workers=send_threads, thread_name_prefix="alert-send")
        self._thread: threading.Thread | None = None
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()

    # -- hearing (any thread; never blocks) ------------------------------------------------
    def on_referral(self, news: ReferralNews) -> None:
        self._inbox.put(news)

    def on_assigned(self, referral_id: str, site: str, assignee: str) -> None:
        self._inbox.put(_Assigned(referral_id, site, assignee))

    def on_feed_change(self, change: SilenceChange) -> None:
        """A feed went silent or resumed (a `FeedWatch` listener): only its site is kept."""
        self._inbox.put(_FeedChanged(change.feed.site, change.raised))

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> Alerts:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(10)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self) -> None:
        last_retry = 0.0
        while True:
            now = time.monotonic()
            wait = self.retry_poll
            due_at = self._batcher.next_due()
            if due_at is not None:
                wait = min(wait, max(0.0, due_at - now))
            try:
                item = self._inbox.get(timeout=wait)
                heard = True
            except queue.Empty:
                heard = False
            if heard and item is None:
                self._flush(force=True)
                return
            try:
                if heard:
                    self._hear(item)
                self._flush(force=False)
                if time.monotonic() - last_retry >= self.retry_poll:
                    last_retry = time.monotonic()
                    self.retry_due()
            except Exception as exc:  # the thread must live on; never log values
                log.error("alerts: %s", type(exc).__name__)

    def _hear(self, item: object) -> None:
        if isinstance(item, _Assigned):
            event: AlertEvent | None = AlertEvent(
                AlertKind.ASSIGNED, item.site, item.referral_id, item.assignee
            )
        elif isinstance(item, _FeedChanged):
            event = feed_event(item.site, raised=item.raised)
            if event is not None:
                self._send_at_once(event)
            return
        else:
            assert isinstance(item, ReferralNews)
            unclaimed = item.update.value == "discharged" and self.store.unclaimed(item.referral_id)
            assignee = (
                self.store.assignee(item.referral_id) if item.update in _ONWARD_NEWS else None
            )
            event = alert_event(item, unclaimed=unclaimed, assignee=assignee)
        if event is None:
            return
        now = time.monotonic()
        for person in recipients(event, self.store.caseworkers()):
            key = BatchKey(f"user:{person.user_id}", event.site, event.kind)
            self._batcher.add(key, event.referral_id, now=now)
        if self._room_hears(event):
            self._batcher.add(BatchKey(CHAT, event.site, event.kind), event.referral_id, now=now)

    def _room_hears(self, event: AlertEvent) -> bool:
        return (
            self.senders.chat is not None
            and event.kind not in PERSONAL_KINDS
            and self.senders.chat_sites(event.site)
        )

    def _send_at_once(self, event: AlertEvent) -> None:
        """A feed's change: one alert of its own to each who hears it, never batched."""
        alert = feed_alert(event)
        people = self.store.caseworkers()
        by_id = {p.user_id: p for p in people}
        at = self.clock()
        for person in recipients(event, people):
            self._record_and_send(f"user:{person.user_id}", alert, by_id, at)
        if self._room_hears(event):
            self._record_and_send(CHAT, alert, by_id, at)

    def _flush(self, *, force: bool) -> None:
        now = float("inf") if force else time.monotonic()
        batches = self._batcher.due(now=now)
        if not batches:
            return
        people = {p.user_id: p for p in self.store.caseworkers()}
        at = self.clock()
        for batch in batches:
            self._record_and_send(batch.key.recipient, batch.alert, people, at)

    def _record_and_send(
        self, recipient: str, alert: Alert, people: Mapping[str, AlertPreference], at: datetime
    ) -> None:
        """Record a delivery per channel of `recipient` ("chat" or "user:<id>") and send it."""
        if recipient == CHAT:
            self._deliver(self.store.record(alert, channel=AlertChannel.CHAT, user_id=None, now=at))
            return
        user_id = recipient.removeprefix("user:")
        person = people.get(user_id)
        if person is None:
            return
        if AlertChannel.PUSH in person.channels and self.senders.push is not None:
            for sub in self.store.push_subscriptions(user_id):
                self._deliver(
                    self.store.record(
                        alert,
                        channel=AlertChannel.PUSH,
                        user_id=user_id,
                        target=str(sub.id),
                        now=at,
                    )
                )
        if AlertChannel.EMAIL in person.channels and person.email and self.senders.email:
            self._deliver(
                self.store.record(alert, channel=AlertChannel.EMAIL, user_id=user_id, now=at)
            )

    def retry_due(self) -> int:
        """Try again the failed deliveries whose next attempt is due; returns how many."""
        due = [d for d in self.store.due(now=self.clock()) if d.id not in self._in_flight]
        for delivery in due:
            self._deliver(delivery.id, attempts=delivery.attempts)
        return len(due)

    def _deliver(self, delivery_id: int, *, attempts: int = 0) -> None:
        """Attempt a delivery on the pool, unless it is in flight; `attempts`: how many
        were made when it was read (a stale read of one attempted since is skipped)."""
        with self._lock:
            if delivery_id in self._in_flight:
                return
            self._in_flight.add(delivery_id)
        self._pool.submit(self._attempt, delivery_id, attempts)

    def _attempt(self, delivery_id: int, attempts: int) -> None:
        try:
            delivery = self.store.get(delivery_id)
            waiting = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
            if delivery is None or delivery.attempts != attempts or delivery.status not in waiting:
                return
            try:
                self._send(delivery)
            except DeliveryFailed as failed:
                self._failed(delivery, failed.reason, permanent=failed.permanent)
            except Exception as exc:  # a channel's bug is a failed delivery, not a crash
                self._failed(delivery, type(exc).__name__, permanent=False)
            else:
                self.store.mark(delivery.id, DeliveryStatus.SENT, now=self.clock())
                if self.on_sent is not None:
                    self.on_sent(delivery)
        except Exception as exc:
            log.error("alert delivery bookkeeping failed: %s", type(exc).__name__)
        finally:
            with self._lock:
                self._in_flight.discard(delivery_id)

    def _send(self, delivery: Delivery) -> None:
        alert = delivery.alert
        if delivery.channel is AlertChannel.CHAT:
            if self.senders.chat is None:
                raise DeliveryFailed("chat not configured", permanent=True)
            self.senders.chat(alert)
        elif delivery.channel is AlertChannel.PUSH:
            sub = self.store.push_subscription(int(delivery.target))
            if sub is None or self.senders.push is None:
                raise DeliveryFailed("device no longer subscribed", permanent=True)
            try:
                self.senders.push(alert, sub)
            except DeliveryFailed as failed:
                if failed.permanent:  # the push service forgot the device: forget it too
                    self.store.remove_push_subscription(sub.id)
                raise
        else:
            _, _, address = self.store.preference(delivery.user_id or "")
            if not address or self.senders.email is None:
                raise DeliveryFailed("no e-mail address", permanent=True)
            self.senders.email(alert, address)

    def _failed(self, delivery: Delivery, reason: str, *, permanent: bool) -> None:
        now = self.clock()
        again = None if permanent else next_attempt(self.retry, delivery.attempts + 1, now=now)
        status = DeliveryStatus.GAVE_UP if again is None else DeliveryStatus.FAILED
        self.store.mark(delivery.id, status, now=now, error=reason, next_attempt_at=again)
        log.warning(
            "alert %s via %s %s after %d attempt(s): %s",
            delivery.alert.kind.value,
            delivery.channel.value,
            status.value,
            delivery.attempts + 1,
            reason,
        )
