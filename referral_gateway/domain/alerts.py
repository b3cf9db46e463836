"""Alerts beyond the open tab: who hears what, how arrivals are batched, and what an alert may
say.

An alert leaves the hospital's systems and shows on a lock screen, so it says four things
only: the site (its ODS code), the kind of event, how many, and a link into the gateway. It
is built from those four values and nothing else: `Alert` refuses a site that is not an ODS
code, a count that is not a positive whole number and a link that is not one of the queue's
fixed addresses (`QUEUE_LINKS`) or a referral's random id, and `alert_text` writes the words
from fixed phrases. A name, NHS number, date of birth, address, phone or visit number
therefore has no way in.

What triggers one (`alert_event`, `recipients`):
- a new candidate at a site: the youth workers and team leads of that site who are on shift;
  a candidate on suspicion only ("?assault") is its own kind, so the words say "possible
  assault" where a definite one says "assault", and the two are never batched together;
- a referral assigned to someone: that person (on shift or not: it is now theirs);
- an escalation (nobody claimed it in time): the team leads of the site who are on shift;
- a candidate still unclaimed when the young person is discharged: the site's youth workers
  and team leads on shift (the teachable moment is going out of the door);
- an onward referral accepted or declined by the outside service: the referral's assigned
  youth worker (on shift or not, as for an assignment); never the service's reason;
- a feed of a site gone silent, or speaking again: the site's team leads on shift (one alert
  per change, linking to the queue).
Each person chooses their channels (Web Push to each device they turned alerts on for,
e-mail); the team-chat webhook is the site team's room and hears every alert of its site
but those for one person (an assignment, an onward referral's answer).

Batching (`Batcher`): events for the same recipient, site and kind arriving within the
window become one alert with their count; a window of zero sends each at once.

Deliveries are retried with exponential backoff (`next_attempt`) and given up after a
number of attempts; each attempt is recorded by the service.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from referral_gateway.domain.errors import AlertError, SiteConfigError
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate

# an ODS code starts with a letter: so no NHS number, phone or date can pass for a site
SITE_CODE = re.compile(r"^[A-Z][A-Z0-9]{2,11}$")
REFERRAL_LINK = re.compile(
    r"^/referrals/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
QUEUE_LINK = "/queue"  # the person's own start view (a youth worker's is "My caseload")
NEW_TAB_LINK = "/queue?tab=new"  # the unclaimed referrals, most urgent first
CASELOAD_LINK = "/queue?tab=caseload"  # the referrals in the person's own name
# the only queue addresses an alert may carry: fixed strings, so nothing can be added to them
QUEUE_LINKS = frozenset({QUEUE_LINK, NEW_TAB_LINK, CASELOAD_LINK})


class AlertKind(enum.StrEnum):
    NEW_CANDIDATE = "new_candidate"  # a definite assault candidate
    NEW_POSSIBLE_CANDIDATE = "new_possible_candidate"  # a suspected one ("?assault")
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    DISCHARGED_UNCLAIMED = "discharged_unclaimed"
    ONWARD_ACCEPTED = "onward_accepted"
    ONWARD_DECLINED = "onward_declined"
    FEED_SILENT = "feed_silent"
    FEED_RESUMED = "feed_resumed"


# for one named person (the assignee), never the site's room
PERSONAL_KINDS = frozenset(
    {AlertKind.ASSIGNED, AlertKind.ONWARD_ACCEPTED, AlertKind.ONWARD_DECLINED}
)
# about a feed, not a referral: for the site's team leads on shift, each change alone
FEED_KINDS = frozenset({AlertKind.FEED_SILENT, AlertKind.FEED_RESUMED})
# news of referrals nobody has yet: they wait on the queue's New tab
_UNCLAIMED_KINDS = frozenset(
    {
        AlertKind.NEW_CANDIDATE,
        AlertKind.NEW_POSSIBLE_CANDIDATE,
        AlertKind.ESCALATED,
        AlertKind.DISCHARGED_UNCLAIMED,
    }
)
_CASELOAD_KINDS = PERSONAL_KINDS  # news of a referral in the person's own name


class AlertChannel(enum.StrEnum):
    PUSH = "push"
    EMAIL = "email"
    CHAT = "chat"  # the site team's webhook: not a personal choice


PERSONAL_CHANNELS = (AlertChannel.PUSH, AlertChannel.EMAIL)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, not tried yet
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; another is due at next_attempt_at
    GAVE_UP = "gave_up"  # failed too often (or the endpoint is gone for good)


_PHRASES = {
    AlertKind.NEW_CANDIDATE: (
        "new assault candidate on the queue",
        "new assault candidates on the queue",
    ),
    AlertKind.NEW_POSSIBLE_CANDIDATE: (
        "new possible assault candidate on the queue",
        "new possible assault candidates on the queue",
    ),
    AlertKind.ASSIGNED: ("referral assigned to you", "referrals assigned to you"),
    AlertKind.ESCALATED: ("referral unclaimed: escalated", "referrals unclaimed: escalated"),
    AlertKind.DISCHARGED_UNCLAIMED: (
        "unclaimed candidate discharged",
        "unclaimed candidates discharged",
    ),
    AlertKind.ONWARD_ACCEPTED: ("onward referral accepted", "onward referrals accepted"),
    AlertKind.ONWARD_DECLINED: (
        "onward referral declined by the service",
        "onward referrals declined by the service",
    ),
    AlertKind.FEED_SILENT: ("feed silent", "feeds silent"),
    AlertKind.FEED_RESUMED: ("feed resumed", "feeds resumed"),
}


@dataclass(frozen=True, slots=True)
class Alert:
    """Site, kind, count and link: all an alert may hold (checked on construction)."""

    site: str
    kind: AlertKind
    count: int
    link: str

    def __post_init__(self) -> None:
        if not isinstance(self.site, str) or not SITE_CODE.match(self.site):
            raise AlertError("an alert's site is an ODS code")
        if not isinstance(self.kind, AlertKind):
            raise AlertError("an alert's kind is an AlertKind")
        if type(self.count) is not int or self.count < 1:
            raise AlertError("an alert's count is a positive whole number")
        if self.link not in QUEUE_LINKS and not REFERRAL_LINK.match(str(self.link)):
            raise AlertError("an alert links to the queue or to a referral's random id")


def queue_link(kind: AlertKind) -> str:
    """Where an alert about several referrals of `kind` opens the queue: news of unclaimed
    referrals (arrivals, escalations, discharges) on the New tab, where they wait (a youth
    worker's "/queue" is their own caseload, which holds none of them); news of referrals
    already in someone's name on their caseload; a feed's news on the person's start view."""
    if kind in _UNCLAIMED_KINDS:
        return NEW_TAB_LINK
    if kind in _CASELOAD_KINDS:
        return CASELOAD_LINK
    return QUEUE_LINK


def alert_for(site: str, kind: AlertKind, referral_ids: Sequence[str]) -> Alert:
    """One alert for the referrals of a batch: a single one links to its page, several to
    their tab of the queue (`queue_link`)."""
    link = f"/referrals/{referral_ids[0]}" if len(referral_ids) == 1 else queue_link(kind)
    return Alert(site, kind, len(referral_ids), link)


def alert_text(alert: Alert) -> str:
    """The words of an alert, from fixed phrases: "RXX01: 2 new assault candidates on the
    queue", "RXX01: 1 new possible assault candidate on the queue"."""
    one, many = _PHRASES[alert.kind]
    return f"{alert.site}: {alert.count} {one if alert.count == 1 else many}"


ALERT_TITLE = "Referral gateway"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """Something that may alert someone: its kind, site, referral ("" for a feed's news) and
    (for an assignment or an onward referral's answer) the person it is now with."""

    kind: AlertKind
    site: str
    referral_id: str
    assignee: str | None = None


_ONWARD = {
    ReferralUpdate.ONWARD_ACCEPTED: AlertKind.ONWARD_ACCEPTED,
    ReferralUpdate.ONWARD_REJECTED: AlertKind.ONWARD_DECLINED,
}


def alert_event(
    news: ReferralNews, *, unclaimed: bool, assignee: str | None = None
) -> AlertEvent | None:
    """What referral news means for alerts; `unclaimed`: the referral is still new and
    nobody has it; `assignee`: who has it. Only arrivals, escalations, unclaimed discharges
    and a service's answer to an onward referral (for its assignee) alert."""
    if news.update in _ONWARD:
        if not assignee:
            return None
        return AlertEvent(_ONWARD[news.update], news.site, news.referral_id, assignee)
    if news.update is ReferralUpdate.NEW:
        kind = AlertKind.NEW_POSSIBLE_CANDIDATE if news.possible else AlertKind.NEW_CANDIDATE
        return AlertEvent(kind, news.site, news.referral_id)
    if news.update is ReferralUpdate.ESCALATED:
        return AlertEvent(AlertKind.ESCALATED, news.site, news.referral_id)
    if news.update is ReferralUpdate.DISCHARGED and unclaimed:
        return AlertEvent(AlertKind.DISCHARGED_UNCLAIMED, news.site, news.referral_id)
    return None


def feed_event(site: str, *, raised: bool) -> AlertEvent | None:
    """A feed of `site` went silent (`raised`) or spoke again; None for a feed with no known
    site (no team to tell)."""
    if not isinstance(site, str) or not SITE_CODE.match(site):
        return None
    return AlertEvent(AlertKind.FEED_SILENT if raised else AlertKind.FEED_RESUMED, site, "")


def feed_alert(event: AlertEvent) -> Alert:
    """A feed's change is an alert of its own (count 1), linking to the queue."""
    if event.kind not in FEED_KINDS:
        raise AlertError("only a feed's news makes an alert without referrals")
    return Alert(event.site, event.kind, 1, QUEUE_LINK)


@dataclass(frozen=True, slots=True)
class AlertPreference:
    """A member of staff as alerts see them: role, sites and their own choices."""

    user_id: str
    team_lead: bool
    sites: frozenset[str]
    on_shift: bool = False
    channels: frozenset[AlertChannel] = frozenset()
    email: str = ""


def recipients(event: AlertEvent, people: Iterable[AlertPreference]) -> list[AlertPreference]:
    """Who hears of `event` (see the module's rules), among active caseworkers."""
    chosen: list[AlertPreference] = []
    for person in people:
        if not person.channels:
            continue
        if event.kind in PERSONAL_KINDS:
            if person.user_id == event.assignee:
                chosen.append(person)
            continue
        if event.site not in person.sites or not person.on_shift:
            continue
        leads_only = event.kind is AlertKind.ESCALATED or event.kind in FEED_KINDS
        if leads_only and not person.team_lead:
            continue
        chosen.append(person)
    return chosen


@dataclass(frozen=True, slots=True)
class BatchKey:
    recipient: str  # "user:<id>" or "chat"
    site: str
    kind: AlertKind


@dataclass
class _Open:
    due: float
    referral_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Batch:
    key: BatchKey
    alert: Alert


class Batcher:
    """Gathers events per recipient, site and kind for `window` seconds after the first
    (times are monotonic seconds, passed in)."""

    def __init__(self, window: float) -> None:
        self.window = max(0.0, window)
        self._open: dict[BatchKey, _Open] = {}

    def add(self, key: BatchKey, referral_id: str, *, now: float) -> None:
        batch = self._open.setdefault(key, _Open(due=now + self.window))
        if referral_id not in batch.referral_ids:
            batch.referral_ids.append(referral_id)

    def due(self, *, now: float) -> list[Batch]:
        """The batches whose window has closed, removed from the open ones."""
        ready = [k for k, b in self._open.items() if b.due <= now]
        return [Batch(k, alert_for(k.site, k.kind, self._open.pop(k).referral_ids)) for k in ready]

    def next_due(self) -> float | None:
        return min((b.due for b in self._open.values()), default=None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: `first`, then doubling, at most `longest`; give up after
    `attempts` attempts in all."""

    first: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(minutes=10)
    attempts: int = 6


def next_attempt(policy: RetryPolicy, attempts_made: int, *, now: datetime) -> datetime | None:
    """When to try again after `attempts_made` failed attempts, or None to give up."""
    if attempts_made >= policy.attempts:
        return None
    wait: timedelta = min(policy.first * (2 ** (attempts_made - 1)), policy.longest)
    return now + wait


def site_webhooks(data: Mapping[str, Any]) -> dict[str, str]:
    """The per-site team-chat webhooks of a site file: `[sites.<code>.alerts] webhook_url`."""
    out: dict[str, str] = {}
    sites = data.get("sites", {})
    if not isinstance(sites, Mapping):
        return out
    for code, table in sites.items():
        alerts = table.get("alerts") if isinstance(table, Mapping) else None
        if alerts is None:
            continue
        where = f"sites.{code}.alerts"
        if not isinstance(alerts, Mapping) or set(alerts) - {"webhook_url"}:
            raise SiteConfigError(f"{where}: only webhook_url is allowed")
        url = alerts.get("webhook_url", "")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise SiteConfigError(f"{where}.webhook_url: expected an http(s) URL")
        out[str(code)] = url
    return out
