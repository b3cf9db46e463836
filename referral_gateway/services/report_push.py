"""The monthly push: freeze the finished month's report per site, send it signed to the
programme, remember that it went.

    run()  (06:00 London on the 1st, and once at start-up to catch up)
      for each site: snapshot = stored one, or freeze the report now (never changes after)
                     claim the push in the database (once only, across processes)
                     send with retries and backoff → sent | failed (shown in the admin view)
      then retry earlier months that are still pending or failed

A restarted process finds the snapshot and the push state in the database: a sent month is
never sent again, an interrupted send is taken over when its lease runs out, and the hub
answers a repeat of a report it already holds with "replay", which counts as delivered.

Each site's month is signed with that site's key (`ReportSender.site_keys`, from
`[sites.X.programme]`), else the gateway's default key. An answer that asking again cannot
change (any 4xx but a replay, or no key for the site) marks the month failed *for good
under this configuration*: the push state keeps a fingerprint of the site's endpoint and
key, and scheduled retries skip the month until that changes (a new key, a new endpoint) or
an administrator pushes it by hand. Connection errors, timeouts, 408/425/429 and 5xx keep
being retried hourly.

`reissue` freezes the month again as the next version with a reason (a correction) and
pushes it; `drift` says whether the live figures still match what was frozen.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from referral_gateway.domain.clock import Clock, system_clock
from referral_gateway.domain.errors import ReportFormatError
from referral_gateway.domain.report_drift import FigureChange, changed_figures
from referral_gateway.domain.report_period import ReportMonth, latest_due_month
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.domain.report_snapshot import ReportSnapshot, correction_reason
from referral_gateway.report_formats.signing import SigningKey, sign
from referral_gateway.services.errors import ReissueRefused
from referral_gateway.storage.errors import VersionRace
from referral_gateway.storage.reports import PushStatus, ReportStore

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None = None
    already_received: bool = False
    permanent: bool = False  # asking again under the same configuration cannot help


class ReportSender:
    """Posts a snapshot's envelope to the programme endpoint, signed afresh per attempt.

    Retries connection errors, timeouts, 408/425/429 and 5xx with exponential backoff
    (`first_backoff_s`, doubling, capped at `max_backoff_s`; a Retry-After in seconds is
    honoured up to the cap). Any other 4xx is final: a bad key or a refused report will not
    get better by asking again.

    A snapshot is signed with its site's key from `site_keys`, else with `key` (the
    gateway's default); a site with neither is not sent at all (a final failure that says
    which site needs a key)."""

    def __init__(
        self,
        endpoint: str,
        key: SigningKey | None,
        *,
        site_keys: Mapping[str, SigningKey] | None = None,
        client: httpx.Client | None = None,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        first_backoff_s: float = 2.0,
        max_backoff_s: float = 120.0,
        timeout_s: float = 30.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.endpoint = endpoint
        self.key = key
        self.site_keys = {site.upper(): k for site, k in (site_keys or {}).items()}
        self.client = client or httpx.Client(timeout=timeout_s)
        self.clock = clock
        self.sleep = sleep
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s

    def key_for(self, site: str) -> SigningKey | None:
        return self.site_keys.get(site.upper(), self.key)

    def configuration_of(self, site: str) -> str:
        """A fingerprint of what a push for `site` depends on here (endpoint, key id and
        secret), kept with a refused month so its retries wait for this to change. One-way:
        the secret cannot be read back from it."""
        key = self.key_for(site)
        parts = [self.endpoint]
        if key is not None:
            parts += [key.key_id, hashlib.sha256(key.secret).hexdigest()]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]

    def send(self, snapshot: ReportSnapshot) -> SendResult:
        key = self.key_for(snapshot.site)
        if key is None:
            return SendResult(
                False,
                0,
                None,
                f"no programme key for site {snapshot.site}: add [sites.{snapshot.site}.programme]",
                permanent=True,
            )
        body = snapshot.envelope()
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            headers = sign(body, key, now=self.clock())
            headers["Content-Type"] = "application/json"
            retry_after: float | None = None
            try:
                response = self.client.post(
                    self.endpoint, content=body, headers=headers, timeout=self.timeout_s
                )
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__} talking to the programme endpoint"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return SendResult(True, attempt, status)
                outcome = _outcome(response)
                if status == 409 and outcome == "replay":
                    return SendResult(True, attempt, status, already_received=True)
                error = f"programme endpoint answered {status}" + (
                    f" ({outcome})" if outcome else ""
                )
                if status not in RETRYABLE:
                    return SendResult(False, attempt, status, error, permanent=True)
                retry_after = _retry_after(response)
            if attempt < self.attempts:
                self.sleep(self._backoff(attempt, retry_after))
        return SendResult(False, self.attempts, status, error)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        wait: float = self.first_backoff_s * 2.0 ** (attempt - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return float(min(wait, self.max_backoff_s))


class PushResult(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # already sent, or another process is sending it
    FROZEN = "frozen"  # no programme endpoint configured: snapshot kept, nothing sent
    REFUSED = "refused"  # refused for good before, and the configuration has not changed


@dataclass(frozen=True)
class PushOutcome:
    site: str
    month: ReportMonth
    result: PushResult
    report_id: str
    detail: str | None = None
    version: int = 1


@dataclass(frozen=True)
class MonthDrift:
    """The live figures of a frozen month no longer match its newest version."""

    site: str
    month: ReportMonth
    version: int
    frozen_at: datetime
    sent_at: datetime | None  # None: not (yet) sent to the programme
    changes: tuple[FigureChange, ...]


class MonthlyPush:
    def __init__(
        self,
        store: ReportStore,
        build_report: Callable[[str, ReportMonth], PublishedReport],
        sites: Callable[[], Iterable[str]],
        sender: ReportSender | None,
        *,
        clock: Clock = system_clock,
        lease: timedelta = timedelta(minutes=30),
        new_report_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.store = store
        self.build_report = build_report
        self.sites = sites
        self.sender = sender
        self.clock = clock
        self.lease = lease
        self.new_report_id = new_report_id

    def run(self) -> list[PushOutcome]:
        """Push the newest due month for every site, then retry older unsent months."""
        now = self.clock()
        month = latest_due_month(now)
        outcomes = [self.push(site, month, now=now) for site in sorted(set(self.sites()))]
        outcomes += self.retry_unsent(now=now, skip_month=month)
        return outcomes

    def retry_unsent(
        self,
        *,
        now: datetime | None = None,
        skip_month: ReportMonth | None = None,
        force: bool = False,
    ) -> list[PushOutcome]:
        """Send the unsent months again. A month refused for good is left alone until the
        site's push configuration changes, unless `force` (an administrator asking)."""
        now = now or self.clock()
        if self.sender is None:
            return []
        return [
            self.push(site, month, now=now, force=force)
            for site, month in self.store.unsent_months()
            if month != skip_month
        ]

    def freeze(self, site: str, month: ReportMonth, *, now: datetime) -> ReportSnapshot:
        """The site's snapshot for a finished month: the stored one, or frozen now."""
        if now < month.push_due_at():
            raise ValueError(f"{month} is not finished and due until {month.push_due_at()}")
        existing = self.store.snapshot(site, month)
        if existing is not None:
            if self.sender is not None:
                return self.store.freeze(existing, track_push=True)  # records the push row
            return existing
        report = self.build_report(site, month)
        snapshot = ReportSnapshot.freeze(report, report_id=self.new_report_id(), created_at=now)
        return self.store.freeze(snapshot, track_push=self.sender is not None)

    def push(
        self, site: str, month: ReportMonth, *, now: datetime, force: bool = False
    ) -> PushOutcome:
        snapshot = self.freeze(site, month, now=now)
        version = snapshot.version
        if self.sender is None:
            return PushOutcome(site, month, PushResult.FROZEN, snapshot.report_id, None, version)
        state = self.store.push_state(site, month)
        if (
            not force
            and state is not None
            and state.status is PushStatus.FAILED
            and state.refused_under == self.sender.configuration_of(site)
        ):
            return PushOutcome(
                site, month, PushResult.REFUSED, snapshot.report_id, state.last_error, version
            )
        if not self.store.claim_push(site, month, now=now, lease=self.lease):
            return PushOutcome(site, month, PushResult.SKIPPED, snapshot.report_id, None, version)
        try:
            result = self.sender.send(snapshot)
        except Exception as exc:  # the state must not stay "sending" until the lease ends
            result = SendResult(False, 1, None, f"{type(exc).__name__} while sending")
        self.store.finish_push(
            site,
            month,
            delivered=result.delivered,
            now=self.clock(),
            attempts=result.attempts,
            status_code=result.status_code,
            error=result.error,
            refused_under=self.sender.configuration_of(site) if result.permanent else None,
        )
        if result.delivered:
            log.info("report %s %s version %s sent to the programme", site, month, version)
            return PushOutcome(site, month, PushResult.SENT, snapshot.report_id, None, version)
        log.warning("report %s %s not sent: %s", site, month, result.error)
        return PushOutcome(
            site, month, PushResult.FAILED, snapshot.report_id, result.error, version
        )

    def reissue(
        self, site: str, month: ReportMonth, *, reason: str, now: datetime | None = None
    ) -> PushOutcome:
        """Freeze the month's report again, as built now, as the next version with `reason`
        (a correction), and push it. Refused (ReissueRefused) when the month has no frozen
        version yet, the reason is empty, or the figures are the same as the newest
        version's: a correction must correct something."""
        now = now or self.clock()
        try:
            reason = correction_reason(reason)
        except ReportFormatError as exc:
            raise ReissueRefused(str(exc)) from None
        current = self.store.snapshot(site, month)
        if current is None:
            raise ReissueRefused(
                f"{site} {month} has not been frozen yet: the monthly push freezes it first"
            )
        report = self.build_report(site, month)
        snapshot = ReportSnapshot.freeze(
            report,
            report_id=self.new_report_id(),
            created_at=now,
            version=current.version + 1,
            reason=reason,
        )
        if snapshot.checksum == current.checksum:
            raise ReissueRefused(
                f"{site} {month}: the figures are the same as version {current.version}'s"
            )
        try:
            self.store.reissue(snapshot, track_push=self.sender is not None)
        except VersionRace:
            raise ReissueRefused(
                f"{site} {month}: another re-issue stored version {snapshot.version} first"
            ) from None
        log.info("report %s %s re-issued as version %s", site, month, snapshot.version)
        return self.push(site, month, now=now, force=True)

    def drift(self, site: str, month: ReportMonth) -> MonthDrift | None:
        """How the month's live figures differ from its newest frozen version (None: it
        is not frozen, or they match)."""
        current = self.store.snapshot(site, month)
        if current is None:
            return None
        changes = changed_figures(current.report(), self.build_report(site, month))
        if not changes:
            return None
        state = self.store.push_state(site, month)
        sent_at = state.sent_at if state is not None and state.status is PushStatus.SENT else None
        return MonthDrift(site, month, current.version, current.created_at, sent_at, changes)


def _outcome(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("outcome") if isinstance(data, dict) else None
    reason = data.get("reason") if isinstance(data, dict) else None
    if isinstance(value, str) and value == "refused" and isinstance(reason, str):
        return reason[:40]
    return value[:40] if isinstance(value, str) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
