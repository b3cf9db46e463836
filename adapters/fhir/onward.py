"""Onward referrals over FHIR R4: the transaction Bundle we send a service, the cancellation,
the Task we show it, and the Task updates it sends back.

What a service receives (the HL7 SDOH Clinical Care referral pattern, the gateway as the
referral source and the service as the performer): a `transaction` Bundle of

- `Patient/{id}`: only the fields the service may receive (NHS number, name, birth date,
  gender, address, phone); none of them if it may receive none;
- `ServiceRequest/{id}`: status `active`, intent `order`, subject the Patient, requester
  the referring ED site (ODS code), performer the service (ODS or charity code),
  reasonCode the injury category and a note with the age, when the service may receive
  them, and an identifier holding the gateway's referral id;
- `Task/{id}`: status `requested`, intent `order`, code `fulfill`, focus the
  ServiceRequest, for the Patient, requester and owner as above.

Every entry is a `PUT` by id and every id is fixed when the referral is made (the Task id;
the other two are derived from it), so sending the same Bundle again changes nothing at the
service: a retry never makes a second referral. The request also carries the header
`Idempotency-Key`. A cancellation is `PUT Task/{id}` with status `cancelled`.

Everything is validated against fhir.resources' R4B models before it leaves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.fhir.errors import BadRequest, Unprocessable
from adapters.fhir.models import validate_resource
from adapters.fhir.writer import fhir_instant
from referral_gateway.domain.onward import TaskMove, TaskStatus
from referral_gateway.services.onward import OutgoingMessage, SendResult
from referral_gateway.storage.onward import OnwardTask, OutboxKind

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
CHARITY_SYSTEM = "https://register-of-charities.charitycommission.gov.uk"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
REFERRAL_SYSTEM = "urn:referral-gateway:referral"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FHIR_JSON = "application/fhir+json"

_GENDER = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
_NS = uuid.UUID("0f7c1a4e-4f0b-4d59-9a57-3a2f0c3b8e21")


def patient_id(task_id: str) -> str:
    return str(uuid.uuid5(_NS, f"patient:{task_id}"))


def service_request_id(task_id: str) -> str:
    return str(uuid.uuid5(_NS, f"service-request:{task_id}"))


def _organisation(code: str) -> dict[str, Any]:
    system = ODS_SYSTEM if not code.isdigit() else CHARITY_SYSTEM
    return {"identifier": {"system": system, "value": code}}


def referral_bundle(message: OutgoingMessage) -> dict[str, Any]:
    """The transaction Bundle for a delivery, validated as R4."""
    values = message.values
    pid, srid = patient_id(message.task_id), service_request_id(message.task_id)
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if "nhs_number" in values:
        patient["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": values["nhs_number"]}]
    name = values.get("name")
    if isinstance(name, Mapping):
        entry: dict[str, Any] = {}
        if name.get("family"):
            entry["family"] = name["family"]
        if name.get("given"):
            entry["given"] = str(name["given"]).split()
        patient["name"] = [entry]
    if "birth_date" in values:
        patient["birthDate"] = values["birth_date"]
    if "sex" in values:
        patient["gender"] = _GENDER.get(str(values["sex"]), "unknown")
    if "address" in values:
        patient["address"] = [{"text": values["address"]}]
    if "phone" in values:
        patient["telecom"] = [{"system": "phone", "value": values["phone"]}]

    requester = _organisation(message.site)
    owner = _organisation(message.service.code)
    owner["display"] = message.service.name
    authored = fhir_instant(message.requested_at)
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": srid,
        "identifier": [{"system": REFERRAL_SYSTEM, "value": message.referral_id}],
        "status": "active",
        "intent": "order",
        "code": {"text": message.service.offers},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        "requester": requester,
        "performer": [owner],
    }
    if "injury_category" in values:
        service_request["reasonCode"] = [
            {"text": f"assault-related injury: {values['injury_category']}"}
        ]
    if "age" in values:
        service_request["note"] = [{"text": f"Age at the ED attendance: {values['age']}"}]
    task = _task(message.task_id, pid, srid, TaskStatus.REQUESTED, authored, requester, owner)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _put(patient),
            _put(service_request),
            _put(task),
        ],
    }
    validate_resource(bundle)
    return bundle


def cancellation(message: OutgoingMessage) -> dict[str, Any]:
    """The Task, cancelled (no Patient fields: it refers to the Patient we sent)."""
    task = _task(
        message.task_id,
        patient_id(message.task_id),
        service_request_id(message.task_id),
        TaskStatus.CANCELLED,
        fhir_instant(message.requested_at),
        _organisation(message.site),
        {**_organisation(message.service.code), "display": message.service.name},
    )
    task["statusReason"] = {"text": message.reason or "cancelled by the referrer"}
    validate_resource(task)
    return task


def _task(
    task_id: str,
    pid: str,
    srid: str,
    status: TaskStatus,
    authored: str,
    requester: dict[str, Any],
    owner: dict[str, Any],
) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": status.value,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{srid}"},
        "for": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        "requester": requester,
        "owner": owner,
    }


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    kind, rid = resource["resourceType"], resource["id"]
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{kind}/{rid}"},
    }


# -- sending ------------------------------------------------------------------------------------


def send_fhir(message: OutgoingMessage, *, timeout: float = 10.0) -> SendResult:
    """POST the Bundle to the service's base (or PUT the cancelled Task)."""
    assert message.service.endpoint is not None
    base = message.service.endpoint.rstrip("/")
    headers = {
        "Content-Type": FHIR_JSON,
        "Accept": FHIR_JSON,
        IDEMPOTENCY_HEADER: message.idempotency_key,
    }
    if message.secret:
        headers["Authorization"] = f"Bearer {message.secret}"
    if message.kind is OutboxKind.DELIVER:
        method, url, body = "POST", base, referral_bundle(message)
    else:
        method, url, body = "PUT", f"{base}/Task/{message.task_id}", cancellation(message)
    try:
        response = httpx.request(
            method,
            url,
            content=json.dumps(body).encode("utf-8"),
            headers=headers,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        return SendResult(False, True, type(exc).__name__)
    return http_result(response.status_code)


def http_result(status: int) -> SendResult:
    """2xx sent; 408, 425, 429 and 5xx worth retrying; any other answer final."""
    if 200 <= status < 300:
        return SendResult(True, False, str(status))
    retryable = status in (408, 425, 429) or status >= 500
    return SendResult(False, retryable, f"HTTP {status}")


# -- the Task as we hold it, and the service's updates ---------------------------------------


def task_resource(task: OnwardTask, site: str, service_code: str) -> dict[str, Any]:
    resource = _task(
        task.id,
        patient_id(task.id),
        service_request_id(task.id),
        task.status,
        fhir_instant(task.created_at),
        _organisation(site),
        _organisation(service_code),
    )
    resource["meta"] = {
        "versionId": str(task.version),
        "lastUpdated": fhir_instant(task.updated_at),
    }
    resource["lastModified"] = fhir_instant(task.updated_at)
    if task.reason:
        resource["statusReason"] = {"text": task.reason}
    if task.outcome:
        resource["output"] = [{"type": {"text": "outcome"}, "valueString": task.outcome}]
    return resource


def task_move(body: Any, task_id: str) -> TaskMove:
    """What a PUT of a Task asks for: its status, reason (statusReason) and outcome
    (output, or businessStatus), after validating it as an R4 Task."""
    if not isinstance(body, dict) or body.get("resourceType") != "Task":
        raise BadRequest("PUT Task/{id} takes a Task", expression=["resourceType"])
    if body.get("id") not in (None, task_id):
        raise BadRequest("the Task's id is not the one in the URL", expression=["Task.id"])
    validate_resource(body)
    try:
        status = TaskStatus(body["status"])
    except ValueError:
        raise Unprocessable(
            "Task.status is not one the gateway follows", expression=["Task.status"]
        ) from None
    return TaskMove(status, _text(body.get("statusReason")), _outcome(body))


def apply_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A JSON Patch (RFC 6902) of `replace`/`add`/`remove` on top-level elements of the Task
    (status, statusReason, businessStatus, output): what services send with PATCH."""
    if not isinstance(patch, list):
        raise BadRequest("a JSON Patch is a list of operations")
    task = dict(current)
    for op in patch:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise BadRequest("each JSON Patch operation needs op and path")
        parts = op["path"].strip("/").split("/")
        name = parts[0]
        if name not in ("status", "statusReason", "businessStatus", "output"):
            raise Unprocessable(
                f"the gateway takes patches of status, statusReason, businessStatus and "
                f"output, not {name[:40]}",
                expression=[f"Task.{name[:40]}"],
            )
        if op.get("op") == "remove":
            task.pop(name, None)
        elif op.get("op") in ("replace", "add"):
            if name == "output" and len(parts) > 1:
                task["output"] = [*task.get("output", []), op.get("value")]
            else:
                task[name] = op.get("value")
        else:
            raise Unprocessable("only add, replace and remove are taken")
    return task


def _text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict):
            label = coding.get("display") or coding.get("code")
            if isinstance(label, str):
                return label
    return None


def _outcome(task: Mapping[str, Any]) -> str | None:
    for output in task.get("output") or []:
        if not isinstance(output, dict):
            continue
        if isinstance(output.get("valueString"), str):
            return str(output["valueString"])
        text = _text(output.get("valueCodeableConcept"))
        if text:
            return text
    return _text(task.get("businessStatus"))
