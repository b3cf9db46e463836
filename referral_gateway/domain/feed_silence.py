"""Feed silence: when a sender has been quiet for longer than its site expects.

A silent ADT feed is the commonest way an interface fails, and here it would mean young
people are missed without anyone noticing. Each site has an expected activity pattern: by
default a feed may be quiet for 30 minutes between 07:00 and 23:00 local time and for 2 hours
otherwise. The allowance is the one in force at the moment of looking, so a feed quiet since
06:20 alarms at 07:00 (40 minutes without a message in the day).

Configured per site in the site file (every key optional)::

    [sites.RXX01.feed_silence]
    day_starts = "07:00"
    day_ends = "23:00"
    day_minutes = 30       # quiet this long in the day: alarm
    night_minutes = 120    # quiet this long at night: alarm
    enabled = true         # false: never alarm for this site's senders

The alarm is raised once, stays while the feed is quiet, and clears itself when a message
arrives (`silence_changes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from referral_gateway.domain.errors import SiteConfigError

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True, slots=True)
class SilencePattern:
    day_starts: time = time(7, 0)
    day_ends: time = time(23, 0)
    day_allowance: timedelta = timedelta(minutes=30)
    night_allowance: timedelta = timedelta(hours=2)
    enabled: bool = True

    def allowance_at(self, now: datetime, zone: tzinfo = LONDON) -> timedelta:
        local = now.astimezone(zone).time()
        if self.day_starts <= self.day_ends:
            day = self.day_starts <= local < self.day_ends
        else:  # a day that runs past midnight
            day = local >= self.day_starts or local < self.day_ends
        return self.day_allowance if day else self.night_allowance

    def is_silent(self, last_message_at: datetime, now: datetime, zone: tzinfo = LONDON) -> bool:
        return self.enabled and now - last_message_at > self.allowance_at(now, zone)


@dataclass(frozen=True, slots=True)
class Feed:
    """A sender as the silence watch sees it: its last message and its site."""

    channel: str
    sender: str
    site: str
    last_message_at: datetime


@dataclass(frozen=True, slots=True)
class SilenceChange:
    feed: Feed
    raised: bool  # True: the feed went quiet; False: it spoke again
    allowance: timedelta


class SilencePatterns:
    """The pattern of each configured site, and the default for every other."""

    def __init__(
        self,
        sites: Mapping[str, SilencePattern] | None = None,
        default: SilencePattern | None = None,
        zone: tzinfo = LONDON,
    ) -> None:
        self._sites = {k.strip().upper(): v for k, v in (sites or {}).items()}
        self.default = default or SilencePattern()
        self.zone = zone

    def for_site(self, site: str) -> SilencePattern:
        return self._sites.get(site.strip().upper(), self.default)


def silence_changes(
    feeds: Iterable[Feed],
    alarmed: Iterable[tuple[str, str]],
    patterns: SilencePatterns,
    now: datetime,
) -> list[SilenceChange]:
    """What to raise and what to clear: `alarmed` are the (channel, sender) with an open alarm."""
    open_now = set(alarmed)
    changes = []
    for feed in feeds:
        pattern = patterns.for_site(feed.site)
        allowance = pattern.allowance_at(now, patterns.zone)
        silent = pattern.is_silent(feed.last_message_at, now, patterns.zone)
        key = (feed.channel, feed.sender)
        if silent and key not in open_now:
            changes.append(SilenceChange(feed, True, allowance))
        elif not silent and key in open_now:
            changes.append(SilenceChange(feed, False, allowance))
    return changes


_KEYS = frozenset({"day_starts", "day_ends", "day_minutes", "night_minutes", "enabled"})


def parse_silence_patterns(data: Mapping[str, Any], zone: tzinfo = LONDON) -> SilencePatterns:
    """The `[sites.X.feed_silence]` tables of a loaded site file (other keys are ignored)."""
    sites = data.get("sites", {})
    patterns: dict[str, SilencePattern] = {}
    if isinstance(sites, Mapping):
        for code, table in sites.items():
            if isinstance(table, Mapping) and "feed_silence" in table:
                patterns[str(code)] = _pattern(f"sites.{code}.feed_silence", table["feed_silence"])
    return SilencePatterns(patterns, zone=zone)


def _pattern(where: str, table: object) -> SilencePattern:
    if not isinstance(table, Mapping):
        raise SiteConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SiteConfigError(
            f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(_KEYS))})"
        )
    base = SilencePattern()
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SiteConfigError(f"{where}.enabled: expected true or false")
    return SilencePattern(
        day_starts=_clock_time(where, table, "day_starts", base.day_starts),
        day_ends=_clock_time(where, table, "day_ends", base.day_ends),
        day_allowance=_minutes(where, table, "day_minutes", base.day_allowance),
        night_allowance=_minutes(where, table, "night_minutes", base.night_allowance),
        enabled=enabled,
    )


def _clock_time(where: str, table: Mapping[str, Any], key: str, default: time) -> time:
    value = table.get(key)
    if value is None:
        return default
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise SiteConfigError(f'{where}.{key}: expected a time like "07:00"') from None


def _minutes(where: str, table: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    value = table.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SiteConfigError(f"{where}.{key}: expected a whole number of minutes, at least 1")
    return timedelta(minutes=value)
