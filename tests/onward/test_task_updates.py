"""The service answers: a FHIR client library (`fhirclient`) reads and updates the Task on a
live gateway with the service's token, moving the onward referral; the Task's history is
the moves in order, and the rules of its life are kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fhirclient import client as fhir_client
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.fhirreference import FHIRReference  # noqa: F401  (models load)
from fhirclient.models.task import Task, TaskOutput

from adapters.fhir.auth import TokenAuthenticator, service_site
from adapters.fhir.task_routes import task_router
from referral_gateway.domain.onward import Mover, TaskStatus
from referral_gateway.domain.referral import ReferralUpdate
from referral_gateway.storage.fhir_store import ApiClientStore
from tests.consent_store.builders import WORKER
from tests.onward.builders import add_service, consented_referral, fhir_service
from tests.web.live import LiveServer


@pytest.fixture
def live(onward, clock, engine) -> Iterator[LiveServer]:
    app = FastAPI()
    app.include_router(
        task_router(
            tasks=onward, authenticate=TokenAuthenticator(ApiClientStore(engine)), clock=clock
        )
    )
    server = LiveServer(app).start()
    yield server
    server.stop()


def _token(engine, service_id: str, now) -> str:
    _, token = ApiClientStore(engine).create(
        name=f"service {service_id}", site=service_site(service_id), now=now
    )
    return token


def _fhir(url: str, token: str) -> fhir_client.FHIRClient:
    smart = fhir_client.FHIRClient(settings={"app_id": "wexcombe", "api_base": f"{url}/fhir/"})
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    return smart


@pytest.fixture
def sent_task(onward, sharing, assignments, clock) -> str:
    add_service(onward, fhir_service("http://127.0.0.1:9"), clock())
    add_service(onward, fhir_service("http://127.0.0.1:9", id="other-service"), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    return onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id


def test_fhirclient_moves_the_task_and_its_history_follows(onward, engine, clock, live, sent_task):
    news = []
    onward.announce = news.append
    smart = _fhir(live.url, _token(engine, "wexcombe-youth", clock()))

    task = Task.read(sent_task, smart.server)
    assert (task.status, task.intent, task.code.coding[0].code) == ("requested", "order", "fulfill")
    task.status = "accepted"
    task.update(smart.server)
    clock.advance(minutes=5)
    task.status = "in-progress"
    task.update(smart.server)
    clock.advance(days=20)
    task.status = "completed"
    task.output = [
        TaskOutput(
            {"type": {"text": "outcome"}, "valueString": "Engaged with a mentor for 8 weeks"}
        )
    ]
    task.update(smart.server)

    history = onward.history(sent_task)
    assert [(e.status, e.by) for e in history] == [
        (TaskStatus.REQUESTED, Mover.GATEWAY),
        (TaskStatus.ACCEPTED, Mover.SERVICE),
        (TaskStatus.IN_PROGRESS, Mover.SERVICE),
        (TaskStatus.COMPLETED, Mover.SERVICE),
    ]
    assert history[-1].outcome == "Engaged with a mentor for 8 weeks"
    assert Task.read(sent_task, smart.server).status == "completed"
    assert [n.update for n in news] == [ReferralUpdate.ONWARD_ACCEPTED]


def test_a_rejection_needs_a_reason_and_is_announced(onward, engine, clock, live, sent_task):
    news = []
    onward.announce = news.append
    token = _token(engine, "wexcombe-youth", clock())
    smart = _fhir(live.url, token)
    task = Task.read(sent_task, smart.server)
    task.status = "rejected"
    with pytest.raises(Exception, match="422"):
        task.update(smart.server)
    task.statusReason = CodeableConcept({"text": "Outside our area"})
    task.update(smart.server)

    assert onward.describe(sent_task)[0].status is TaskStatus.REJECTED
    assert onward.describe(sent_task)[0].reason == "Outside our area"
    assert [n.update for n in news] == [ReferralUpdate.ONWARD_REJECTED]
    # a final Task moves no more, also by PATCH
    patch = httpx.patch(
        f"{live.url}/fhir/Task/{sent_task}",
        json=[{"op": "replace", "path": "/status", "value": "accepted"}],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert patch.status_code == 422
    assert patch.json()["resourceType"] == "OperationOutcome"


def test_a_json_patch_moves_the_task(onward, engine, clock, live, sent_task):
    token = _token(engine, "wexcombe-youth", clock())
    answer = httpx.patch(
        f"{live.url}/fhir/Task/{sent_task}",
        json=[{"op": "replace", "path": "/status", "value": "received"}],
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json-patch+json"},
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "received"
    assert onward.describe(sent_task)[0].status is TaskStatus.RECEIVED


def test_another_services_token_or_an_ed_token_cannot_touch_the_task(
    onward, engine, clock, live, sent_task
):
    other = _token(engine, "other-service", clock())
    _, ed_token = ApiClientStore(engine).create(name="rxx epr", site="RXX01", now=clock())
    body = {"resourceType": "Task", "id": sent_task, "status": "accepted", "intent": "order"}
    url = f"{live.url}/fhir/Task/{sent_task}"
    assert (
        httpx.put(url, json=body, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    )
    assert (
        httpx.put(url, json=body, headers={"Authorization": f"Bearer {ed_token}"}).status_code
        == 403
    )
    assert httpx.put(url, json=body).status_code == 401
    assert onward.describe(sent_task)[0].status is TaskStatus.REQUESTED
