"""The feed-silence watch: a scheduled job (`feed_silence`, once across instances) compares
each sender's last message with its site's pattern, raises an alarm for a feed gone quiet
and clears it when the feed speaks again.

Each change is recorded (`feed_alarm`, read by the team lead's and administrator's pages, the
metrics and alert channels) and handed to `listeners` (an alert channel subscribes here). It
carries the channel, the sender, the site and times: never anything about a patient.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from referral_gateway.domain.clock import Clock
from referral_gateway.domain.feed_silence import SilenceChange, SilencePatterns, silence_changes
from referral_gateway.storage.feed_alarms import last_messages, open_alarms, record_changes

log = logging.getLogger(__name__)


@dataclass
class FeedWatch:
    engine: Engine
    patterns: SilencePatterns
    clock: Clock
    listeners: list[Callable[[SilenceChange], None]] = field(default_factory=list)

    def check(self) -> list[SilenceChange]:
        now = self.clock()
        with self.engine.connect() as conn:
            feeds = last_messages(conn)
            alarmed = [(a["channel"], a["sender"]) for a in open_alarms(conn)]
        changes = silence_changes(feeds, alarmed, self.patterns, now)
        if not changes:
            return []
        record_changes(self.engine, changes, now)
        for change in changes:
            feed = change.feed
            if change.raised:
                log.warning(
                    "feed silent: %s sender %s (site %s) quiet for over %d minutes",
                    feed.channel,
                    feed.sender,
                    feed.site or "-",
                    change.allowance.total_seconds() // 60,
                )
            else:
                log.info(
                    "feed resumed: %s sender %s (site %s)",
                    feed.channel,
                    feed.sender,
                    feed.site or "-",
                )
            for listener in list(self.listeners):
                try:
                    listener(change)
                except Exception as exc:  # a listener never stops the watch
                    log.warning("feed-silence listener failed: %s", type(exc).__name__)
        return changes
