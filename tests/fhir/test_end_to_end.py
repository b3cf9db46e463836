"""FHIR in, candidate referral out: the whole gateway (storage, pipeline, detection) behind
its web app; FHIR sent with fhirclient to a running server, and HL7 and FHIR about the same
attendance."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from fhirclient import client as fhir_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.condition import Condition
from fhirclient.models.encounter import Encounter
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRPermissionDeniedException, FHIRUnauthorizedException
from sqlalchemy import text

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.synthetic import Person, Visit, adt
from referral_gateway.config import Settings
from referral_gateway.storage.views import referral_summaries
from referral_gateway.wiring.gateway import Gateway, build_gateway
from referral_gateway.wiring.web import build_app
from tests.fhir import builders as b


@pytest.fixture
def gateway(tmp_path, database_url, keyring) -> Iterator[Gateway]:
    """Storage, intakes and pipeline; the pipeline is drained by the tests, not a thread."""
    gw = build_gateway(Settings(data_dir=tmp_path, database_url=database_url), keyring=keyring)
    gw.intake.start()
    gw.fhir.start(poll=False)
    yield gw
    gw.fhir.stop()
    gw.intake.stop()
    gw.stop()


@pytest.fixture
def fhir(gateway) -> Iterator[TestClient]:
    _, token = gateway.fhir.clients.create(name="rxx-ed-epr", site="RXX01", now=gateway.clock())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with TestClient(build_app(gateway), headers=headers) as http:
        yield http


def referrals(gateway) -> list[dict[str, Any]]:
    gateway.pipeline.drain()
    return referral_summaries(gateway.engine)


def referral_of_visit(gateway, site: str, visit: str) -> str | None:  # type: ignore[no-untyped-def]
    """The referral of the attendance with this visit number (found by its blind index)."""
    with gateway.engine.connect() as conn:
        found = gateway.attendances.snapshot(conn, {(site, visit)}).found
    stored = found.get((site, visit))
    return stored.referral_id if stored else None


def test_a_stabbed_fifteen_year_old_sent_as_a_transaction_becomes_one_candidate(gateway, fhir):
    response = fhir.post("/fhir", json=b.attendance_bundle(1, birth_date="2009-04-12"))
    assert response.status_code == 200
    [referral] = referrals(gateway)
    assert (referral["site"], referral["age"], referral["status"]) == ("RXX01", 15, "new")
    assert referral["injury_category"] == "bladed"
    assert referral_of_visit(gateway, "RXX01", "ED-2025-000001") == referral["id"]


def test_an_adult_with_the_same_injury_is_screened_out(gateway, fhir):
    fhir.post("/fhir", json=b.attendance_bundle(2, birth_date="1980-01-01"))
    assert referrals(gateway) == []


def test_the_same_bundle_sent_twice_gives_one_candidate(gateway, fhir):
    bundle = b.attendance_bundle(3)
    fhir.post("/fhir", json=bundle)
    fhir.post("/fhir", json=bundle)
    assert len(referrals(gateway)) == 1


def test_a_diagnosis_that_arrives_after_the_encounter_makes_the_candidate(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1", reasons=(), reason_text="hand"))
    assert referrals(gateway) == []
    fhir.post("/fhir/Condition", json=b.condition(encounter_ref="Encounter/e1"))
    [referral] = referrals(gateway)
    assert referral["detection_rule"] == "assault_signal"


def test_an_injury_intent_observation_alone_is_an_assault_signal(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1", reasons=(), reason_text=None))
    fhir.post("/fhir/Observation", json=b.injury_intent(encounter_ref="Encounter/e1"))
    assert len(referrals(gateway)) == 1


def test_a_birth_date_sent_late_on_the_patient_makes_the_candidate(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1", birth_date=None))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    assert referrals(gateway) == []
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1", birth_date="2008-06-30"))
    [referral] = referrals(gateway)
    assert referral["age"] == 16


def test_an_encounter_entered_in_error_voids_its_candidate(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    assert [r["status"] for r in referrals(gateway)] == ["new"]
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1", status="entered-in-error"))
    assert [r["status"] for r in referrals(gateway)] == ["voided"]


def test_a_finished_encounter_shows_the_young_person_has_left(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    fhir.put(
        "/fhir/Encounter/e1",
        json=b.encounter(id="e1", status="finished", end="2025-03-02T00:30:00Z"),
    )
    [referral] = referrals(gateway)
    assert referral["attendance_status"] == "discharged"


def test_a_non_emergency_encounter_is_not_a_candidate(gateway, fhir):
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1", klass="AMB"))
    assert referrals(gateway) == []


def test_r5_shaped_input_is_refused_and_nothing_reaches_the_pipeline(gateway, fhir):
    r5 = b.encounter()
    r5["class"] = [{"coding": [r5["class"]]}]
    response = fhir.post("/fhir/Encounter", json=r5)
    assert response.status_code == 422
    assert gateway.inbox.fetch_pending(10) == []


def test_the_same_attendance_over_hl7_and_fhir_is_one_attendance_with_one_candidate(gateway, fhir):
    arrival = datetime(2025, 3, 1, 21, 14, tzinfo=UTC)
    person = Person(
        mrn="RXX-MRN-000123",
        nhs_number=b.nhs_number(0),
        family="Testwood",
        given="Alex",
        birth_date=date(2009, 4, 12),
        sex="M",
    )
    visit = Visit(
        person=person,
        visit_number="ED-2025-0001",
        site="RXX01",
        arrival=arrival,
        area="MAJORS",
        bay="B4",
        complaint="stabbed in left forearm",
    )
    hl7 = Hl7Intake(gateway.intake, gateway.clock)
    [item] = hl7.receive(adt("A01", visit, "CTRL-1", sent=arrival).encode())
    gateway.intake.store(item.arrival)
    fhir.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    fhir.put("/fhir/Encounter/e1", json=b.encounter(id="e1", visit="ED-2025-0001"))
    fhir.post("/fhir/Condition", json=b.condition(encounter_ref="Encounter/e1"))
    [referral] = referrals(gateway)
    assert referral_of_visit(gateway, "RXX01", "ED-2025-0001") == referral["id"]
    with gateway.engine.connect() as conn:
        assert conn.execute(text("select count(*) from attendance")).scalar_one() == 1


# -- a real FHIR client against a running server ----------------------------------------------
@pytest.fixture
def served(gateway) -> Iterator[str]:
    """The gateway's web app served by uvicorn on a free port; yields the FHIR base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build_app(gateway), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/fhir"
    server.should_exit = True
    thread.join(10)


def fhir_server(base: str, token: str | None):
    smart = fhir_client.FHIRClient(settings={"app_id": "rxx-ed-epr", "api_base": base})
    if token:
        smart.server.session.headers["Authorization"] = f"Bearer {token}"
    return smart.server


def test_fhirclient_creates_patient_encounter_and_condition_that_become_a_candidate(
    gateway, served
):
    _, token = gateway.fhir.clients.create(name="rxx-ed-epr", site="RXX01", now=gateway.clock())
    server = fhir_server(served, token)
    created = Patient(b.patient()).create(server)
    assert created["resourceType"] == "Patient" and created["meta"]["versionId"] == "1"
    patient_ref = f"Patient/{created['id']}"
    encounter = Encounter(b.encounter(subject=patient_ref)).create(server)
    Condition(
        b.condition(encounter_ref=f"Encounter/{encounter['id']}", subject=patient_ref)
    ).create(server)
    [referral] = referrals(gateway)
    assert referral["age"] == 15


def test_fhirclient_posts_a_transaction_bundle_and_reads_the_capability_statement(gateway, served):
    _, token = gateway.fhir.clients.create(name="rxx-ed-epr", site="RXX01", now=gateway.clock())
    server = fhir_server(served, token)
    response = Bundle(b.attendance_bundle(5)).create(server)
    assert response["type"] == "transaction-response"
    assert len(response["entry"]) == 3
    server.get_capability()
    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert {r.type for r in statement.rest[0].resource} == {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
    }
    assert len(referrals(gateway)) == 1


def test_fhirclient_without_or_with_a_wrong_token_is_refused(gateway, served):
    with pytest.raises(FHIRUnauthorizedException):
        Patient(b.patient()).create(fhir_server(served, None))
    with pytest.raises(FHIRPermissionDeniedException):
        Patient(b.patient()).create(fhir_server(served, "rgf_wrong"))
    assert gateway.inbox.fetch_pending(10) == []
