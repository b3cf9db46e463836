"""R4 resources to AttendanceEvent: what each element becomes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from adapters.fhir.mapping import (
    EncounterRecord,
    attendance_event,
    encounter_kind,
    reference_of,
    visit_number,
)
from referral_gateway.domain.attendance import Coding, EdLocation, EventKind, Sex, Source
from tests.fhir import builders as b


def event_of(record: EncounterRecord, kind: EventKind = EventKind.ARRIVAL):
    return attendance_event(record, site="RXX01", kind=kind, message_type="Encounter")


def test_uk_core_encounter_with_its_patient_becomes_an_emergency_arrival():
    nhs = b.nhs_number(3)
    event = event_of(EncounterRecord(b.encounter(id="e1"), b.patient(id="p1", nhs=nhs)))
    assert event.source is Source.FHIR
    assert event.site == "RXX01"
    assert event.visit_number == "ED-2025-0001"
    assert event.patient_class == "EMER"
    assert event.is_emergency is True
    assert event.arrival == datetime(2025, 3, 1, 21, 14, tzinfo=UTC)
    assert event.location == EdLocation(area="Majors", bay="Bay 4")
    assert event.patient.nhs_number == nhs
    assert event.patient.local_ids == ("RXX-MRN-000123",)
    assert event.patient.family_name == "Testwood"
    assert event.patient.given_names == "Alex Jordan"
    assert event.patient.birth_date == date(2009, 4, 12)
    assert event.patient.address == "1 Example Street, Exampleton, ZZ99 3AZ"
    assert event.patient.phone == "07700 900123"
    assert event.sex is Sex.MALE
    assert event.codings == (Coding("snomed", "425322008", "Stab wound"),)
    assert event.free_text == ("stabbed in left forearm",)
    assert event.flags == ()


def test_encounter_diagnosis_and_injury_intent_observation_add_their_codes():
    record = EncounterRecord(
        b.encounter(id="e1", reasons=(), reason_text=None),
        b.patient(id="p1"),
        conditions=[b.condition(id="c1", code=(b.ICD10, "X99.9", "Assault by sharp object"))],
        observations=[b.injury_intent(id="o1", value=b.ASSAULT)],
    )
    codes = {(c.system, c.code) for c in event_of(record).codings}
    assert ("icd10", "X99.9") in codes
    assert ("snomed", "52684005") in codes  # the observation's value


def test_problem_list_and_refuted_conditions_are_not_this_attendance_s_diagnoses():
    record = EncounterRecord(
        b.encounter(id="e1", reasons=(), reason_text=None),
        b.patient(id="p1"),
        conditions=[
            b.condition(id="c1", category="problem-list-item"),
            b.condition(id="c2", verification="refuted"),
            b.condition(id="c3", verification="entered-in-error"),
        ],
    )
    assert event_of(record).codings == ()


def test_a_condition_the_encounter_lists_as_its_diagnosis_counts_whatever_its_category():
    enc = b.encounter(id="e1", reasons=(), reason_text=None)
    enc["diagnosis"] = [{"condition": {"reference": "Condition/c1"}}]
    record = EncounterRecord(enc, None, conditions=[b.condition(id="c1", category="x")])
    assert [c.code for c in event_of(record).codings] == ["52684005"]


def test_cancelled_observation_adds_nothing():
    record = EncounterRecord(
        b.encounter(id="e1", reasons=(), reason_text=None),
        b.patient(id="p1"),
        observations=[b.injury_intent(status="cancelled")],
    )
    assert event_of(record).codings == ()


def test_status_decides_the_event_kind():
    assert encounter_kind(b.encounter(), first_version=True) is EventKind.ARRIVAL
    assert encounter_kind(b.encounter(), first_version=False) is EventKind.UPDATE
    assert encounter_kind(b.encounter(status="finished"), first_version=False) is (
        EventKind.DISCHARGE
    )
    for voided in ("entered-in-error", "cancelled"):
        assert encounter_kind(b.encounter(status=voided), first_version=False) is (
            EventKind.CANCEL_ARRIVAL
        )
    assert encounter_kind(b.encounter(), first_version=False, reopened=True) is (
        EventKind.CANCEL_DISCHARGE
    )


def test_finished_encounter_carries_its_discharge_time():
    enc = b.encounter(status="finished", end="2025-03-02T01:05:00Z")
    event = event_of(EncounterRecord(enc, b.patient()), EventKind.DISCHARGE)
    assert event.discharge == datetime(2025, 3, 2, 1, 5, tzinfo=UTC)


def test_inpatient_encounter_that_came_through_the_ed_is_still_an_emergency_attendance():
    # like the R4 spec's "emerg" example: class IMP now, EMER in classHistory
    enc = b.encounter(klass="IMP")
    enc["classHistory"] = [{"class": {"code": "EMER"}, "period": {"start": "2025-03-01"}}]
    assert event_of(EncounterRecord(enc, b.patient())).is_emergency is True
    assert event_of(EncounterRecord(b.encounter(klass="AMB"), b.patient())).is_emergency is False


def test_invalid_nhs_number_is_kept_and_flagged():
    bad = b.invalid_nhs_number(2)
    event = event_of(EncounterRecord(b.encounter(), b.patient(nhs=bad)))
    assert event.patient.nhs_number == bad
    assert "invalid_nhs_number" in event.flags


def test_missing_and_partial_birth_dates_are_flagged():
    missing = event_of(EncounterRecord(b.encounter(), b.patient(birth_date=None)))
    partial = event_of(EncounterRecord(b.encounter(), b.patient(birth_date="2009-04")))
    assert missing.patient.birth_date is None and "missing_birth_date" in missing.flags
    assert partial.patient.birth_date is None and "partial_birth_date" in partial.flags


def test_patient_not_yet_received_leaves_the_nhs_number_of_a_logical_subject():
    enc = b.encounter()
    nhs = b.nhs_number(5)
    enc["subject"] = {"identifier": {"system": b.NHS, "value": nhs}}
    event = event_of(EncounterRecord(enc, None))
    assert event.patient.nhs_number == nhs
    assert "patient_not_found" in event.flags


def test_official_identifier_is_the_visit_number_and_an_id_stands_in_when_there_is_none():
    enc = b.encounter(id="e9", visit=None)
    assert visit_number(enc) == "Encounter/e9"
    enc["identifier"] = [
        {"use": "secondary", "value": "OTHER-1"},
        {"use": "usual", "value": "USUAL-1"},
        {"use": "official", "value": "OFFICIAL-1"},
    ]
    assert visit_number(enc) == "OFFICIAL-1"


def test_arrival_given_as_a_date_only_is_london_midnight_and_flagged():
    event = event_of(EncounterRecord(b.encounter(arrival="2025-07-01"), b.patient()))
    assert event.arrival == datetime(2025, 6, 30, 23, 0, tzinfo=UTC)  # BST
    assert "partial_arrival_time" in event.flags


def test_references_are_read_as_type_and_id_whatever_their_form():
    assert reference_of({"reference": "Patient/p1"}) == "Patient/p1"
    assert reference_of({"reference": "https://ed.example/fhir/Patient/p1"}) == "Patient/p1"
    assert reference_of({"reference": "Patient/p1/_history/3"}) == "Patient/p1"
    assert reference_of({"reference": "#contained"}) is None
    assert reference_of({"reference": "urn:uuid:1234"}) is None
    assert reference_of({"display": "no reference"}) is None


def test_repr_of_an_event_from_fhir_names_no_person():
    event = event_of(EncounterRecord(b.encounter(), b.patient()))
    text = repr(event) + repr(event.patient)
    assert "Testwood" not in text and b.nhs_number(0) not in text


def test_condition_and_observation_notes_reach_free_text_for_detection():
    condition = b.condition(id="c1", code=(b.ICD10, "S01.8", "Open wound of head"))
    condition["note"] = [{"text": "hit over the head with a bottle by another male"}]
    observation = b.injury_intent(id="o1", value=b.ASSAULT)
    observation["note"] = [{"text": "police informed"}]
    record = EncounterRecord(
        b.encounter(id="e1", reasons=(), reason_text=None),
        b.patient(id="p1"),
        conditions=[condition],
        observations=[observation],
    )
    assert event_of(record).free_text == (
        "hit over the head with a bottle by another male",
        "police informed",
    )
