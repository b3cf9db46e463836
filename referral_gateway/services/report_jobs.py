"""The report push on a clock: APScheduler, 06:00 Europe/London on the 1st of each month.

The trigger is a cron in the London zone, so it fires at 06:00 local whether that is 06:00
UTC (GMT, October to March) or 05:00 UTC (BST). The job itself is safe to run any number of
times (see `report_push`), which is what lets the scheduler also run it once at start-up to
catch a 1st the process was down for, and an hourly retry of failed pushes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from referral_gateway.domain.report_period import LONDON, PUSH_HOUR
from referral_gateway.services.report_push import MonthlyPush
from referral_gateway.storage.job_runs import JobRuns, interval_slot

log = logging.getLogger(__name__)

PUSH_JOB_ID = "reports.monthly_push"
CATCH_UP_JOB_ID = "reports.catch_up"
RETRY_JOB_ID = "reports.retry_failed"


def push_trigger() -> CronTrigger:
    return CronTrigger(day=1, hour=PUSH_HOUR, minute=0, timezone=LONDON)


class ReportJobs:
    def __init__(
        self,
        push: MonthlyPush,
        scheduler: BaseScheduler | None = None,
        *,
        runs: JobRuns | None = None,
    ) -> None:
        self.push = push
        self.runs = runs  # several instances on PostgreSQL: each job once across them
        self.scheduler = scheduler or BackgroundScheduler(timezone=LONDON)
        self._owns_scheduler = scheduler is None

    def install(self) -> None:
        """Add the jobs to the scheduler (without starting it)."""
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True}
        self.scheduler.add_job(
            self._once(PUSH_JOB_ID, self.push.run, _london_month),
            push_trigger(),
            id=PUSH_JOB_ID,
            misfire_grace_time=None,
            **common,
        )
        self.scheduler.add_job(
            self._once(CATCH_UP_JOB_ID, self.push.run, lambda now: interval_slot(now, 3600)),
            id=CATCH_UP_JOB_ID,
            **common,
        )
        self.scheduler.add_job(
            self._once(RETRY_JOB_ID, self.push.retry_unsent, lambda now: interval_slot(now, 3600)),
            IntervalTrigger(hours=1, timezone=LONDON),
            id=RETRY_JOB_ID,
            **common,
        )
        if self.runs is not None:  # a push whose instance died, taken over within minutes
            self.scheduler.add_job(
                self._once(PUSH_JOB_ID, self.push.run, lambda _now: None),
                IntervalTrigger(minutes=1, timezone=LONDON),
                id=f"takeover.{PUSH_JOB_ID}",
                **common,
            )

    def _once(
        self, name: str, job: Callable[[], object], slot: Callable[[datetime], str | None]
    ) -> Callable[[], None]:
        isolated = _isolated(job)
        runs = self.runs
        if runs is None:
            return isolated

        def run() -> None:
            try:
                runs.run_once(name, slot(runs.now()), isolated)
            except Exception as exc:
                log.error("report job %s could not run: %s", name, type(exc).__name__)

        run.__name__ = name
        return run

    def start(self) -> ReportJobs:
        self.install()
        if self._owns_scheduler:
            self.scheduler.start()
        return self

    def stop(self) -> None:
        if self._owns_scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def _london_month(now: datetime) -> str:
    return now.astimezone(LONDON).strftime("%Y-%m")


def _isolated(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception as exc:  # one bad run must not stop the scheduler
            log.error("report job failed: %s", type(exc).__name__)

    run.__name__ = getattr(job, "__name__", "report_job")
    return run
