"""The feed-silence watch on a real database, with an injected clock: raised when a sender
is quiet longer than its site allows, recorded for pages, metrics and alert channels,
heard by listeners, cleared when the sender speaks again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from referral_gateway.domain.feed_silence import SilencePatterns, parse_silence_patterns
from referral_gateway.services.feed_watch import FeedWatch
from referral_gateway.storage.database import migrate
from referral_gateway.storage.feed_alarms import alarms_changed_since, open_alarms
from referral_gateway.storage.inbox import Arrival, InboxStore
from tests.conftest import FixedClock

MORNING = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)  # 09:00 in London (GMT)
EPIC = "EPIC^RXA01"


def arrive(inbox: InboxStore, at: datetime, key: str, sender: str = EPIC, site: str = "RXA01"):
    inbox.store_batch([Arrival("hl7v2", sender, key, "ADT^A04", site, b"MSH|^~\\&|", at)])


def test_a_quiet_feed_raises_one_alarm_that_clears_itself_when_messages_resume(engine, keyring):
    migrate(engine)
    clock = FixedClock(MORNING)
    inbox = InboxStore(engine, keyring)
    heard = []
    watch = FeedWatch(engine, SilencePatterns(), clock, listeners=[heard.append])
    arrive(inbox, clock(), "1")
    arrive(inbox, clock(), "2", sender="CERNER^RXB02", site="RXB02")

    clock.advance(minutes=29)
    assert watch.check() == []

    arrive(inbox, clock(), "3", sender="CERNER^RXB02", site="RXB02")  # only one feed goes quiet
    clock.advance(minutes=2)
    raised = watch.check()
    assert [(c.feed.sender, c.raised) for c in raised] == [(EPIC, True)]
    with engine.connect() as conn:
        alarms = open_alarms(conn)
    assert [(a["sender"], a["site"], a["allowed_minutes"]) for a in alarms] == [(EPIC, "RXA01", 30)]
    assert alarms[0]["last_message_at"] == MORNING

    clock.advance(minutes=10)
    assert watch.check() == []  # still quiet: no second alarm

    arrive(inbox, clock(), "4")
    cleared = watch.check()
    assert [(c.feed.sender, c.raised) for c in cleared] == [(EPIC, False)]
    with engine.connect() as conn:
        assert open_alarms(conn) == []
    assert [(c.feed.sender, c.raised) for c in heard] == [(EPIC, True), (EPIC, False)]
    record = alarms_changed_since(engine, MORNING)
    assert [(r["sender"], r["raised_at"], r["cleared_at"]) for r in record] == [
        (EPIC, MORNING + timedelta(minutes=31), MORNING + timedelta(minutes=41))
    ]


def test_at_night_the_watch_waits_two_hours_and_a_site_may_wait_longer(engine, keyring):
    migrate(engine)
    night = datetime(2026, 1, 14, 0, 30, tzinfo=UTC)
    clock = FixedClock(night)
    inbox = InboxStore(engine, keyring)
    patterns = parse_silence_patterns(
        {"sites": {"RXB02": {"feed_silence": {"night_minutes": 300}}}}
    )
    watch = FeedWatch(engine, patterns, clock)
    arrive(inbox, night, "1")
    arrive(inbox, night, "2", sender="CERNER^RXB02", site="RXB02")

    clock.advance(minutes=119)
    assert watch.check() == []
    clock.advance(minutes=2)
    assert [c.feed.sender for c in watch.check()] == [EPIC]
    clock.advance(minutes=180)
    assert [c.feed.sender for c in watch.check()] == ["CERNER^RXB02"]
