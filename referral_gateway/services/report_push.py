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
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from referral_gateway.domain.clock import Clock, system_clock
from referral_gateway.domain.report_period import ReportMonth, latest_due_month
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.domain.report_snapshot import ReportSnapshot
from referral_gateway.report_formats.signing import SigningKey, sign
from referral_gateway.storage.reports import ReportStore

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None = None
    already_received: bool = False


class ReportSender:
    """Posts a snapshot's envelope to the programme endpoint, signed afresh per attempt.

    Retries connection errors, timeouts, 408/425/429 and 5xx with exponential backoff
    (`first_backoff_s`, doubling, capped at `max_backoff_s`; a Retry-After in seconds is
    honoured up to the cap). Any other 4xx is final: a bad key or a refused report will not
    get better by asking again."""

    def __init__(
        self,
        endpoint: str,
        key: SigningKey,
        *,
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
        self.client = client or httpx.Client(timeout=timeout_s)
        self.clock = clock
        self.sleep = sleep
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s

    def send(self, snapshot: ReportSnapshot) -> SendResult:
        body = snapshot.envelope()
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            headers = sign(body, self.key, now=self.clock())
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
                    return SendResult(False, attempt, status, error)
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


@dataclass(frozen=True)
class PushOutcome:
    site: str
    month: ReportMonth
    result: PushResult
    report_id: str
    detail: str | None = None


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
        self, *, now: datetime | None = None, skip_month: ReportMonth | None = None
    ) -> list[PushOutcome]:
        now = now or self.clock()
        if self.sender is None:
            return []
        return [
            self.push(site, month, now=now)
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

    def push(self, site: str, month: ReportMonth, *, now: datetime) -> PushOutcome:
        snapshot = self.freeze(site, month, now=now)
        if self.sender is None:
            return PushOutcome(site, month, PushResult.FROZEN, snapshot.report_id)
        if not self.store.claim_push(site, month, now=now, lease=self.lease):
            return PushOutcome(site, month, PushResult.SKIPPED, snapshot.report_id)
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
        )
        if result.delivered:
            log.info("report %s %s sent to the programme", site, month)
            return PushOutcome(site, month, PushResult.SENT, snapshot.report_id)
        log.warning("report %s %s not sent: %s", site, month, result.error)
        return PushOutcome(site, month, PushResult.FAILED, snapshot.report_id, result.error)


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
