"""The FHIR writer's group commit: decisions see earlier writes of the same group, and one
unit that cannot be stored does not take the others down with it."""

from __future__ import annotations

import copy
import uuid

import pytest
from sqlalchemy import select, text

from adapters.fhir.errors import PreconditionFailed, StorageUnavailable
from adapters.fhir.interactions import bundle_interactions, create, update
from adapters.fhir.writer import FhirWriter, WriteUnit, _new_id
from referral_gateway.storage.fhir_store import FhirResourceStore
from referral_gateway.storage.inbox import INBOX
from tests.fhir import builders as b


def unit(*interactions, atomic=True) -> WriteUnit:
    return WriteUnit("RXX01", "rxx-ed-epr", tuple(interactions), atomic=atomic)


def queued_then_started(writer: FhirWriter, *units: WriteUnit):
    """Submit before the thread runs, so that every unit lands in one group."""
    futures = [writer.submit(u) for u in units]
    writer.start()
    return futures


@pytest.fixture
def idle_writer(store, clock):
    writer = FhirWriter(store, clock)
    yield writer
    writer.stop()


def test_a_conditional_create_sees_a_patient_created_earlier_in_the_same_group(idle_writer):
    nhs = b.nhs_number(11)
    condition = f"identifier={b.NHS}|{nhs}"
    first, second = queued_then_started(
        idle_writer,
        unit(create("Patient", b.patient(nhs=nhs), if_none_exist=condition)),
        unit(create("Patient", b.patient(nhs=nhs), if_none_exist=condition)),
    )
    [made], [matched] = first.result(10), second.result(10)
    assert (made.status, matched.status) == (201, 200)
    assert matched.resource_id == made.resource_id


def test_updates_in_one_group_make_successive_versions(idle_writer, engine):
    futures = queued_then_started(
        idle_writer,
        unit(update("Encounter", "e1", b.encounter(id="e1"), if_match=None)),
        unit(update("Encounter", "e1", b.encounter(id="e1", status="finished"), if_match='W/"1"')),
        unit(update("Encounter", "e1", b.encounter(id="e1", status="cancelled"), if_match='W/"1"')),
    )
    assert [f.result(10)[0].version for f in futures[:2]] == [1, 2]
    with pytest.raises(PreconditionFailed):
        futures[2].result(10)
    with engine.connect() as conn:
        keys = conn.execute(select(INBOX.c.message_key).order_by(INBOX.c.id)).scalars().all()
    assert keys == ["Encounter/e1/_history/1", "Encounter/e1/_history/2"]


class ExplodingStore(FhirResourceStore):
    """A store whose database refuses any write of a resource called 'boom'."""

    def write_many(self, conn, prepared):
        if any(row["resource_id"] == "boom" for row in prepared.inserts):
            raise RuntimeError("disk on fire")
        super().write_many(conn, prepared)


def test_a_unit_the_database_refuses_fails_alone(engine, keyring, clock):
    writer = FhirWriter(ExplodingStore(engine, keyring), clock)
    try:
        good, bad, also_good = queued_then_started(
            writer,
            unit(update("Encounter", "e1", b.encounter(id="e1"), if_match=None)),
            unit(update("Encounter", "boom", b.encounter(id="boom"), if_match=None)),
            unit(update("Encounter", "e2", b.encounter(id="e2"), if_match=None)),
        )
        assert good.result(10)[0].status == 201
        assert also_good.result(10)[0].status == 201
        with pytest.raises(StorageUnavailable) as caught:
            bad.result(10)
        assert caught.value.status == 503
    finally:
        writer.stop()


def test_a_transaction_that_writes_an_encounter_marks_its_companions_as_covered(writer, engine):
    writer.write(unit(*bundle_interactions(b.attendance_bundle(1)).entries))
    writer.write(
        unit(
            update("Patient", "p9", b.patient(id="p9"), if_match=None),
            create("Encounter", b.encounter(subject="Patient/p9"), if_none_exist=None),
        )
    )
    with engine.connect() as conn:
        rows = conn.execute(select(INBOX.c.message_type, INBOX.c.state).order_by(INBOX.c.id)).all()
    # a new Patient and the Condition ride with their Encounter, stored as already filtered
    # so the pipeline never picks them up; a PUT Patient (an id the sender chose, perhaps
    # referred to before) is evaluated on its own
    assert [tuple(r) for r in rows] == [
        ("Patient+Encounter", "filtered"),
        ("Encounter", "pending"),
        ("Condition+Encounter", "filtered"),
        ("Encounter", "pending"),
        ("Patient", "pending"),
    ]


def test_references_are_resolved_in_what_is_stored_and_the_request_as_sent_is_left_alone(
    writer, store
):
    sent = bundle_interactions(b.attendance_bundle(2)).entries
    before = copy.deepcopy([it.resource for it in sent])
    patient, encounter, condition = writer.write(unit(*sent))
    assert [it.resource for it in sent] == before  # a retried group plans again from these
    stored = store.get("RXX01", "Condition", condition.resource_id)
    assert stored is not None
    assert stored["subject"]["reference"] == f"Patient/{patient.resource_id}"
    assert stored["encounter"]["reference"] == f"Encounter/{encounter.resource_id}"
    assert stored["code"] == before[2]["code"]  # what had no reference is stored as sent


class RacedStore(FhirResourceStore):
    """Another process stores version 2 of Encounter/e1 just before this one writes."""

    raced = False

    def write_many(self, conn, prepared):
        if not self.raced:
            self.raced = True
            with self.engine.begin() as other:
                other.execute(text("update fhir_resource set version = 2 where resource_id = 'e1'"))
        super().write_many(conn, prepared)


def test_a_version_written_meanwhile_by_another_process_is_not_overwritten(engine, keyring, clock):
    first = FhirWriter(FhirResourceStore(engine, keyring), clock).start()
    first.write(unit(update("Encounter", "e1", b.encounter(id="e1"), if_match=None)))
    first.stop()
    writer = FhirWriter(RacedStore(engine, keyring), clock).start()
    try:
        [written] = writer.write(
            unit(update("Encounter", "e1", b.encounter(id="e1", status="finished"), if_match=None))
        )
    finally:
        writer.stop()
    assert written.version == 3  # decided again after the race, on top of version 2


class MatchStoredMeanwhile(FhirResourceStore):
    """After this writer has decided its group, and before it takes the write gate,
    another writer (another process, as far as this one can tell) stores a Patient with
    the NHS number this group's conditional create looked for and did not find."""

    def __init__(self, engine, keyring, clock, nhs) -> None:
        super().__init__(engine, keyring)
        self.other = FhirWriter(FhirResourceStore(engine, keyring), clock)
        self.nhs = nhs
        self.done = False

    def prepare_writes(self, writes):
        if not self.done:
            self.done = True
            self.other.start()
            self.other.write(unit(create("Patient", b.patient(nhs=self.nhs), if_none_exist=None)))
            self.other.stop()
        return super().prepare_writes(writes)


def test_a_conditional_create_decided_before_another_writer_stored_a_match_is_decided_again(
    engine, keyring, clock
):
    nhs = b.nhs_number(12)
    writer = FhirWriter(MatchStoredMeanwhile(engine, keyring, clock, nhs), clock).start()
    try:
        [written] = writer.write(
            unit(create("Patient", b.patient(nhs=nhs), if_none_exist=f"identifier={b.NHS}|{nhs}"))
        )
    finally:
        writer.stop()
    assert written.status == 200  # the other writer's Patient, not a second one
    with engine.connect() as conn:
        patients = conn.execute(
            text("select count(*) from fhir_resource where resource_type = 'Patient'")
        ).scalar()
    assert patients == 1


def test_created_resources_get_ids_that_grow_with_time_so_their_index_pages_stay_few():
    earlier, later = _new_id(now_ms=1_763_000_000_000), _new_id(now_ms=1_763_000_000_001)
    assert earlier < later  # as text, which is how the indexes compare them
    assert uuid.UUID(earlier).version == 7
    assert len({_new_id() for _ in range(1000)}) == 1000
