"""The pipeline from stored inbox to referrals, driven with a fake decoder so that only the
gateway's own logic is under test."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EventKind,
    PatientIdentity,
    Source,
)
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.services.errors import MessageRejected
from referral_gateway.services.pipeline import Pipeline
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.inbox import Arrival, InboxStore, PendingMessage
from referral_gateway.storage.views import error_store, feed_counts, referral_summaries

ARRIVAL = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)


class JsonDecoder:
    """A fake wire format: the payload is JSON naming the event's few fields."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self, message: PendingMessage) -> list[AttendanceEvent]:
        if self.broken:
            raise MessageRejected("map", "PV1-19 missing")
        data = json.loads(message.payload)
        if data.get("ignore"):
            return []
        return [
            AttendanceEvent(
                kind=EventKind(data.get("kind", "arrival")),
                site="RXX01",
                source=Source.HL7V2,
                visit_number=data.get("visit", "V1"),
                patient=PatientIdentity(
                    nhs_number="9990000026",
                    local_ids=tuple(data.get("ids", ["MRN1"])),
                    birth_date=date.fromisoformat(data.get("dob", "2010-01-02")),
                ),
                is_emergency=True,
                arrival=ARRIVAL,
                codings=tuple(Coding("snomed", c) for c in data.get("codes", [])),
                free_text=tuple(data.get("text", [])),
                merged_from=tuple(data.get("merged_from", [])),
            )
        ]


def build(engine, keyring, clock, decoder=None):
    inbox = InboxStore(engine, keyring)
    decoder = decoder or JsonDecoder()
    pipeline = Pipeline(
        engine,
        inbox,
        AttendanceStore(keyring),
        {"test": decoder},
        SiteDirectory(),
        bundled_valuesets(),
        clock,
    )
    return inbox, pipeline, decoder


def send(inbox, key, **payload):
    return inbox.store_batch(
        [
            Arrival(
                "test", "EDIS^RXX01", key, "ADT^A01", "RXX01", json.dumps(payload).encode(), ARRIVAL
            )
        ]
    )[0]


def test_a_stab_wound_at_sixteen_becomes_one_candidate(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", codes=["425322008"])
    assert pipeline.drain() == 1
    [referral] = referral_summaries(engine)
    assert (referral["age"], referral["injury_category"]) == (16, "bladed")
    assert referral["detection_reasons"][0]["rule"] == "snomed:425322008"


def test_processing_again_does_nothing_more(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", codes=["425322008"])
    pipeline.drain()
    assert pipeline.drain() == 0
    assert len(referral_summaries(engine)) == 1


def test_later_messages_about_the_same_visit_do_not_make_a_second_candidate(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", codes=["425322008"])
    send(inbox, "2", kind="update", codes=["425322008"], text=["stabbed"])
    pipeline.drain()
    assert len(referral_summaries(engine)) == 1


def test_messages_we_do_not_care_about_are_counted_as_filtered(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", ignore=True)
    pipeline.drain()
    [row] = feed_counts(engine)
    assert (row["received"], row["filtered"], row["candidate"]) == (1, 1, 0)


def test_a_message_that_cannot_be_mapped_is_kept_with_its_stage_and_can_be_reprocessed(
    engine, keyring, clock
):
    inbox, pipeline, decoder = build(engine, keyring, clock)
    decoder.broken = True
    send(inbox, "1", codes=["425322008"])
    pipeline.drain()
    [error] = error_store(engine)
    assert (error["stage"], error["error"]) == ("map", "PV1-19 missing")
    decoder.broken = False
    assert inbox.requeue_errors() == 1
    pipeline.drain()
    assert error_store(engine) == [] and len(referral_summaries(engine)) == 1


def test_a_merge_moves_the_old_record_to_the_surviving_patient(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", ids=["OLD1"], codes=["425322008"])
    send(inbox, "2", kind="merge", ids=["NEW1"], merged_from=["OLD1"], visit=None)
    pipeline.drain()
    store = AttendanceStore(keyring)
    with engine.connect() as conn:
        assert store.snapshot(conn, set(), {("RXX01", "OLD1")}).found == {}
        [moved] = store.snapshot(conn, set(), {("RXX01", "NEW1")}).found.values()
    assert moved.attendance.patient.local_ids == ("NEW1", "OLD1")


def test_two_workers_on_one_inbox_never_process_a_message_twice(engine, keyring, clock):
    import threading

    from sqlalchemy import text

    inbox, first, _ = build(engine, keyring, clock)
    _, second, _ = build(engine, keyring, clock)
    for i in range(60):
        send(inbox, f"m{i}", visit=f"V{i}", codes=["425322008"])
    workers = [threading.Thread(target=p.drain) for p in (first, second, first, second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with engine.connect() as conn:
        attempts = conn.execute(text("select attempts from inbound_message")).scalars().all()
    assert sorted(set(attempts)) == [1] and len(attempts) == 60
    assert len(referral_summaries(engine)) == 60


class ConsentRecordedMeanwhile(AttendanceStore):
    """A store whose first read of a batch is followed, before the batch is written, by a
    youth worker recording consent on the referral: the race the write gate's check is for."""

    def __init__(self, keyring, engine) -> None:
        super().__init__(keyring)
        self.engine = engine
        self.armed = False

    def snapshot(self, conn, visits, patients=frozenset()):
        snapshot = super().snapshot(conn, visits, patients)
        if self.armed:
            self.armed = False
            from sqlalchemy import text

            with self.engine.begin() as other:
                other.execute(
                    text("update referral set status = 'consented', updated_at = :now"),
                    {"now": ARRIVAL.replace(hour=23)},
                )
        return snapshot


def test_a_referral_changed_while_its_batch_is_worked_out_is_read_again_not_overwritten(
    engine, keyring, clock
):
    store = ConsentRecordedMeanwhile(keyring, engine)
    inbox = InboxStore(engine, keyring)
    pipeline = Pipeline(
        engine, inbox, store, {"test": JsonDecoder()}, SiteDirectory(), bundled_valuesets(), clock
    )
    send(inbox, "1", codes=["425322008"])
    pipeline.drain()
    # the arrival is cancelled (A11) just as a youth worker records consent: read before
    # consent, the cancellation would void the referral; read again, it leaves it alone
    store.armed = True
    send(inbox, "2", kind="cancel_arrival", codes=["425322008"])
    pipeline.drain()
    [referral] = referral_summaries(engine)
    assert referral["status"] == "consented"


def test_a_visit_arriving_and_cancelled_in_one_batch_ends_voided(engine, keyring, clock):
    inbox, pipeline, _ = build(engine, keyring, clock)
    send(inbox, "1", codes=["425322008"])
    send(inbox, "2", kind="cancel_arrival", codes=["425322008"])
    result = pipeline.process_pending()
    assert result.processed == 2
    [referral] = referral_summaries(engine)
    assert referral["status"] == "voided"


class FullDisk:
    """SQLite told it may not grow (`PRAGMA max_page_count` at its present size on every
    connection): what a full disk does to a database, SQLITE_FULL on the first new page."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def _cap(self, dbapi_connection, _record) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    def __enter__(self) -> FullDisk:
        self.engine.dispose()
        event.listen(self.engine, "connect", self._cap)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "connect", self._cap)
        self.engine.dispose()


def test_a_full_disk_leaves_the_messages_pending_for_later_not_in_the_error_store(
    sqlite_url, keyring, clock
):
    """A storage failure is not the message's fault: blaming it would put a good,
    acknowledged message in the error store, unprocessed until someone reprocesses it."""
    engine = make_engine(sqlite_url)
    migrate(engine)
    inbox, pipeline, _ = build(engine, keyring, clock)
    for n in range(60):
        send(inbox, str(n), visit=f"V{n}", ids=[f"MRN{n}"], codes=["425322008"])
    with FullDisk(engine):
        with pytest.raises(OperationalError):
            pipeline.process_pending()
        assert error_store(engine) == []
    assert pipeline.drain() == 60
    assert error_store(engine) == [] and len(referral_summaries(engine)) == 60
