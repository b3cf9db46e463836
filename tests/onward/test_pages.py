"""Onward referrals on the pages: the youth worker sends the referral to a service from its
page and sees the service's answer there; administrators see dead deliveries and retry them."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from consent.policy import Role
from referral_gateway.config import Settings
from referral_gateway.domain.clock import system_clock
from referral_gateway.domain.onward import TaskMove, TaskStatus
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import assigned_to
from referral_gateway.storage.onward import OutboxState
from referral_gateway.wiring.onward import build_onward, onward_sender
from referral_gateway.wiring.web import install_web
from tests.onward.builders import add_service, fhir_service
from tests.web.builders import FAST_HASHER, SITE_A, FakeEd, Patient
from tests.web.conftest import Web, csrf_of, web_options

YOUNG = Patient(given="Skyler", family="Madeup", nhs_number="9990000026", age=17)


@pytest.fixture
def site(engine, keyring, clock):
    app = FastAPI()
    listeners: list = []
    sharing = Sharing(engine, keyring, AuditStore(), assignments=assigned_to)
    onward = build_onward(
        Settings(outbox_max_attempts=2),
        engine,
        keyring,
        sharing,
        clock,
        announce=lambda n: None,
        sender=onward_sender(system_clock),
    )
    ctx = install_web(
        app,
        engine=engine,
        keyring=keyring,
        clock=clock,
        listeners=listeners,
        sharing=sharing,
        options=web_options(),
        hasher=FAST_HASHER,
        onward=onward,
    )
    return Web(app, ctx, FakeEd(engine, keyring, clock), clock, listeners), onward


def post(client, page: str, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get(page).text)
    return client.post(path, data=data | {"csrf_token": token}, follow_redirects=False)


def test_a_youth_worker_sends_a_referral_and_sees_the_service_accept_it(site, receiver):
    web, onward = site
    receiver.start()
    add_service(onward, fhir_service(receiver.url), web.clock())
    web.account("ash")
    ash = web.signed_in("ash")
    rid = web.ed.stab_wound(patient=YOUNG)
    page = f"/referrals/{rid}"
    assert "send-onward" not in ash.get(page).text  # no consent yet: nothing to send
    post(ash, page, f"{page}/claim")
    post(
        ash,
        page,
        f"{page}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="17",
        onward_sharing="yes",
    )
    assert 'id="send-onward"' in ash.get(page).text

    sent = post(ash, page, f"{page}/send-onward", service="wexcombe-youth")
    assert sent.status_code == 303
    assert onward.run_outbox(web.clock).sent == 1
    [(task, _)] = onward.tasks_of(rid)
    onward.update_task("wexcombe-youth", task.id, TaskMove(TaskStatus.ACCEPTED), now=web.clock())

    shown = ash.get(page).text
    assert "Wexcombe Youth Service" in shown and "<strong>Accepted</strong>" in shown
    assert receiver.taken()[0]["key"].endswith(task.id)


def test_an_administrator_sees_a_dead_delivery_and_retries_it(site, receiver):
    web, onward = site
    add_service(onward, fhir_service(receiver.url), web.clock())  # the receiver is down
    web.account("ash")
    web.account("gorse", Role.ADMINISTRATOR, (SITE_A,))
    ash = web.signed_in("ash")
    rid = web.ed.stab_wound(patient=YOUNG)
    page = f"/referrals/{rid}"
    post(ash, page, f"{page}/claim")
    post(
        ash,
        page,
        f"{page}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="17",
        onward_sharing="yes",
    )
    post(ash, page, f"{page}/send-onward", service="wexcombe-youth")
    for _ in range(2):
        onward.run_outbox(web.clock)
        web.clock.advance(minutes=5)
    [dead] = onward.outbox([OutboxState.DEAD])

    admin = web.signed_in("gorse")
    listing = admin.get("/admin/services").text
    assert 'id="dead-letters"' in listing and "Madeup" not in listing
    assert ash.get("/admin/services").status_code == 403
    receiver.start()
    retried = post(admin, "/admin/services", "/admin/outbox/retry", id=str(dead.id))
    assert retried.status_code == 303
    assert onward.run_outbox(web.clock).sent == 1
    assert len(receiver.taken()) == 1
    assert "None." in admin.get("/admin/services").text
