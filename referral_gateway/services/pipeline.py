"""From the stored inbox to attendances, detection and candidate referrals.

Restartable anywhere: a message's effects and its `processed` mark are committed in the same
transaction, so after a crash a message is either fully done or still pending, never half
done and never done twice. Messages are processed in arrival order, so an A08 after its A01
sees the attendance the A01 made.

After each commit the pipeline announces what changed for the youth workers, as
`on_referral(ReferralNews)`: a new candidate, and for an existing referral a
discharge, an A13 undoing it, a cancelled arrival (voided), a move to another area or bay.
Nothing identifying: the referral's random id and one word.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from referral_gateway.domain.attendance import Attendance, AttendanceEvent, EventKind
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.detection import Detection, detect
from referral_gateway.domain.nhs_number import is_valid_nhs_number
from referral_gateway.domain.referral import (
    ReferralAction,
    ReferralNews,
    ReferralStatus,
    ReferralUpdate,
    referral_change,
    referral_update,
)
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.domain.valuesets import ValueSetLibrary
from referral_gateway.services.errors import MessageRejected
from referral_gateway.storage.attendances import (
    AttendanceStore,
    Snapshot,
    VisitKey,
    referral_row,
)
from referral_gateway.storage.database import storage_unavailable, write_gate
from referral_gateway.storage.inbox import (
    InboxStore,
    MessageCounts,
    PendingMessage,
    claim_messages,
    count_messages,
    mark_messages,
    message_mark,
)

log = logging.getLogger(__name__)

Decoder = Callable[[PendingMessage], Sequence[AttendanceEvent]]
"""Turns a stored message into the events it carries ([] = nothing we care about).
Raises MessageRejected for what cannot be read or mapped."""

OnReferral = Callable[[ReferralNews], None]
"""Called after the commit with a referral id, its site and what happened to it."""


@dataclass(frozen=True)
class BatchResult:
    processed: int
    candidates: int
    errors: int
    filtered: int
    new_referral_ids: tuple[str, ...] = ()
    states: tuple[tuple[int, str], ...] = ()  # (message id, processed | filtered | error)
    updates: tuple[ReferralNews, ...] = ()  # in order, new ones included


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
            if storage_unavailable(exc):
                raise  # no message's fault: the whole batch stays pending for the next pass
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
            for news in result.updates:
                self.on_referral(news)
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
            if storage_unavailable(exc):
                raise  # the disk filled or the database went away meanwhile: not its fault
            with write_gate(self.engine), self.engine.begin() as conn:
                if not claim_messages(conn, [message.id]):
                    return BatchResult(0, 0, 0, 0)
                mark_messages(
                    conn,
                    [
                        message_mark(
                            message.id,
                            "error",
                            None,
                            "store",
                            f"storing the attendance failed ({type(exc).__name__})",
                            self.clock(),
                        )
                    ],
                )
                day = self.clock().date()
                count_messages(
                    conn, Counter({(message.channel, message.sender, day, "errored"): 1})
                )
            return BatchResult(1, 0, 1, 0, states=((message.id, "error"),))

    def _process_group(self, messages: Sequence[PendingMessage]) -> BatchResult:
        """Decode, read and work out everything first, holding no lock; then, inside the
        write gate, claim the messages, check that nothing read has changed meanwhile and
        write. If something did change (another writer, a claim lost to another worker),
        the batch is read and worked out again inside the gate."""
        now = self.clock()
        decoded = [(message, self._decode(message)) for message in messages]
        visits, patients = _wanted(decoded)
        with self.engine.connect() as conn:
            snapshot = self.attendances.snapshot(conn, visits, patients)
        plan = self._plan(decoded, snapshot, now)
        with write_gate(self.engine), self.engine.begin() as conn:
            # Claim first: a message another worker finished meanwhile is not done twice.
            owned = claim_messages(conn, [m.id for m, _ in decoded])
            if len(owned) != len(decoded) or not self.attendances.unchanged(conn, snapshot):
                decoded = [(m, events) for m, events in decoded if m.id in owned]
                visits, patients = _wanted(decoded)
                plan = self._plan(decoded, self.attendances.snapshot(conn, visits, patients), now)
            self._write(conn, plan, now)
        return plan.result()

    def _decode(self, message: PendingMessage) -> Sequence[AttendanceEvent] | MessageRejected:
        decoder = self.decoders.get(message.channel)
        if decoder is None:
            return MessageRejected("decode", f"no decoder for channel {message.channel}")
        try:
            return decoder(message)
        except MessageRejected as rejected:
            return rejected

    # -- working out a batch, in memory --------------------------------------------------
    def _plan(self, decoded: Sequence[Decoded], snapshot: Snapshot, now: datetime) -> _Plan:
        plan = _Plan(
            visits={
                key: _Visit(s.id, s.attendance, s.referral_id, s.referral_status)
                for key, s in snapshot.found.items()
            }
        )
        for message, events in decoded:
            key = (message.channel, message.sender, now.date())
            if isinstance(events, MessageRejected):
                mark = message_mark(message.id, "error", None, events.stage, events.detail, now)
                plan.marks.append(mark)
                plan.counts[(*key, "errored")] += 1
                continue
            if not events:
                plan.marks.append(message_mark(message.id, "filtered", "filtered", None, None, now))
                plan.counts[(*key, "filtered")] += 1
                continue
            outcome = "processed"
            for event in events:
                outcome, update = self._apply(plan, message.id, event)
                if update is not None:
                    plan.updates.append(update)
                if update is not None and update.update is ReferralUpdate.NEW:
                    plan.counts[(*key, "candidate")] += 1
                    outcome = "candidate"
            plan.marks.append(message_mark(message.id, "processed", outcome, None, None, now))
        plan.rows = {
            key: self._row(key[1], visit, now)
            for key, visit in plan.visits.items()
            if visit.message_id is not None
        }
        return plan

    def _apply(
        self, plan: _Plan, message_id: int, event: AttendanceEvent
    ) -> tuple[str, ReferralNews | None]:
        """The message's outcome for this event, and what to announce about a referral."""
        if event.kind is EventKind.MERGE:
            return self._merge(plan, message_id, event), None
        key = (event.site, event.visit_number or f"message:{message_id}")
        before = plan.visits.get(key)
        attendance = before.attendance.apply(event) if before else Attendance.from_event(event)
        detection = self._detect(attendance)
        visit = plan.visits[key] = _Visit(
            before.id if before else None,
            attendance,
            before.referral_id if before else None,
            before.status if before else None,
            message_id,
            detection,
        )
        change = referral_change(attendance, event.kind, detection.is_candidate, visit.status)
        if change.action is ReferralAction.CREATE:
            visit.referral_id, visit.status = str(uuid.uuid4()), ReferralStatus.NEW
            plan.new_referrals.append((key, visit.referral_id, detection))
            created = ReferralNews(
                visit.referral_id, key[0], ReferralUpdate.NEW, possible=detection.possible
            )
            return "candidate", created
        update = None
        if before and before.referral_id:
            news = referral_update(before.attendance, attendance, change.action)
            update = ReferralNews(before.referral_id, key[0], news) if news is not None else None
        if change.action is ReferralAction.VOID and before and before.referral_id:
            plan.voids.append((before.referral_id, change.reason))
            visit.status = ReferralStatus.VOIDED
            return "voided", update
        return detection.rule, update

    def _merge(self, plan: _Plan, message_id: int, event: AttendanceEvent) -> str:
        """A40: the prior patient's attendances now belong to the surviving patient."""
        moved = 0
        for old_id in event.merged_from:
            old_hash = self.attendances.local_id_hash(event.site, old_id)
            for key, visit in list(plan.visits.items()):
                if key[0] != event.site or (
                    self.attendances.patient_hash(visit.attendance) != old_hash
                ):
                    continue
                updated = visit.attendance.apply(
                    AttendanceEvent(
                        kind=EventKind.UPDATE,
                        site=event.site,
                        source=event.source,
                        visit_number=visit.attendance.visit_number,
                        patient=event.patient,
                    )
                )
                surviving_first = event.patient.local_ids + tuple(
                    i for i in updated.patient.local_ids if i not in event.patient.local_ids
                )
                merged = replace(
                    updated, patient=replace(updated.patient, local_ids=surviving_first)
                )
                plan.visits[key] = replace(
                    visit, attendance=merged, message_id=message_id, detection=self._detect(merged)
                )
                moved += 1
        return "merged" if moved else "merge_no_match"

    def _detect(self, attendance: Attendance) -> Detection:
        rules = self.sites.rules_for(attendance.site)
        return detect(attendance, rules, self.valuesets.get(rules.valueset_version))

    def _row(self, visit_key: str, visit: _Visit, now: datetime) -> dict[str, Any]:
        attendance, detection = visit.attendance, visit.detection
        assert detection is not None  # every changed visit was detected
        nhs_number = attendance.patient.nhs_number
        return self.attendances.row_values(
            visit_key=visit_key,
            attendance=attendance,
            age_at_arrival=detection.age_at_arrival,
            detection_rule=detection.rule,
            detection=_detection_json(detection),
            nhs_number_valid=is_valid_nhs_number(nhs_number) if nhs_number else None,
            message_id=visit.message_id,
            now=now,
        )

    # -- writing a batch -----------------------------------------------------------------
    def _write(self, conn: Connection, plan: _Plan, now: datetime) -> None:
        """A handful of statements for the whole batch, each attendance written once."""
        new = [key for key in plan.rows if plan.visits[key].id is None]
        ids = self.attendances.insert_rows(conn, [plan.rows[key] for key in new], now)
        attendance_ids = {key: plan.visits[key].id for key in plan.visits}
        attendance_ids.update(zip(new, ids, strict=True))
        self.attendances.update_rows(
            conn,
            [
                (row_id, plan.rows[key])
                for key in plan.rows
                if (row_id := plan.visits[key].id) is not None
            ],
        )
        self.attendances.insert_referrals(
            conn,
            [
                referral_row(
                    referral_id=rid,
                    attendance_id=int(attendance_ids[key]),  # type: ignore[arg-type]
                    site=key[0],
                    detection_rule=detection.rule,
                    reasons=_reasons(detection),
                    injury_category=(
                        detection.injury_category.value if detection.injury_category else None
                    ),
                    valueset_version=detection.valueset_version,
                    now=now,
                )
                for key, rid, detection in plan.new_referrals
            ],
        )
        self.attendances.void_referrals(conn, plan.voids, now)
        mark_messages(conn, plan.marks)
        count_messages(conn, plan.counts)


Decoded = tuple[PendingMessage, Sequence[AttendanceEvent] | MessageRejected]


def _wanted(decoded: Sequence[Decoded]) -> tuple[set[VisitKey], set[tuple[str, str]]]:
    """The stored attendances a batch needs: by visit, and by patient for merges."""
    visits: set[VisitKey] = set()
    patients: set[tuple[str, str]] = set()
    for message, events in decoded:
        if isinstance(events, MessageRejected):
            continue
        for event in events:
            if event.kind is EventKind.MERGE:
                patients.update((event.site, old_id) for old_id in event.merged_from)
            else:
                visits.add((event.site, event.visit_number or f"message:{message.id}"))
    return visits, patients


@dataclass
class _Visit:
    """One attendance as the batch has left it so far."""

    id: int | None  # None: not stored yet
    attendance: Attendance
    referral_id: str | None
    status: ReferralStatus | None  # the referral's
    message_id: int | None = None  # the last message that changed it; None: unchanged
    detection: Detection | None = None


@dataclass
class _Plan:
    """Everything a batch will write, worked out before the write gate is taken."""

    visits: dict[VisitKey, _Visit]
    rows: dict[VisitKey, dict[str, Any]] = field(default_factory=dict)  # changed attendances
    new_referrals: list[tuple[VisitKey, str, Detection]] = field(default_factory=list)
    voids: list[tuple[str, str]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    counts: MessageCounts = field(default_factory=Counter)
    updates: list[ReferralNews] = field(default_factory=list)

    def result(self) -> BatchResult:
        states = tuple((m["_id"], m["state"]) for m in self.marks)
        metrics: Counter[str] = Counter()
        for (_, _, _, metric), n in self.counts.items():
            metrics[metric] += n
        return BatchResult(
            processed=len(self.marks),
            candidates=metrics["candidate"],
            errors=metrics["errored"],
            filtered=metrics["filtered"],
            new_referral_ids=tuple(rid for _, rid, _ in self.new_referrals),
            states=states,
            updates=tuple(self.updates),
        )


def _reasons(detection: Detection) -> list[dict[str, str]]:
    return [
        {"rule": r.rule, "description": r.description, "kind": str(r.kind)}
        for r in detection.reasons
    ]


def _detection_json(detection: Detection) -> dict[str, Any]:
    return {
        "candidate": detection.is_candidate,
        "possible": detection.possible,
        "rule": detection.rule,
        "reasons": _reasons(detection),
        "injury_category": detection.injury_category.value if detection.injury_category else None,
        "valueset_version": detection.valueset_version,
    }


class PipelineWorker:
    """Runs the pipeline on a thread: woken after each intake commit, and every
    `poll_interval` seconds for anything another process stored. A wake-up waits `gather`
    seconds first, so that one batch serves several commits (small batches cost more per
    message and take the write gate more often)."""

    def __init__(
        self, pipeline: Pipeline, *, poll_interval: float = 1.0, gather: float = 0.0
    ) -> None:
        self.pipeline = pipeline
        self.poll_interval = poll_interval
        self.gather = gather
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
            if self._wake.wait(self.poll_interval) and self.gather:
                self._stop.wait(self.gather)
            self._wake.clear()
            try:
                while not self._stop.is_set():
                    if self.pipeline.process_pending().processed < self.pipeline.batch_size:
                        break  # caught up: wait for the next wake-up
            except Exception as exc:  # keep running: the messages stay pending
                log.error("pipeline pass failed: %s", type(exc).__name__)
                self._stop.wait(1.0)
