"""Scheduled jobs, wired on an APScheduler `BackgroundScheduler`.

The jobs themselves are plain functions (`services.retention`, `services.casework`) that
tests call directly with a fixed clock; this module only runs them on their intervals:

- `retention_identifiable`: erase identifiable data that is due (declined, not approached,
  withdrawn, stale and voided candidates; consented records past their retention), case
  note bodies included;
- `retention_raw_messages`: erase raw payloads of processed messages past their retention;
  (both every `retention_interval_minutes`)
- `escalate_untouched`: mark new referrals nobody claimed within `escalate_after_minutes` as
  escalated and announce each to the gateway's referral listeners (the live queue, where the
  team leads see it), every `escalation_interval_seconds`;
- `onward_outbox`: send the onward-referral deliveries that are due (`services.onward`),
  every `outbox_interval_seconds`.

Each logs counts only. A run that fails is logged and tried again at the next interval.

Every job runs through `storage.job_runs.JobRuns` (`once`): on PostgreSQL, with several
instances on one database, each scheduled moment runs once across them and a run whose
instance died is taken over (at the job's next tick, or by the takeover sweep every
`job_takeover_seconds`). Interval triggers are aligned to the epoch, so every instance fires
on the same moments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from consent.retention import RetentionPolicy
from referral_gateway.config import Settings
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.casework import escalate_untouched
from referral_gateway.services.retention import erase_identifiable, erase_raw_messages
from referral_gateway.storage.job_runs import JobRuns, RunResult, interval_slot

if TYPE_CHECKING:
    from referral_gateway.services.feed_watch import FeedWatch
    from referral_gateway.wiring.gateway import Gateway

log = logging.getLogger(__name__)

ALIGNED = datetime(2000, 1, 1, tzinfo=UTC)  # interval triggers count from here


def aligned_every(seconds: int) -> IntervalTrigger:
    """Fire on the multiples of `seconds` since 2000-01-01 UTC: the same moments on every
    instance, so their runs fall in the same slot."""
    return IntervalTrigger(seconds=seconds, start_date=ALIGNED, timezone=UTC)


def once(
    runs: JobRuns,
    job: str,
    fn: Callable[..., object],
    *,
    slot: Callable[[datetime], str | None],
) -> Callable[..., None]:
    """`fn` as a scheduled job run once across instances for the slot `slot(now)` names.
    Never raises: the scheduler keeps going, and the reason is logged by type only."""

    def run(*args: Any) -> None:
        try:
            result = runs.run_once(job, slot(runs.now()), lambda: fn(*args))
        except Exception as exc:
            log.error("job %s could not run: %s", job, type(exc).__name__)
            return
        if result is RunResult.TOOK_OVER:
            log.warning("job %s: took over a run left by an instance that stopped", job)

    run.__name__ = job
    return run


def every_slot(seconds: int) -> Callable[[datetime], str]:
    return lambda now: interval_slot(now, seconds)


def retention_policy(settings: Settings) -> RetentionPolicy:
    days = settings.retention_identifiable_days
    return RetentionPolicy(
        declined_days=days,
        not_approached_days=days,
        withdrawn_days=days,
        stale_candidate_days=days,
        voided_days=days,
        raw_message_days=settings.retention_raw_message_days,
        adult_retention_years=settings.retention_adult_years,
    )


def run_identifiable_retention(gateway: Gateway, policy: RetentionPolicy) -> None:
    try:
        result = erase_identifiable(
            gateway.engine, gateway.keyring, gateway.audit, policy, now=gateway.clock()
        )
    except Exception as exc:  # keep the scheduler alive; never log values
        log.error("identifiable-data retention failed: %s", type(exc).__name__)
        return
    log.info(
        "retention: identifiable data erased for %d referral(s) %s (%d case note(s)) and %d "
        "other attendance(s); %d consented referral(s) need a birth date",
        result.referrals_erased,
        dict(result.referrals),
        result.case_notes,
        result.attendances,
        len(result.needs_birth_date),
    )


def run_raw_message_retention(gateway: Gateway, policy: RetentionPolicy) -> None:
    try:
        n = erase_raw_messages(gateway.engine, gateway.audit, policy, now=gateway.clock())
    except Exception as exc:
        log.error("raw-message retention failed: %s", type(exc).__name__)
        return
    log.info("retention: %d raw message payload(s) erased", n)


def run_escalations(gateway: Gateway, after: timedelta) -> list[tuple[str, str]]:
    """Escalate what nobody claimed within `after`, at the gateway's clock, and announce each
    (referral id and "escalated" only). Returns the (referral id, site) escalated now."""
    try:
        done = escalate_untouched(gateway.engine, now=gateway.clock(), after=after)
    except Exception as exc:
        log.error("escalation failed: %s", type(exc).__name__)
        return []
    for referral_id, site in done:
        gateway.announce(ReferralNews(referral_id, site, ReferralUpdate.ESCALATED))
    if done:
        log.info("escalation: %d referral(s) unclaimed for %s", len(done), after)
    return done


def run_outbox(gateway: Gateway) -> None:
    """One pass of the outbox worker; counts only in the log."""
    try:
        run = gateway.onward.run_outbox(gateway.clock)
    except Exception as exc:
        log.error("outbox pass failed: %s", type(exc).__name__)
        return
    if run.sent or run.failed or run.dead or run.stopped:
        log.info(
            "outbox: %d sent, %d to retry, %d dead, %d stopped",
            run.sent,
            run.failed,
            run.dead,
            run.stopped,
        )


def build_scheduler(
    gateway: Gateway,
    *,
    interval_minutes: int | None = None,
    runs: JobRuns | None = None,
    extra: Sequence[ScheduledJob] = (),
) -> BackgroundScheduler:
    """A scheduler with the gateway's jobs registered (not started): retention every
    `interval_minutes` (default: the settings'), escalation every
    `escalation_interval_seconds`, the onward outbox every `outbox_interval_seconds`, and the
    `extra` jobs (the feed-silence check); each run
    once across instances through `runs`, with the takeover sweep beside them."""
    policy = retention_policy(gateway.settings)
    runs = runs or JobRuns(gateway.engine)
    retention_seconds = (interval_minutes or gateway.settings.retention_interval_minutes) * 60
    escalation_seconds = gateway.settings.escalation_interval_seconds
    jobs = [
        ScheduledJob(
            "retention_identifiable",
            run_identifiable_retention,
            retention_seconds,
            (gateway, policy),
            3600,
        ),
        ScheduledJob(
            "retention_raw_messages",
            run_raw_message_retention,
            retention_seconds,
            (gateway, policy),
            3600,
        ),
        ScheduledJob(
            "escalate_untouched",
            run_escalations,
            escalation_seconds,
            (gateway, timedelta(minutes=gateway.settings.escalate_after_minutes)),
            60,
        ),
        ScheduledJob(
            "onward_outbox",
            run_outbox,
            max(1, int(gateway.settings.outbox_interval_seconds)),
            (gateway,),
        ),
        ScheduledJob("job_runs_prune", runs.prune, 3600),
        *extra,
    ]
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            once(runs, job.name, job.fn, slot=every_slot(job.seconds)),
            aligned_every(job.seconds),
            args=job.args,
            id=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=job.grace_seconds,
        )
    sweep_seconds = getattr(gateway.settings, "job_takeover_seconds", 60)
    for job in jobs:  # a run left by a dead instance, found before the job's next tick
        scheduler.add_job(
            once(runs, job.name, job.fn, slot=lambda _now: None),
            aligned_every(sweep_seconds),
            args=job.args,
            id=f"takeover.{job.name}",
            coalesce=True,
            max_instances=1,
        )
    return scheduler


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    fn: Callable[..., object]
    seconds: int
    args: tuple[Any, ...] = ()
    grace_seconds: int = 60


def run_feed_watch(watch: FeedWatch) -> None:
    try:
        watch.check()
    except Exception as exc:
        log.error("feed-silence check failed: %s", type(exc).__name__)


def start_jobs(gateway: Gateway) -> BackgroundScheduler:
    """The gateway's jobs, with the feed-silence watch, started."""
    watch = ScheduledJob(
        "feed_silence",
        run_feed_watch,
        gateway.settings.feed_silence_interval_seconds,
        (gateway.feed_watch,),
    )
    scheduler = build_scheduler(gateway, extra=[watch])
    scheduler.start()
    return scheduler
