"""From the stored inbox to attendances, detection and candidate referrals.

Restartable anywhere: a message's effects and its `processed` mark are committed in the same
transaction, so after a crash a message is either fully done or still pending, never half
done and never done twice. Messages are processed in arrival order, so an A08 after its A01
sees the attendance the A01 made.

After each commit the pipeline announces what changed for the youth workers, as
`on_referral(referral_id, ReferralUpdate)`: a new candidate, and for an existing referral a
discharge, an A13 undoing it, a cancelled arrival (voided), a move to another area or bay.
Nothing identifying: the referral's random id and one word.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection, Engine

from referral_gateway.domain.attendance import Attendance, AttendanceEvent, EventKind
from referral_gateway.domain.detection import Detection, detect
from referral_gateway.domain.nhs_number import is_valid_nhs_number
from referral_gateway.domain.referral import (
    ReferralAction,
    ReferralUpdate,
    referral_change,
    referral_update,
)
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.domain.valuesets import ValueSetLibrary
from referral_gateway.errors import MessageRejected
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.database import write_gate
from referral_gateway.storage.dialect import add_counts
from referral_gateway.storage.inbox import COUNTS, INBOX, InboxStore, PendingMessage

log = logging.getLogger(__name__)

Decoder = Callable[[PendingMessage], Sequence[AttendanceEvent]]
"""Turns a stored message into the events it carries ([] = nothing we care about).
Raises MessageRejected for what cannot be read or mapped."""

Clock = Callable[[], datetime]
OnReferral = Callable[[str, ReferralUpdate], None]
"""Called after the commit with a referral id and what happened to it."""

_MARK = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("_id"))
    .values(
        state=bindparam("state"),
        outcome=bindparam("outcome"),
        error_stage=bindparam("error_stage"),
        error_detail=bindparam("error_detail"),
        processed_at=bindparam("processed_at"),
    )
)
_CLAIM = (
    update(INBOX)
    .where(INBOX.c.id.in_(bindparam("ids", expanding=True)), INBOX.c.state == "pending")
    .values(attempts=INBOX.c.attempts + 1)
    .returning(INBOX.c.id)
)


@dataclass(frozen=True)
class BatchResult:
    processed: int
    candidates: int
    errors: int
    filtered: int
    new_referral_ids: tuple[str, ...] = ()
    states: tuple[tuple[int, str], ...] = ()  # (message id, processed | filtered | error)
    updates: tuple[tuple[str, ReferralUpdate], ...] = ()  # in order, new ones included


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        inbox: InboxStore,
        attendances: AttendanceStore,
        decoders: Mapping[str, Decoder],
        sites: SiteDirectory,
        valuesets: ValueSetLibrary,
        clock: Clock,
        *,
        batch_size: int = 200,
        on_referral: OnReferral | None = None,
        on_processed: Callable[[Sequence[tuple[int, str]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self.attendances = attendances
        self.decoders = decoders
        self.sites = sites
        self.valuesets = valuesets
        self.clock = clock
        self.batch_size = batch_size
        self.on_referral = on_referral
        self.on_processed = on_processed

    # -- running -----------------------------------------------------------------------
    def process_pending(self) -> BatchResult:
        """Process one batch of pending messages; returns what it did."""
        pending = self.inbox.fetch_pending(self.batch_size)
        if not pending:
            return BatchResult(0, 0, 0, 0)
        try:
            result = self._process_group(pending)
        except Exception as exc:  # a database error in the group: isolate the culprit
            log.warning(
                "batch of %d failed (%s); retrying one by one", len(pending), type(exc).__name__
            )
            parts = [self._process_alone(m) for m in pending]
            result = BatchResult(
                processed=sum(p.processed for p in parts),
                candidates=sum(p.candidates for p in parts),
                errors=sum(p.errors for p in parts),
                filtered=sum(p.filtered for p in parts),
                new_referral_ids=tuple(r for p in parts for r in p.new_referral_ids),
                states=tuple(s for p in parts for s in p.states),
                updates=tuple(u for p in parts for u in p.updates),
            )
        if self.on_processed:
            self.on_processed(result.states)
        if self.on_referral:
            for rid, update in result.updates:
                self.on_referral(rid, update)
        return result

    def drain(self) -> int:
        """Process until nothing is pending. Returns the number of messages processed."""
        total = 0
        while True:
            r = self.process_pending()
            if r.processed == 0:
                return total
            total += r.processed

    def _process_alone(self, message: PendingMessage) -> BatchResult:
        try:
            return self._process_group([message])
        except Exception as exc:
            with self.engine.begin() as conn:
                if not conn.execute(_CLAIM, {"ids": [message.id]}).scalars().all():
                    return BatchResult(0, 0, 0, 0)
                self._mark(
                    conn,
                    message.id,
                    "error",
                    None,
                    "store",
                    f"storing the attendance failed ({type(exc).__name__})",
                )
                add_counts(
                    conn,
                    COUNTS,
                    [_count(message, self.clock().date(), "errored")],
                    keys=["channel", "sender", "day", "metric"],
                )
            return BatchResult(1, 0, 1, 0, states=((message.id, "error"),))

    def _process_group(self, messages: Sequence[PendingMessage]) -> BatchResult:
        now = self.clock()
        counts: Counter[tuple[str, str, date, str]] = Counter()
        candidates = errors = filtered = 0
        new_ids: list[str] = []
        updates: list[tuple[str, ReferralUpdate]] = []
        states: list[tuple[int, str]] = []
        decoded = [(message, self._decode(message)) for message in messages]  # no lock held
        with write_gate(self.engine), self.engine.begin() as conn:
            # Claim first: a message another worker finished meanwhile is not done twice.
            owned = set(conn.execute(_CLAIM, {"ids": [m.id for m, _ in decoded]}).scalars())
            for message, events in decoded:
                if message.id not in owned:
                    continue
                key = (message.channel, message.sender, now.date())
                if isinstance(events, MessageRejected):
                    self._mark(conn, message.id, "error", None, events.stage, events.detail)
                    states.append((message.id, "error"))
                    counts[(*key, "errored")] += 1
                    errors += 1
                    continue
                if not events:
                    self._mark(conn, message.id, "filtered", "filtered", None, None)
                    states.append((message.id, "filtered"))
                    counts[(*key, "filtered")] += 1
                    filtered += 1
                    continue
                outcome = "processed"
                for event in events:
                    outcome, update = self._apply(conn, message.id, event, now)
                    if update is not None:
                        updates.append(update)
                    if update is not None and update[1] is ReferralUpdate.NEW:
                        new_ids.append(update[0])
                        counts[(*key, "candidate")] += 1
                        candidates += 1
                        outcome = "candidate"
                self._mark(conn, message.id, "processed", outcome, None, None)
                states.append((message.id, "processed"))
            add_counts(
                conn,
                COUNTS,
                [
                    {"channel": c, "sender": s, "day": d, "metric": m, "n": n}
                    for (c, s, d, m), n in counts.items()
                ],
                keys=["channel", "sender", "day", "metric"],
            )
        return BatchResult(
            len(owned),
            candidates,
            errors,
            filtered,
            tuple(new_ids),
            tuple(states),
            tuple(updates),
        )

    def _decode(self, message: PendingMessage) -> Sequence[AttendanceEvent] | MessageRejected:
        decoder = self.decoders.get(message.channel)
        if decoder is None:
            return MessageRejected("decode", f"no decoder for channel {message.channel}")
        try:
            return decoder(message)
        except MessageRejected as rejected:
            return rejected

    # -- one event ---------------------------------------------------------------------
    def _apply(
        self, conn: Connection, message_id: int, event: AttendanceEvent, now: datetime
    ) -> tuple[str, tuple[str, ReferralUpdate] | None]:
        """The message's outcome for this event, and what to announce about a referral."""
        if event.kind is EventKind.MERGE:
            return self._merge(conn, message_id, event, now), None
        visit_key = event.visit_number or f"message:{message_id}"
        stored = self.attendances.load(conn, event.site, visit_key)
        attendance = stored.attendance.apply(event) if stored else Attendance.from_event(event)
        detection = self._detect(attendance)
        existing_id = self.attendances.save(
            conn,
            existing_id=stored.id if stored else None,
            visit_key=visit_key,
            attendance=attendance,
            age_at_arrival=detection.age_at_arrival,
            detection_rule=detection.rule,
            detection=_detection_json(detection),
            nhs_number_valid=(
                is_valid_nhs_number(attendance.patient.nhs_number)
                if attendance.patient.nhs_number
                else None
            ),
            message_id=message_id,
            now=now,
        )
        change = referral_change(
            attendance,
            event.kind,
            detection.is_candidate,
            stored.referral_status if stored else None,
        )
        if change.action is ReferralAction.CREATE:
            rid = self.attendances.create_referral(
                conn,
                attendance_id=existing_id,
                site=attendance.site,
                detection_rule=detection.rule,
                reasons=_reasons(detection),
                injury_category=(
                    detection.injury_category.value if detection.injury_category else None
                ),
                valueset_version=detection.valueset_version,
                now=now,
            )
            return "candidate", (rid, ReferralUpdate.NEW)
        update = None
        if stored and stored.referral_id:
            news = referral_update(stored.attendance, attendance, change.action)
            update = (stored.referral_id, news) if news is not None else None
        if change.action is ReferralAction.VOID and stored and stored.referral_id:
            self.attendances.void_referral(conn, stored.referral_id, change.reason, now)
            return "voided", update
        return detection.rule, update

    def _merge(
        self, conn: Connection, message_id: int, event: AttendanceEvent, now: datetime
    ) -> str:
        """A40: the prior patient's attendances now belong to the surviving patient."""
        moved = 0
        for old_id in event.merged_from:
            for attendance_id in self.attendances.attendances_of_patient(conn, event.site, old_id):
                visit_key, attendance = self.attendances.load_by_id(conn, attendance_id)
                updated = attendance.apply(
                    AttendanceEvent(
                        kind=EventKind.UPDATE,
                        site=event.site,
                        source=event.source,
                        visit_number=attendance.visit_number,
                        patient=event.patient,
                    )
                )
                surviving_first = event.patient.local_ids + tuple(
                    i for i in updated.patient.local_ids if i not in event.patient.local_ids
                )
                merged = replace(
                    updated, patient=replace(updated.patient, local_ids=surviving_first)
                )
                detection = self._detect(merged)
                self.attendances.save(
                    conn,
                    existing_id=attendance_id,
                    visit_key=visit_key,
                    attendance=merged,
                    age_at_arrival=detection.age_at_arrival,
                    detection_rule=detection.rule,
                    detection=_detection_json(detection),
                    nhs_number_valid=(
                        is_valid_nhs_number(merged.patient.nhs_number)
                        if merged.patient.nhs_number
                        else None
                    ),
                    message_id=message_id,
                    now=now,
                )
                moved += 1
        return "merged" if moved else "merge_no_match"

    def _detect(self, attendance: Attendance) -> Detection:
        rules = self.sites.rules_for(attendance.site)
        return detect(attendance, rules, self.valuesets.get(rules.valueset_version))

    def _mark(
        self,
        conn: Connection,
        message_id: int,
        state: str,
        outcome: str | None,
        stage: str | None,
        detail: str | None,
    ) -> None:
        conn.execute(
            _MARK,
            {
                "_id": message_id,
                "state": state,
                "outcome": outcome,
                "error_stage": stage,
                "error_detail": detail[:1000] if detail else None,
                "processed_at": self.clock(),
            },
        )


def _count(message: PendingMessage, day: date, metric: str) -> dict[str, Any]:
    return {
        "channel": message.channel,
        "sender": message.sender,
        "day": day,
        "metric": metric,
        "n": 1,
    }


def _reasons(detection: Detection) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in asdict(r).items()} for r in detection.reasons]


def _detection_json(detection: Detection) -> dict[str, Any]:
    return {
        "candidate": detection.is_candidate,
        "rule": detection.rule,
        "reasons": _reasons(detection),
        "injury_category": detection.injury_category.value if detection.injury_category else None,
        "valueset_version": detection.valueset_version,
    }


class PipelineWorker:
    """Runs the pipeline on a thread: woken after each intake commit, and every
    `poll_interval` seconds for anything another process stored."""

    def __init__(self, pipeline: Pipeline, *, poll_interval: float = 1.0) -> None:
        self.pipeline = pipeline
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    def start(self) -> PipelineWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.pipeline.process_pending().processed:
                    pass
            except Exception as exc:  # keep running: the messages stay pending
                log.error("pipeline pass failed: %s", type(exc).__name__)
                self._stop.wait(1.0)
