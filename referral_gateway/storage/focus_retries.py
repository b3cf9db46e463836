"""Subscription notifications the gateway could not complete, kept in the error store.

A notification names a resource (its focus) that the source did not serve yet (404/410),
or whose Encounter or Patient it did not serve. The notification is answered, and an inbox
row in the error store (`channel = "fhir"`, `state = "error"`, `error_stage = "focus"`,
payload `{"source", "focus"}`) stands for it; `attempts` counts the fetches tried since.
A retry that completes it moves the row out of the error store (`state = "filtered"`,
outcome `fetched-late`: the fetched resources have inbox rows of their own); one that
does not counts an attempt. After the last attempt the row stays in the error store;
`referral-gateway reprocess` (InboxStore.requeue_errors) starts its fetches again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from consent.keyring import KeyRing
from referral_gateway.storage.database import write_gate
from referral_gateway.storage.inbox import INBOX, PAYLOAD_CONTEXT, REFETCHED_STAGE, Arrival

FOCUS_STAGE = REFETCHED_STAGE
CHANNEL = "fhir"


@dataclass(frozen=True)
class MissedFocus:
    """A focus waiting to be fetched again (its inbox row id)."""

    id: int
    source: str
    focus: str  # "Type/id" or an absolute URL under the source's base
    attempts: int
    received_at: datetime


def missed_focus_arrival(
    *, source: str, site: str, focus: str, now: datetime, detail: str
) -> Arrival:
    """The error-store row for a focus that could not be read when it was notified."""
    return Arrival(
        channel=CHANNEL,
        sender=source,
        message_key=f"focus:{focus[-200:]}@{now.isoformat()}",
        message_type=focus.split("/")[-2][:40] if "/" in focus else "",
        site=site,
        payload=json.dumps({"source": source, "focus": focus}).encode(),
        received_at=now,
        state="error",
        error_stage=FOCUS_STAGE,
        error_detail=detail[:1000],
    )


def due_focus_retries(
    engine: Engine, keyring: KeyRing, now: datetime, delays: Sequence[float]
) -> list[MissedFocus]:
    """Missed foci whose next fetch is due: attempt n+1 comes delays[0] + ... + delays[n]
    seconds after the notification; none after len(delays) attempts."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(INBOX.c.id, INBOX.c.payload_enc, INBOX.c.attempts, INBOX.c.received_at)
            .where(
                INBOX.c.channel == CHANNEL,
                INBOX.c.state == "error",
                INBOX.c.error_stage == FOCUS_STAGE,
                INBOX.c.attempts < len(delays),
                INBOX.c.payload_enc.is_not(None),
            )
            .order_by(INBOX.c.id)
        ).all()
    due = []
    for r in rows:
        if now < r.received_at + timedelta(seconds=sum(delays[: r.attempts + 1])):
            continue
        body = json.loads(keyring.decrypt(r.payload_enc, context=PAYLOAD_CONTEXT))
        due.append(
            MissedFocus(r.id, str(body["source"]), str(body["focus"]), r.attempts, r.received_at)
        )
    return due


def record_focus_retry(
    engine: Engine, missed: MissedFocus, now: datetime, *, completed: bool, detail: str
) -> None:
    """Out of the error store when `completed`; otherwise one more attempt, with why."""
    stmt = update(INBOX).where(INBOX.c.id == missed.id, INBOX.c.state == "error")
    if completed:
        stmt = stmt.values(
            state="filtered",
            outcome="fetched-late",
            processed_at=now,
            attempts=missed.attempts + 1,
            error_detail=None,
        )
    else:
        stmt = stmt.values(attempts=missed.attempts + 1, error_detail=detail[:1000])
    with write_gate(engine), engine.begin() as conn:
        conn.execute(stmt)


def missed_focus_counts(engine: Engine, delays: Sequence[float]) -> dict[str, tuple[int, int]]:
    """Per source: (foci still being retried, foci given up) in the error store."""
    counts: dict[str, tuple[int, int]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(INBOX.c.sender, INBOX.c.attempts).where(
                INBOX.c.channel == CHANNEL,
                INBOX.c.state == "error",
                INBOX.c.error_stage == FOCUS_STAGE,
            )
        ).all()
    for sender, attempts in rows:
        waiting, given_up = counts.get(sender, (0, 0))
        if attempts < len(delays):
            waiting += 1
        else:
            given_up += 1
        counts[sender] = (waiting, given_up)
    return counts
