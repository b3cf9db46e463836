"""FHIR in the pipeline: a stored resource version becomes the AttendanceEvents it implies.

The FHIR routes, the subscription receiver and the poller store every accepted resource
version in the resource store and as an inbox row (`channel = "fhir"`, payload = the
resource JSON with our meta). The pipeline hands those rows to the decoder made here, which
looks the related resources up at the same site:

- an Encounter gives its own event (ARRIVAL, UPDATE, DISCHARGE, CANCEL_ARRIVAL...), built
  from the Encounter with its Patient, encounter-diagnosis Conditions and Observations;
- a Condition or Observation re-evaluates the Encounter it names (an UPDATE);
- a Patient re-evaluates that patient's most recent Encounters at the site.

A Condition that arrives before its Encounter gives nothing (the message is filtered); the
Encounter, when it comes, picks the Condition up. Likewise a Condition, Observation or new
Patient written in the same request as its Encounter is marked `+Encounter` by the writer
and gives nothing of its own: the Encounter's event, built after the whole request was
committed, already carries it (one evaluation per attendance per request, not three).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from adapters.fhir.checks import NHS_NUMBER_SYSTEM
from adapters.fhir.mapping import (
    EncounterRecord,
    Json,
    attendance_event,
    encounter_kind,
    parse_instant,
    reevaluation_kind,
    reference_of,
)
from referral_gateway.domain.attendance import AttendanceEvent
from referral_gateway.services.errors import MessageRejected
from referral_gateway.storage.inbox import PendingMessage

CHANNEL = "fhir"
REOPENED = ":reopened"  # message_type suffix: a finished Encounter is in progress again
COVERED = "+Encounter"  # message_type suffix: evaluated with its Encounter (same request)
PATIENT_ENCOUNTER_LIMIT = 10  # a Patient change re-evaluates at most this many Encounters


class ResourceLookup(Protocol):
    """What the decoder needs from the resource store (FhirResourceStore, or a fake)."""

    def get(self, site: str, resource_type: str, resource_id: str) -> dict[str, Any] | None: ...

    def find_by_identifier(
        self, site: str, resource_type: str, system: str | None, value: str
    ) -> list[dict[str, Any]]: ...

    def referencing_content(
        self,
        site: str,
        resource_type: str | tuple[str, ...],
        *,
        subject: str | None = None,
        encounter: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]: ...


Decoder = Callable[[PendingMessage], Sequence[AttendanceEvent]]


def make_decoder(lookup: ResourceLookup) -> Decoder:
    def decode_stored(message: PendingMessage) -> Sequence[AttendanceEvent]:
        if message.message_type.endswith(COVERED):  # stored filtered; older rows pending
            return []
        try:
            resource = json.loads(message.payload)
        except ValueError:
            raise MessageRejected("parse", "stored FHIR payload is not JSON") from None
        if not isinstance(resource, dict):
            raise MessageRejected("parse", "stored FHIR payload is not a resource")
        resource_type = str(resource.get("resourceType"))
        try:
            return _events(lookup, message, resource)
        except (ValueError, TypeError, KeyError) as exc:
            raise MessageRejected(
                "map", f"{resource_type} could not be mapped ({type(exc).__name__})"
            ) from None

    return decode_stored


def _events(
    lookup: ResourceLookup, message: PendingMessage, resource: dict[str, Any]
) -> list[AttendanceEvent]:
    site = message.site
    resource_type = resource.get("resourceType")
    meta = resource.get("meta") or {}
    occurred = parse_instant(meta.get("lastUpdated"))
    if resource_type == "Encounter":
        kind = encounter_kind(
            resource,
            first_version=str(meta.get("versionId", "1")) == "1",
            reopened=message.message_type.endswith(REOPENED),
        )
        record = encounter_record(lookup, site, resource)
        return [
            attendance_event(
                record, site=site, kind=kind, message_type="Encounter", occurred_at=occurred
            )
        ]
    if resource_type in ("Condition", "Observation"):
        target = reference_of(resource.get("encounter"))
        if target is None or not target.startswith("Encounter/"):
            return []
        encounter = lookup.get(site, "Encounter", target.split("/", 1)[1])
        if encounter is None:
            return []
        encounters = [encounter]
    elif resource_type == "Patient":
        encounters = lookup.referencing_content(
            site,
            "Encounter",
            subject=f"Patient/{resource.get('id')}",
            limit=PATIENT_ENCOUNTER_LIMIT,
        )
    else:
        return []
    return [
        attendance_event(
            encounter_record(lookup, site, enc),
            site=site,
            kind=reevaluation_kind(enc),
            message_type=str(resource_type),
            occurred_at=occurred,
        )
        for enc in encounters
    ]


def encounter_record(lookup: ResourceLookup, site: str, encounter: Json) -> EncounterRecord:
    """The Encounter with its Patient, Conditions and Observations from the store."""
    ref = f"Encounter/{encounter.get('id')}"
    related = lookup.referencing_content(site, ("Condition", "Observation"), encounter=ref)
    conditions = {str(c.get("id")): c for c in related if c.get("resourceType") == "Condition"}
    for diagnosis in encounter.get("diagnosis") or ():
        listed = reference_of(diagnosis.get("condition")) if isinstance(diagnosis, dict) else None
        if listed and listed.startswith("Condition/") and listed[10:] not in conditions:
            found = lookup.get(site, "Condition", listed[10:])
            if found is not None:
                conditions[listed[10:]] = found
    observations = [r for r in related if r.get("resourceType") == "Observation"]
    return EncounterRecord(
        encounter=encounter,
        patient=_patient(lookup, site, encounter.get("subject")),
        conditions=tuple(conditions.values()),
        observations=tuple(observations),
    )


def _patient(lookup: ResourceLookup, site: str, subject: Any) -> Json | None:
    target = reference_of(subject)
    if target is not None and target.startswith("Patient/"):
        found = lookup.get(site, "Patient", target.split("/", 1)[1])
        if found is not None:
            return found
    logical = subject.get("identifier") if isinstance(subject, dict) else None
    if (
        isinstance(logical, dict)
        and logical.get("system") == NHS_NUMBER_SYSTEM
        and logical.get("value")
    ):
        matches = lookup.find_by_identifier(
            site, "Patient", NHS_NUMBER_SYSTEM, str(logical["value"])
        )
        if len(matches) == 1:
            return matches[0]
    return None
