"""Onward referrals sent to real receiving services in other processes: retried through
failures and an outage, never twice, never before consent, only the configured fields,
cancelled everywhere on withdrawal."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

from fhir.resources.R4B.bundle import Bundle

from consent.policy import ConsentDecision, DecisionReason
from referral_gateway.domain.onward import ShareableField, TaskStatus
from referral_gateway.storage.onward import OutboxKind, OutboxState
from tests.consent_store.builders import (
    FAMILY_NAME,
    LEAD,
    NEEDLES,
    NHS_NUMBER,
    PHONE,
    WORKER,
    override,
    withdrawn,
)
from tests.onward.builders import (
    add_service,
    consented_referral,
    fhir_service,
    webhook_service,
)
from tests.onward.conftest import WEBHOOK_SECRET, Receiver, free_port


def _task_ids(entries) -> list[str]:
    return [e["key"].rsplit(":", 1)[1] for e in entries]


def test_referrals_reach_a_flaky_service_exactly_once_through_failures_and_an_outage(
    onward, sharing, assignments, clock, receiver
):
    receiver.start(fail_first=2)
    add_service(onward, fhir_service(receiver.url), clock())
    tasks = []
    for visit in ("V1", "V2", "V3"):
        rid = consented_referral(onward, sharing, assignments, clock(), visit_number=visit)
        tasks.append(onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id)

    first = onward.run_outbox(clock)
    assert (first.sent, first.failed) == (1, 2)
    assert onward.run_outbox(clock).sent == 0  # not due yet: backing off
    clock.advance(seconds=6)
    assert onward.run_outbox(clock).sent == 2

    receiver.kill()  # the service goes down
    rid = consented_referral(onward, sharing, assignments, clock(), visit_number="V4")
    tasks.append(onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id)
    assert onward.run_outbox(clock).failed == 1
    clock.advance(seconds=11)
    assert onward.run_outbox(clock).failed == 1
    receiver.start()  # and comes back
    clock.advance(seconds=25)
    assert onward.run_outbox(clock).sent == 1
    clock.advance(hours=2)
    assert onward.run_outbox(clock).sent == 0

    arrived = Counter(_task_ids(receiver.taken("new")))
    assert arrived == Counter({t: 1 for t in tasks})
    assert receiver.taken("repeat") == []
    assert [e["result"] for e in receiver.entries()].count("failed") == 2
    assert all(i.state is OutboxState.SENT for i in onward.outbox())
    for task_id in tasks:
        assert [e.status for e in onward.history(task_id)] == [TaskStatus.REQUESTED]


def test_nothing_is_queued_or_sent_before_consent(onward, sharing, assignments, clock, receiver):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock(), consent=False)

    refused = onward.refer(WORKER, rid, "wexcombe-youth", now=clock())

    assert isinstance(refused, ConsentDecision)
    assert refused.reason is DecisionReason.NO_CONSENT_YET
    assert onward.outbox() == []
    onward.run_outbox(clock)
    assert receiver.entries() == []


def test_each_service_receives_only_its_configured_fields(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    add_service(onward, webhook_service(receiver.url), clock(), secret=WEBHOOK_SECRET)
    rid = consented_referral(onward, sharing, assignments, clock())
    onward.refer(WORKER, rid, "wexcombe-youth", now=clock())
    onward.refer(WORKER, rid, "brackenfold-mentors", now=clock())

    assert onward.run_outbox(clock).sent == 2

    [bundle] = [e["body"] for e in receiver.taken() if e["path"] == "/fhir"]
    [hook] = [e["body"] for e in receiver.taken() if e["path"] == "/hook"]
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["value"] == NHS_NUMBER
    assert patient["name"][0]["family"] == FAMILY_NAME
    assert set(patient) == {"resourceType", "id", "identifier", "name"}
    request = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    assert request["note"][0]["text"].endswith(": 16")
    assert "reasonCode" not in request  # injury category not configured
    assert hook["fields"] == {"phone": PHONE}
    hook_text = str(hook)
    assert [n for n in NEEDLES if n in hook_text and n != PHONE] == []


def test_the_bundles_sent_validate_as_r4_and_follow_the_referral_pattern(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url, fields=frozenset(ShareableField)), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    task_id = onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id
    onward.run_outbox(clock)

    [entry] = receiver.taken()
    bundle = Bundle.model_validate(entry["body"])
    assert bundle.type == "transaction"
    by_type = {e.resource.get_resource_type(): e for e in bundle.entry}
    task = by_type["Task"].resource
    assert (task.id, task.status, task.intent) == (task_id, "requested", "order")
    assert task.code.coding[0].code == "fulfill"
    assert task.focus.reference == f"ServiceRequest/{by_type['ServiceRequest'].resource.id}"
    assert task.for_fhir.reference == f"Patient/{by_type['Patient'].resource.id}"
    assert task.requester.identifier.value == "RXX01"
    assert task.owner.identifier.value == "ZZW01"
    assert {e.request.method for e in bundle.entry} == {"PUT"}
    assert entry["idempotency_key"] == f"{task_id}:deliver"


def test_withdrawal_cancels_at_every_service_and_stops_deliveries_not_yet_sent(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    add_service(onward, webhook_service(receiver.url), clock(), secret=WEBHOOK_SECRET)
    add_service(onward, fhir_service(receiver.url, id="slow-service"), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    sent = [
        onward.refer(WORKER, rid, s, now=clock()).id
        for s in ("wexcombe-youth", "brackenfold-mentors")
    ]
    assert onward.run_outbox(clock).sent == 2
    waiting = onward.refer(WORKER, rid, "slow-service", now=clock()).id

    sharing.record_consent_outcome(WORKER, rid, withdrawn(rid), now=clock())
    [stopped] = onward.outbox([OutboxState.STOPPED])  # in the withdrawal's own transaction
    assert stopped.task_id == waiting
    run = onward.run_outbox(clock)

    assert run.sent == 2
    cancels = [e for e in receiver.taken() if e["idempotency_key"].endswith(":cancel")]
    assert sorted(_task_ids(cancels)) == sorted(sent)
    assert {e["path"] for e in cancels} == {f"/fhir/Task/{sent[0]}", "/hook"}
    assert all(waiting not in json.dumps(e) for e in receiver.entries())
    states = {(i.task_id, i.kind): i.state for i in onward.outbox()}
    assert states[(waiting, OutboxKind.DELIVER)] is OutboxState.STOPPED
    assert (waiting, OutboxKind.CANCEL) not in states
    for task_id in (*sent, waiting):
        assert onward.describe(task_id)[0].status is TaskStatus.CANCELLED


def test_a_dead_letter_is_retried_by_an_administrator_and_arrives_once(
    onward, sharing, assignments, clock, tmp_path
):
    down = Receiver(tmp_path / "late.jsonl", port=free_port())
    add_service(onward, fhir_service(down.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    task_id = onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id
    for _ in range(4):  # max_attempts in the fixture
        onward.run_outbox(clock)
        clock.advance(hours=2)
    [dead] = onward.outbox([OutboxState.DEAD])
    assert dead.attempts == 4 and dead.last_error

    down.start()
    try:
        assert onward.retry([dead.id], now=clock()) == 1
        assert onward.run_outbox(clock).sent == 1
        assert onward.retry(None, now=clock()) == 0
        assert onward.run_outbox(clock).sent == 0
        assert _task_ids(down.taken()) == [task_id]
    finally:
        down.kill()


def test_the_worker_asks_the_consent_policy_again_before_sending(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    onward.refer(WORKER, rid, "wexcombe-youth", now=clock())
    sharing.on_withdrawal.clear()  # however consent stopped being in force, the worker sees it
    sharing.record_consent_outcome(WORKER, rid, withdrawn(rid), now=clock())

    run = onward.run_outbox(clock)

    assert (run.sent, run.stopped) == (0, 1)
    [item] = onward.outbox()
    assert (item.state, item.last_error) == (OutboxState.STOPPED, "consent_withdrawn")
    assert receiver.entries() == []


def test_a_delivery_whose_answer_was_lost_is_sent_again_as_the_same_referral(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock())
    task_id = onward.refer(WORKER, rid, "wexcombe-youth", now=clock()).id
    real = onward.sender

    def lost_answer(message):  # the service took it, but the answer never came back
        real(message)
        raise ConnectionResetError

    onward.sender = lost_answer
    assert onward.run_outbox(clock).failed == 1
    onward.sender = real
    clock.advance(seconds=6)
    assert onward.run_outbox(clock).sent == 1

    assert _task_ids(receiver.taken("new")) == [task_id]
    assert _task_ids(receiver.taken("repeat")) == [task_id]
    keys = {e["idempotency_key"] for e in receiver.entries()}
    assert keys == {f"{task_id}:deliver"}
    bodies = [e["body"] for e in receiver.entries()]
    assert bodies[0] == bodies[1]  # the same Bundle, the same ids: the same referral


def test_consent_that_does_not_cover_onward_sharing_sends_nothing(
    onward, sharing, assignments, clock, receiver
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock(), onward_sharing=False)

    refused = onward.refer(WORKER, rid, "wexcombe-youth", now=clock())

    assert refused.reason is DecisionReason.CONSENT_NOT_FOR_ONWARD_SHARING
    assert onward.outbox() == [] and receiver.entries() == []


def test_a_safeguarding_override_that_says_so_sends_the_referral_and_is_audited(
    onward, sharing, assignments, clock, receiver, engine
):
    receiver.start()
    add_service(onward, fhir_service(receiver.url), clock())
    rid = consented_referral(onward, sharing, assignments, clock(), consent=False)
    sharing.record_consent_outcome(
        LEAD, rid, replace(override(rid), onward_sharing=True), now=clock()
    )

    task = onward.refer(LEAD, rid, "wexcombe-youth", now=clock())
    assert onward.run_outbox(clock).sent == 1

    assert _task_ids(receiver.taken()) == [task.id]
    with engine.connect() as conn:
        trail = [(e.action.value, e.why) for e in sharing.audit.entries(conn, subject=rid)]
    assert ("outbound_delivery", "outbound_delivery:safeguarding_override:identity") in trail
    assert ("outbound_delivery", f"onward:wexcombe-youth:{task.id}") in trail
