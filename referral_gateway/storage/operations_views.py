"""What the operators' tools read at scrape time, database-wide (every instance and the
pipeline process write the same tables, so these are right across processes). Counts and
times only: no identifiable data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.storage.inbox import COUNTS, INBOX
from referral_gateway.storage.job_runs import JOB_RUN


def message_counts(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(channel, sender, metric, count) summed over every day: received, duplicate,
    filtered, errored, candidate."""
    rows = conn.execute(
        select(COUNTS.c.channel, COUNTS.c.sender, COUNTS.c.metric, func.sum(COUNTS.c.n))
        .group_by(COUNTS.c.channel, COUNTS.c.sender, COUNTS.c.metric)
        .order_by(COUNTS.c.channel, COUNTS.c.sender, COUNTS.c.metric)
    ).all()
    return [(r[0], r[1], r[2], int(r[3] or 0)) for r in rows]


def candidates_by_site(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(REFERRAL.c.site, func.count()).group_by(REFERRAL.c.site).order_by(REFERRAL.c.site)
    ).all()
    return {site: int(n) for site, n in rows}


def oldest_pending_received_at(conn: Connection) -> datetime | None:
    """When the oldest message still waiting for the pipeline arrived (None: none waits)."""
    return conn.execute(
        select(INBOX.c.received_at).where(INBOX.c.state == "pending").order_by(INBOX.c.id).limit(1)
    ).scalar()


def oldest_unclaimed_by_site(conn: Connection) -> dict[str, datetime]:
    """Per site, when its oldest referral nobody has claimed was detected."""
    rows = conn.execute(
        select(REFERRAL.c.site, func.min(REFERRAL.c.created_at))
        .where(REFERRAL.c.status == ReferralStatus.NEW.value)
        .group_by(REFERRAL.c.site)
    ).all()
    return {site: at for site, at in rows if at is not None}


def job_run_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(job, outcome, runs) of the scheduled jobs across instances (PostgreSQL)."""
    rows = conn.execute(
        select(JOB_RUN.c.job, JOB_RUN.c.outcome, func.count())
        .where(JOB_RUN.c.outcome.is_not(None))
        .group_by(JOB_RUN.c.job, JOB_RUN.c.outcome)
    ).all()
    return [(job, outcome, int(n)) for job, outcome, n in rows]
