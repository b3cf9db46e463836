"""The pipeline's decoder for channel "fhir", with an in-memory resource lookup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.fhir.channel import REOPENED, make_decoder
from adapters.fhir.mapping import reference_of
from referral_gateway.domain.attendance import EventKind
from referral_gateway.services.errors import MessageRejected
from referral_gateway.storage.inbox import PendingMessage
from tests.fhir import builders as b


class FakeLookup:
    """Resources by site and Type/id, searched the way the store searches them."""

    def __init__(self, *resources: dict[str, Any], site: str = "RXX01") -> None:
        self.held: dict[tuple[str, str], dict[str, Any]] = {}
        for r in resources:
            self.add(r, site)

    def add(self, resource: dict[str, Any], site: str = "RXX01") -> None:
        self.held[(site, f"{resource['resourceType']}/{resource['id']}")] = resource

    def get(self, site: str, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return self.held.get((site, f"{resource_type}/{resource_id}"))

    def find_by_identifier(self, site, resource_type, system, value):
        return [
            r
            for (s, key), r in self.held.items()
            if s == site
            and key.startswith(resource_type + "/")
            and any(
                i.get("value") == value and system in (None, i.get("system"))
                for i in r.get("identifier", [])
            )
        ]

    def referencing_content(self, site, resource_type, *, subject=None, encounter=None, limit=50):
        types = (resource_type,) if isinstance(resource_type, str) else resource_type
        return [
            r
            for (s, key), r in self.held.items()
            if s == site
            and key.split("/")[0] in types
            and (subject is None or reference_of(r.get("subject")) == subject)
            and (encounter is None or reference_of(r.get("encounter")) == encounter)
        ][:limit]


def message(
    resource: dict[str, Any],
    *,
    version: int = 1,
    message_type: str | None = None,
    site: str = "RXX01",
) -> PendingMessage:
    stored = {
        **resource,
        "meta": {"versionId": str(version), "lastUpdated": "2025-03-01T21:30:00.000Z"},
    }
    return PendingMessage(
        id=1,
        channel="fhir",
        sender="rxx-ed-epr",
        site=site,
        message_type=message_type or resource["resourceType"],
        payload=json.dumps(stored).encode(),
        received_at=datetime(2025, 3, 1, tzinfo=UTC),
    )


def test_first_version_of_an_encounter_is_an_arrival_built_with_its_patient_and_diagnoses():
    patient = b.patient(id="p1")
    enc = b.encounter(id="e1", reasons=(), reason_text=None)
    lookup = FakeLookup(patient, enc, b.condition(id="c1", encounter_ref="Encounter/e1"))
    [event] = make_decoder(lookup)(message(enc))
    assert event.kind is EventKind.ARRIVAL
    assert event.patient.nhs_number == b.nhs_number(0)
    assert [c.code for c in event.codings] == ["52684005"]
    assert event.occurred_at == datetime(2025, 3, 1, 21, 30, tzinfo=UTC)


def test_later_versions_update_and_a_reopened_finished_encounter_cancels_the_discharge():
    enc = b.encounter(id="e1")
    decode = make_decoder(FakeLookup(enc))
    assert decode(message(enc, version=2))[0].kind is EventKind.UPDATE
    reopened = decode(message(enc, version=3, message_type="Encounter" + REOPENED))
    assert reopened[0].kind is EventKind.CANCEL_DISCHARGE


def test_a_condition_re_evaluates_the_encounter_it_names():
    enc = b.encounter(id="e1", reasons=(), reason_text=None)
    cond = b.condition(id="c1", encounter_ref="Encounter/e1")
    [event] = make_decoder(FakeLookup(b.patient(id="p1"), enc, cond))(message(cond))
    assert event.kind is EventKind.UPDATE
    assert event.visit_number == "ED-2025-0001"
    assert event.message_type == "Condition"
    assert [c.code for c in event.codings] == ["52684005"]


def test_a_condition_for_an_encounter_not_yet_received_gives_nothing_for_now():
    cond = b.condition(id="c1", encounter_ref="Encounter/not-yet")
    assert make_decoder(FakeLookup(cond))(message(cond)) == []


def test_a_condition_on_a_cancelled_encounter_keeps_it_cancelled():
    enc = b.encounter(id="e1", status="entered-in-error")
    cond = b.condition(id="c1", encounter_ref="Encounter/e1")
    [event] = make_decoder(FakeLookup(enc, cond))(message(cond))
    assert event.kind is EventKind.CANCEL_ARRIVAL


def test_a_patient_change_re_evaluates_each_of_that_patient_s_encounters():
    p = b.patient(id="p1", birth_date="2008-01-01")
    e1 = b.encounter(id="e1", visit="V1", subject="Patient/p1")
    e2 = b.encounter(id="e2", visit="V2", subject="Patient/p1")
    other = b.encounter(id="e3", visit="V3", subject="Patient/someone-else")
    events = make_decoder(FakeLookup(p, e1, e2, other))(message(p, version=2))
    assert sorted(e.visit_number for e in events) == ["V1", "V2"]
    assert {e.kind for e in events} == {EventKind.UPDATE}


def test_the_same_ids_at_another_site_are_other_resources():
    enc = b.encounter(id="e1", reasons=(), reason_text=None)
    lookup = FakeLookup(b.patient(id="p1"), enc)
    lookup.add(b.condition(id="c1", encounter_ref="Encounter/e1"), site="RYY01")
    [event] = make_decoder(lookup)(message(enc))
    assert event.codings == ()


def test_encounter_subject_given_only_by_nhs_number_finds_the_patient_by_identifier():
    nhs = b.nhs_number(7)
    enc = b.encounter(id="e1")
    enc["subject"] = {"identifier": {"system": b.NHS, "value": nhs}}
    [event] = make_decoder(FakeLookup(b.patient(id="p7", nhs=nhs), enc))(message(enc))
    assert event.patient.birth_date is not None
    assert "patient_not_found" not in event.flags


def test_a_payload_that_is_not_json_goes_to_the_error_store():
    broken = PendingMessage(
        1, "fhir", "x", "RXX01", "Encounter", b"{not json", datetime(2025, 3, 1, tzinfo=UTC)
    )
    with pytest.raises(MessageRejected) as caught:
        make_decoder(FakeLookup())(broken)
    assert caught.value.stage == "parse"
