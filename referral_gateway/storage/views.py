"""Read-only views for operators: feed counts, the error store, referrals without
identifiable fields."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from referral_gateway.storage.attendances import ATTENDANCE, REFERRAL
from referral_gateway.storage.inbox import COUNTS, INBOX

METRICS = ("received", "duplicate", "filtered", "errored", "candidate")


def feed_counts(engine: Engine, *, since: date | None = None) -> list[dict[str, Any]]:
    """One row per channel, sender and day with every metric (0 where none)."""
    stmt = select(COUNTS).order_by(COUNTS.c.day, COUNTS.c.channel, COUNTS.c.sender)
    if since is not None:
        stmt = stmt.where(COUNTS.c.day >= since)
    rows: dict[tuple[str, str, date], dict[str, Any]] = {}
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            key = (r.channel, r.sender, r.day)
            row = rows.setdefault(
                key,
                {"day": r.day.isoformat(), "channel": r.channel, "sender": r.sender}
                | dict.fromkeys(METRICS, 0),
            )
            row[r.metric] = row.get(r.metric, 0) + r.n
    return list(rows.values())


def _messages_in(engine: Engine, state: str, limit: int) -> list[Any]:
    """Inbox rows in `state`, oldest first, without their payloads."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    INBOX.c.id,
                    INBOX.c.channel,
                    INBOX.c.sender,
                    INBOX.c.site,
                    INBOX.c.message_type,
                    INBOX.c.received_at,
                    INBOX.c.error_stage,
                    INBOX.c.error_detail,
                    INBOX.c.attempts,
                )
                .where(INBOX.c.state == state)
                .order_by(INBOX.c.id)
                .limit(limit)
            ).all()
        )


def _described(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "channel": r.channel,
        "sender": r.sender,
        "message_type": r.message_type,
        "received_at": r.received_at.isoformat(),
    }


def quarantine(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """Messages held because they came from a source their site does not list."""
    return [
        _described(r) | {"site": r.site, "why": r.error_detail}
        for r in _messages_in(engine, "quarantined", limit)
    ]


def error_store(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    return [
        _described(r) | {"stage": r.error_stage, "error": r.error_detail, "attempts": r.attempts}
        for r in _messages_in(engine, "error", limit)
    ]


def referral_summaries(engine: Engine, *, site: str | None = None) -> list[dict[str, Any]]:
    """Referrals as an operator may see them: no name, NHS number, birth date, address,
    phone or free text."""
    stmt = (
        select(
            REFERRAL.c.id,
            REFERRAL.c.site,
            REFERRAL.c.status,
            REFERRAL.c.injury_category,
            REFERRAL.c.detection_rule,
            REFERRAL.c.detection_reasons_json,
            REFERRAL.c.created_at,
            ATTENDANCE.c.age_at_arrival,
            ATTENDANCE.c.status.label("att"),
            ATTENDANCE.c.arrival_at,
        )
        .join(ATTENDANCE, ATTENDANCE.c.id == REFERRAL.c.attendance_id)
        .order_by(REFERRAL.c.created_at.desc())
    )
    if site:
        stmt = stmt.where(REFERRAL.c.site == site)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        {
            "id": r.id,
            "site": r.site,
            "age": r.age_at_arrival,
            "injury_category": r.injury_category,
            "status": r.status,
            "attendance_status": r.att,
            "arrival": r.arrival_at.isoformat() if r.arrival_at else None,
            "detection_rule": r.detection_rule,
            "detection_reasons": json.loads(r.detection_reasons_json),
            "detected_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
