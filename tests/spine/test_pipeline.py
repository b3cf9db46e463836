"""The pipeline from stored inbox to referrals, driven with a fake decoder so that only the
gateway's own logic is under test."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EventKind,
    PatientIdentity,
    Source,
)
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.errors import MessageRejected
from referral_gateway.services.pipeline import Pipeline
from referral_gateway.storage.attendances import AttendanceStore
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
