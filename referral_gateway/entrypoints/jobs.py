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
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from consent.retention import RetentionPolicy
from referral_gateway.config import Settings
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.services.casework import escalate_untouched
from referral_gateway.services.retention import erase_identifiable, erase_raw_messages

if TYPE_CHECKING:
    from referral_gateway.wiring.gateway import Gateway

log = logging.getLogger(__name__)


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
    gateway: Gateway, *, interval_minutes: int | None = None
) -> BackgroundScheduler:
    """A scheduler with the gateway's jobs registered (not started): retention every
    `interval_minutes` (default: the settings'), escalation every
    `escalation_interval_seconds`."""
    policy = retention_policy(gateway.settings)
    minutes = interval_minutes or gateway.settings.retention_interval_minutes
    scheduler = BackgroundScheduler(timezone="UTC")
    options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
    scheduler.add_job(
        run_identifiable_retention,
        "interval",
        minutes=minutes,
        args=(gateway, policy),
        id="retention_identifiable",
        **options,
    )
    scheduler.add_job(
        run_raw_message_retention,
        "interval",
        minutes=minutes,
        args=(gateway, policy),
        id="retention_raw_messages",
        **options,
    )
    scheduler.add_job(
        run_escalations,
        "interval",
        seconds=gateway.settings.escalation_interval_seconds,
        args=(gateway, timedelta(minutes=gateway.settings.escalate_after_minutes)),
        id="escalate_untouched",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
    )
    scheduler.add_job(
        run_outbox,
        "interval",
        seconds=gateway.settings.outbox_interval_seconds,
        args=(gateway,),
        id="onward_outbox",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
    )
    return scheduler


def start_jobs(gateway: Gateway) -> BackgroundScheduler:
    scheduler = build_scheduler(gateway)
    scheduler.start()
    return scheduler
