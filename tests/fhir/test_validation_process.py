"""Validation in a process of its own (what `serve` uses): the same answers as validating on
the event loop, 503 rather than silence when the process dies, a new process after, and
no process left behind when the gateway is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.errors import FhirError, Unprocessable, ValidatorUnavailable
from adapters.fhir.routes import fhir_router
from adapters.fhir.validation import Check, InlineValidator, ValidationProcess, run_check
from adapters.fhir.writer import FhirWriter
from referral_gateway.storage.fhir_store import ApiClientStore
from tests.fhir import builders as b

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> Iterator[ValidationProcess]:
    process = ValidationProcess(respawn_after=0.0).start()
    yield process
    process.stop()


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def r5_encounter() -> dict[str, object]:
    r5 = b.encounter(subject="urn:uuid:0b2f3c4d-0000-4000-8000-000000000001")
    r5["class"] = [{"coding": [r5["class"]]}]  # R5: class is a list of CodeableConcepts
    return r5


def outcome_of(call: object) -> FhirError:
    try:
        asyncio.run(call)  # type: ignore[arg-type]
    except FhirError as err:
        return err
    raise AssertionError("no FhirError was raised")


def test_a_transaction_checked_in_the_process_reads_exactly_as_one_checked_inline(validator):
    sent = body(b.attendance_bundle(1))
    assert asyncio.run(validator.bundle(sent)) == run_check(Check("bundle", sent))


def test_an_r5_encounter_gets_the_same_422_issues_from_the_process_as_inline(validator):
    sent = body(b.bundle(b.post(r5_encounter())))
    from_process = outcome_of(validator.bundle(sent))
    inline = outcome_of(InlineValidator().bundle(sent))
    assert isinstance(from_process, Unprocessable)
    assert (from_process.status, from_process.issues) == (inline.status, inline.issues)
    assert any(
        e.endswith("Encounter.class") or e.endswith("resource.class")
        for issue in from_process.issues
        for e in issue.expression
    )


def test_updates_with_if_match_and_creates_with_if_none_exist_keep_their_preconditions(
    validator,
):
    update = asyncio.run(
        validator.update("Encounter", "e1", body(b.encounter(id="e1")), if_match='W/"2"')
    )
    create = asyncio.run(
        validator.create("Patient", body(b.patient()), if_none_exist="identifier=x|1")
    )
    assert (update.method, update.resource_id, update.if_match) == ("PUT", "e1", 'W/"2"')
    assert (create.method, create.if_none_exist) == ("POST", "identifier=x|1")


def test_the_fhir_endpoint_answers_through_the_process(
    validator, writer: FhirWriter, clients: ApiClientStore, clock, token
):
    app = FastAPI()
    app.include_router(
        fhir_router(
            writer=writer,
            validator=validator,
            authenticate=TokenAuthenticator(clients, cache_seconds=0),
            clock=clock,
        )
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with TestClient(app, headers=headers) as http:
        stored = http.post("/fhir", content=body(b.attendance_bundle(2)))
        refused = http.post("/fhir/Encounter", content=body(r5_encounter()))
    assert stored.status_code == 200
    assert [e["response"]["status"] for e in stored.json()["entry"]] == ["201 Created"] * 3
    assert refused.status_code == 422
    assert refused.json()["resourceType"] == "OperationOutcome"


def test_a_killed_process_answers_503_for_the_check_it_held_and_the_next_gets_a_new_one():
    process = ValidationProcess(respawn_after=0.0).start()
    try:
        # a Bundle big enough that the process is still validating it when it is killed
        big = body(b.bundle(*(b.post(b.condition()) for _ in range(3000)), type="batch"))

        async def kill_while_checking() -> FhirError | None:
            await process.bundle(body(b.attendance_bundle(3)))  # started and answering
            first = process.pid
            assert first is not None
            held = asyncio.ensure_future(process.bundle(big))
            await asyncio.sleep(0.2)
            os.kill(first, signal.SIGKILL)
            try:
                await asyncio.wait_for(held, 30)
            except FhirError as err:
                return err
            return None

        async def next_check() -> int | None:
            await process.bundle(body(b.attendance_bundle(4)))
            return process.pid

        first_pid = process.pid
        held_error = asyncio.run(kill_while_checking())
        assert isinstance(held_error, ValidatorUnavailable)
        assert held_error.status == 503
        assert asyncio.run(next_check()) not in (None, first_pid)
    finally:
        process.stop()


def test_a_failed_check_says_nothing_of_what_was_sent(validator):
    secret = b.patient(family="Quillfeather")
    secret["birthDate"] = "not-a-date-Quillfeather"
    err = outcome_of(validator.create("Patient", body(secret), if_none_exist=None))
    assert "Quillfeather" not in json.dumps([i.__dict__ for i in err.issues])


PARENT = """
import time
from adapters.fhir.validation import ValidationProcess
if __name__ == "__main__":
    process = ValidationProcess().start()
    print(process.pid, flush=True)
    time.sleep(60)
"""


def test_the_validation_process_ends_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    deadline = time.monotonic() + 30
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
