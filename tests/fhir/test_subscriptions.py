"""Rest-hook notifications (R4 backport, id-only): the gateway fetches what they name from the
source server running in another process."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.errors import SourceUnavailable, Unprocessable
from adapters.fhir.routes import fhir_router
from adapters.fhir.sources import FhirSource
from adapters.fhir.subscriptions import SubscriptionReceiver, read_notification
from referral_gateway.storage.fhir_store import ApiClient
from referral_gateway.storage.inbox import INBOX
from referral_gateway.storage.views import error_store
from tests.fhir import builders as b
from tests.fhir.builders import ICD10_X99, backport_notification

RXX = ApiClient(1, "rxx-epr-hook", "RXX01", None, None)  # type: ignore[arg-type]


@pytest.fixture
def receiver(writer, store, source_server, clock) -> SubscriptionReceiver:
    source = FhirSource(name="rxx-epr", base_url=source_server.base_url, site="RXX01", poll=False)
    return SubscriptionReceiver(writer, store, [source], clock)


def stored_keys(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r.message_key for r in conn.execute(select(INBOX.c.message_key)))


def test_a_handshake_is_answered_and_stores_nothing(receiver, source_server, engine):
    outcome = receiver(backport_notification(source_server.base_url, kind="handshake"), RXX)
    assert outcome["issue"][0]["severity"] == "information"
    assert stored_keys(engine) == [] and source_server.requests() == []


def test_an_id_only_encounter_event_fetches_the_encounter_and_its_patient(
    receiver, source_server, engine
):
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1", subject="Patient/p1"), "2025-03-01T21:14:00Z"),
    )
    receiver(backport_notification(source_server.base_url, "Encounter/e1"), RXX)
    assert stored_keys(engine) == ["Encounter/e1/_history/1", "Patient/p1/_history/1"]
    assert sorted(r.split("?")[0] for r in source_server.requests()) == [
        "/fhir/Condition",  # its diagnoses and injury intent are searched by Encounter
        "/fhir/Encounter/e1",
        "/fhir/Observation",
        "/fhir/Patient/p1",
    ]
    with engine.connect() as conn:
        assert set(conn.execute(select(INBOX.c.sender)).scalars()) == {"rxx-epr"}


def test_the_r4b_subscription_status_form_is_read_too(source_server):
    base = source_server.base_url
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "SubscriptionStatus",
                    "status": "active",
                    "type": "event-notification",
                    "subscription": {"reference": f"{base}/Subscription/s1"},
                    "notificationEvent": [
                        {"eventNumber": "7", "focus": {"reference": f"{base}/Encounter/e1"}}
                    ],
                }
            }
        ],
    }
    note = read_notification(bundle)
    assert (note.type, note.focus) == ("event-notification", (f"{base}/Encounter/e1",))


def test_a_condition_event_brings_its_ed_encounter_and_patient(receiver, source_server, engine):
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1", subject="Patient/p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.condition(id="c1", encounter_ref="Encounter/e1"), "2025-03-01T21:40:00Z"),
    )
    receiver(backport_notification(source_server.base_url, "Condition/c1"), RXX)
    assert stored_keys(engine) == [
        "Condition/c1/_history/1",
        "Encounter/e1/_history/1",
        "Patient/p1/_history/1",
    ]


def test_resources_about_other_kinds_of_encounter_are_left_at_the_source(
    receiver, source_server, engine
):
    source_server.add(
        b.at_source(b.patient(id="p2"), "2025-03-01T09:00:00Z"),
        b.at_source(
            b.encounter(id="e2", klass="AMB", subject="Patient/p2"), "2025-03-01T09:00:00Z"
        ),
        b.at_source(b.condition(id="c2", encounter_ref="Encounter/e2"), "2025-03-01T09:10:00Z"),
        b.at_source(b.patient(id="p3"), "2025-03-01T09:00:00Z"),
    )
    receiver(
        backport_notification(source_server.base_url, "Encounter/e2", "Condition/c2", "Patient/p3"),
        RXX,
    )
    assert stored_keys(engine) == []


def test_a_focus_outside_the_configured_source_is_refused_before_any_fetch(receiver, source_server):
    note = backport_notification("http://169.254.169.254/fhir", "Encounter/e1")
    with pytest.raises(Unprocessable):
        receiver(note, RXX)
    assert source_server.requests() == []


def test_a_client_of_a_site_with_no_source_is_refused(receiver, source_server):
    other_site = ApiClient(2, "ryy", "RYY01", None, None)  # type: ignore[arg-type]
    with pytest.raises(Unprocessable):
        receiver(backport_notification(source_server.base_url, "Encounter/e1"), other_site)


def test_a_source_that_fails_to_serve_the_focus_is_a_502(receiver, source_server):
    source_server.add(b.at_source(b.encounter(id="e1"), "2025-03-01T21:14:00Z"))
    source_server.fail(1)
    with pytest.raises(SourceUnavailable) as caught:
        receiver(backport_notification(source_server.base_url, "Encounter/e1"), RXX)
    assert caught.value.status == 502


def test_notifications_arrive_over_http_with_the_sender_s_token(
    writer, clients, clock, receiver, source_server, engine
):
    _, token = clients.create(name="rxx-epr-hook", site="RXX01", now=clock())
    app = FastAPI()
    app.include_router(
        fhir_router(
            writer=writer,
            authenticate=TokenAuthenticator(clients),
            clock=clock,
            notifications=receiver,
        )
    )
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1", subject="Patient/p1"), "2025-03-01T21:14:00Z"),
    )
    note = backport_notification(source_server.base_url, "Encounter/e1")
    headers = {"Content-Type": "application/fhir+json"}
    with TestClient(app, headers=headers) as http:
        refused = http.post("/fhir/subscription-hook", json=note)
        accepted = http.post(
            "/fhir/subscription-hook", json=note, headers={"Authorization": f"Bearer {token}"}
        )
        source_server.fail(1)
        upstream_down = http.post(
            "/fhir/subscription-hook", json=note, headers={"Authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 401
    assert accepted.status_code == 200
    assert accepted.json()["resourceType"] == "OperationOutcome"
    assert upstream_down.status_code == 502
    assert stored_keys(engine) == ["Encounter/e1/_history/1", "Patient/p1/_history/1"]


def test_a_malformed_notification_is_a_422_naming_the_status_entry(source_server):
    bundle = backport_notification(source_server.base_url, "Encounter/e1")
    bundle["entry"][0]["resource"]["parameter"][0]["valueBanana"] = 1
    with pytest.raises(Unprocessable) as caught:
        read_notification(bundle)
    expressions = {e for i in caught.value.issues for e in i.expression}
    assert any(e.startswith("Bundle.entry[0].resource.parameter[0]") for e in expressions)


def test_an_encounter_event_brings_the_diagnoses_the_source_holds_apart(
    receiver, source_server, engine
):
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1", reasons=(), reason_text=None), "2025-03-01T21:14:00Z"),
        b.at_source(b.condition(id="c1", code=ICD10_X99), "2025-03-01T21:30:00Z"),
        b.at_source(b.injury_intent(id="o1"), "2025-03-01T21:30:00Z"),
        b.at_source(b.condition(id="c9", encounter_ref="Encounter/e9"), "2025-03-01T21:30:00Z"),
    )
    receiver(backport_notification(source_server.base_url, "Encounter/e1"), RXX)
    assert stored_keys(engine) == [
        "Condition/c1/_history/1",
        "Encounter/e1/_history/1",
        "Observation/o1/_history/1",
        "Patient/p1/_history/1",
    ]


def focus_errors(engine) -> list[dict[str, Any]]:
    return [e for e in error_store(engine) if e["stage"] == "focus"]


def test_a_focus_the_source_does_not_serve_yet_is_kept_in_the_error_store_and_fetched_again(
    receiver, source_server, engine, clock
):
    outcome = receiver(backport_notification(source_server.base_url, "Encounter/e1"), RXX)
    assert [i["severity"] for i in outcome["issue"]] == ["information", "warning"]
    [missed] = focus_errors(engine)
    assert (missed["sender"], missed["message_type"], missed["attempts"]) == (
        "rxx-epr",
        "Encounter",
        0,
    )
    assert "e1" not in missed["error"]
    with engine.connect() as conn:
        errored = conn.execute(
            text("select sum(n) from feed_count where metric='errored' and sender='rxx-epr'")
        ).scalar_one()
    assert errored == 1
    assert receiver.retry_missed(clock()) == 0  # not due yet: nothing asked of the source
    assert source_server.requests() == ["/fhir/Encounter/e1"]
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1", subject="Patient/p1"), "2025-03-01T21:14:00Z"),
    )
    clock.advance(seconds=31)
    assert receiver.retry_missed(clock()) == 1
    assert focus_errors(engine) == []
    assert "Encounter/e1/_history/1" in stored_keys(engine)
    assert "Patient/p1/_history/1" in stored_keys(engine)


def test_a_focus_that_never_appears_ends_in_the_error_store_after_the_last_retry(
    writer, store, source_server, engine, clock
):
    source = FhirSource(name="rxx-epr", base_url=source_server.base_url, site="RXX01", poll=False)
    receiver = SubscriptionReceiver(
        writer, store, [source], clock, retry_delays_seconds=(10, 20, 40)
    )
    receiver(backport_notification(source_server.base_url, "Condition/c1"), RXX)
    for _ in range(6):
        clock.advance(seconds=45)
        receiver.retry_missed(clock())
    [missed] = focus_errors(engine)
    assert missed["attempts"] == 3
    assert missed["error"] == "Condition still not readable at the source after 3 retries; given up"
    assert source_server.requests() == ["/fhir/Condition/c1"] * 4


def test_a_condition_whose_encounter_is_not_served_yet_is_retried_too(
    receiver, source_server, engine, clock
):
    source_server.add(b.at_source(b.condition(id="c1", code=ICD10_X99), "2025-03-01T21:30:00Z"))
    receiver(backport_notification(source_server.base_url, "Condition/c1"), RXX)
    assert [e["message_type"] for e in focus_errors(engine)] == ["Condition"]
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1"), "2025-03-01T21:14:00Z"),
    )
    clock.advance(seconds=31)
    assert receiver.retry_missed(clock()) == 1
    assert {"Condition/c1/_history/1", "Encounter/e1/_history/1"} <= set(stored_keys(engine))


def test_reprocessing_the_error_store_fetches_a_given_up_focus_again_rather_than_dropping_it(
    writer, store, source_server, engine, keyring, clock
):
    from referral_gateway.storage.inbox import InboxStore

    source = FhirSource(name="rxx-epr", base_url=source_server.base_url, site="RXX01", poll=False)
    receiver = SubscriptionReceiver(writer, store, [source], clock, retry_delays_seconds=(10,))
    receiver(backport_notification(source_server.base_url, "Encounter/e1"), RXX)
    clock.advance(seconds=11)
    receiver.retry_missed(clock())
    assert [e["attempts"] for e in focus_errors(engine)] == [1]  # given up
    assert InboxStore(engine, keyring).requeue_errors() == 1
    assert [e["attempts"] for e in focus_errors(engine)] == [0]
    source_server.add(
        b.at_source(b.patient(id="p1"), "2025-03-01T21:14:00Z"),
        b.at_source(b.encounter(id="e1"), "2025-03-01T21:14:00Z"),
    )
    assert receiver.retry_missed(clock()) == 1
    assert "Encounter/e1/_history/1" in stored_keys(engine)
