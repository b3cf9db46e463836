"""Feed silence in SQL: each sender's last message, and the alarms raised and cleared.

`feed_alarm` is the published record of the alarm: one row per silence, `raised_at` when the
feed went quiet, `cleared_at` when it spoke again. Alert channels read it
(`alarms_changed_since`) or hear it as it happens (`services.feed_watch.FeedWatch.listeners`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from referral_gateway.domain.feed_silence import Feed, SilenceChange
from referral_gateway.storage.inbox import COUNTS, INBOX
from referral_gateway.storage.operations_tables import FeedAlarmRow

FEED_ALARM: Table = FeedAlarmRow.__table__  # type: ignore[attr-defined]


def last_messages(conn: Connection) -> list[Feed]:
    """Every sender ever counted, with its newest stored message (one index lookup each)."""
    senders = conn.execute(
        select(COUNTS.c.channel, COUNTS.c.sender)
        .distinct()
        .order_by(COUNTS.c.channel, COUNTS.c.sender)
    ).all()
    feeds = []
    for channel, sender in senders:
        newest = conn.execute(
            select(INBOX.c.received_at, INBOX.c.site)
            .where(INBOX.c.channel == channel, INBOX.c.sender == sender)
            .order_by(INBOX.c.received_at.desc())
            .limit(1)
        ).first()
        if newest is not None:
            feeds.append(Feed(channel, sender, newest.site or "", newest.received_at))
    return feeds


def open_alarms(conn: Connection, *, sites: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The alarms not cleared yet, oldest first (only those of `sites` when given)."""
    stmt = select(FEED_ALARM).where(FEED_ALARM.c.cleared_at.is_(None)).order_by(FEED_ALARM.c.id)
    if sites is not None:
        stmt = stmt.where(FEED_ALARM.c.site.in_(sorted(sites)))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def record_changes(engine: Engine, changes: Iterable[SilenceChange], now: datetime) -> None:
    with engine.begin() as conn:
        for change in changes:
            feed = change.feed
            if change.raised:
                conn.execute(
                    insert(FEED_ALARM).values(
                        channel=feed.channel,
                        sender=feed.sender,
                        site=feed.site,
                        raised_at=now,
                        last_message_at=feed.last_message_at,
                        allowed_minutes=int(change.allowance.total_seconds() // 60),
                    )
                )
            else:
                conn.execute(
                    update(FEED_ALARM)
                    .where(
                        FEED_ALARM.c.channel == feed.channel,
                        FEED_ALARM.c.sender == feed.sender,
                        FEED_ALARM.c.cleared_at.is_(None),
                    )
                    .values(cleared_at=now)
                )


def alarms_changed_since(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    """Alarms raised or cleared at or after `since`: what an alert channel sends on."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(FEED_ALARM)
            .where(or_(FEED_ALARM.c.raised_at >= since, and_(FEED_ALARM.c.cleared_at >= since)))
            .order_by(FEED_ALARM.c.id)
        )
        return [dict(r._mapping) for r in rows]
