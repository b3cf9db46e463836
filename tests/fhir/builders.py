"""Builders for synthetic UK Core shaped R4 resources.

Every person here is invented; NHS numbers come from the 999 test range with check digits
worked out below (independently of the gateway's own check). ODS codes are of the RXX kind.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORG = "https://fhir.nhs.uk/Id/ods-organization-code"
ODS_SITE = "https://fhir.nhs.uk/Id/ods-site-code"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
VISIT_SYSTEM = "https://rxx.example.nhs.uk/Id/ed-attendance"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
SITE = "RXX01"

STAB_WOUND = (SNOMED, "425322008", "Stab wound")
ASSAULT = (SNOMED, "52684005", "Assault")
ICD10_X99 = ("http://hl7.org/fhir/sid/icd-10", "X99", "Assault by sharp object")
SELF_HARM = (SNOMED, "276853009", "Self inflicted injury")
SPRAINED_ANKLE = (SNOMED, "44465007", "Sprain of ankle")
INJURY_INTENT = (SNOMED, "1099171000000103", "Injury intent")  # an illustrative ECDS-style code


def nhs_number(n: int) -> str:
    """The n-th NHS number in the 999 test range whose modulus 11 check digit is valid."""
    valid = (
        number
        for base in itertools.count(999_000_000)
        if (check := _check(str(base))) is not None
        for number in [f"{base}{check}"]
    )
    return next(itertools.islice(valid, n, None))


def invalid_nhs_number(n: int = 0) -> str:
    good = nhs_number(n)
    return good[:9] + str((int(good[9]) + 1) % 10)


def _check(first_nine: str) -> int | None:
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    check = 11 - total % 11
    return None if check == 10 else 0 if check == 11 else check


def patient(
    *,
    id: str | None = None,
    nhs: str | None = None,
    birth_date: str | None = "2009-04-12",
    gender: str = "male",
    family: str = "Testwood",
    given: tuple[str, ...] = ("Alex", "Jordan"),
    mrn: str | None = "RXX-MRN-000123",
) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = []
    if nhs is not False:
        identifiers.append(
            {
                "extension": [
                    {
                        "url": "https://fhir.hl7.org.uk/StructureDefinition/"
                        "Extension-UKCore-NHSNumberVerificationStatus",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "https://fhir.hl7.org.uk/CodeSystem/"
                                    "UKCore-NHSNumberVerificationStatusEngland",
                                    "code": "01",
                                    "display": "Number present and verified",
                                }
                            ]
                        },
                    }
                ],
                "system": NHS,
                "value": nhs or nhs_number(0),
            }
        )
    if mrn:
        identifiers.append({"system": "https://rxx.example.nhs.uk/Id/mrn", "value": mrn})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "identifier": identifiers,
        "name": [{"use": "official", "family": family, "given": list(given)}],
        "gender": gender,
        "telecom": [{"system": "phone", "value": "07700 900123", "use": "mobile"}],
        "address": [
            {
                "use": "home",
                "line": ["1 Example Street"],
                "city": "Exampleton",
                "postalCode": "ZZ99 3AZ",
            }
        ],
    }
    if birth_date is not None:
        resource["birthDate"] = birth_date
    if id is not None:
        resource["id"] = id
    return resource


def encounter(
    *,
    id: str | None = None,
    visit: str | None = "ED-2025-0001",
    status: str = "in-progress",
    klass: str = "EMER",
    arrival: str = "2025-03-01T21:14:00+00:00",
    end: str | None = None,
    subject: str = "Patient/p1",
    reasons: tuple[tuple[str, str, str], ...] = (STAB_WOUND,),
    reason_text: str | None = "stabbed in left forearm",
    area: str | None = "Majors",
    bay: str | None = "Bay 4",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter"]},
        "status": status,
        "class": {"system": ACT_CODE, "code": klass, "display": "emergency"},
        "subject": {"reference": subject},
        "period": {"start": arrival},
        "serviceProvider": {"identifier": {"system": ODS_ORG, "value": "RXX"}},
    }
    if visit is not None:
        resource["identifier"] = [{"use": "official", "system": VISIT_SYSTEM, "value": visit}]
    if end is not None:
        resource["period"]["end"] = end
    if reasons or reason_text:
        concept: dict[str, Any] = {
            "coding": [{"system": s, "code": c, "display": d} for s, c, d in reasons]
        }
        if reason_text:
            concept["text"] = reason_text
        resource["reasonCode"] = [concept]
    locations = []
    if area:
        locations.append(
            {
                "location": {"display": area, "identifier": {"system": ODS_SITE, "value": SITE}},
                "status": "active",
                "physicalType": {"coding": [{"code": "area"}]},
            }
        )
    if bay:
        locations.append(
            {
                "location": {"display": bay},
                "status": "active",
                "physicalType": {"coding": [{"code": "bd"}]},
            }
        )
    if locations:
        resource["location"] = locations
    if id is not None:
        resource["id"] = id
    return resource


def condition(
    *,
    id: str | None = None,
    encounter_ref: str = "Encounter/e1",
    subject: str = "Patient/p1",
    code: tuple[str, str, str] = ASSAULT,
    category: str = "encounter-diagnosis",
    verification: str = "confirmed",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        },
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": code[0], "code": code[1], "display": code[2]}]},
        "subject": {"reference": subject},
        "encounter": {"reference": encounter_ref},
    }
    if id is not None:
        resource["id"] = id
    return resource


def injury_intent(
    *,
    id: str | None = None,
    encounter_ref: str = "Encounter/e1",
    subject: str = "Patient/p1",
    value: tuple[str, str, str] = ASSAULT,
    status: str = "final",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [dict(zip(("system", "code", "display"), INJURY_INTENT, strict=True))]},
        "subject": {"reference": subject},
        "encounter": {"reference": encounter_ref},
        "valueCodeableConcept": {
            "coding": [{"system": value[0], "code": value[1], "display": value[2]}]
        },
    }
    if id is not None:
        resource["id"] = id
    return resource


def post(
    resource: dict[str, Any], full_url: str | None = None, if_none_exist: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": request,
    }


def put(resource: dict[str, Any], if_match: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"{resource['resourceType']}/{resource['id']}",
    }
    if if_match:
        request["ifMatch"] = if_match
    return {
        "fullUrl": f"{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "request": request,
    }


def bundle(*entries: dict[str, Any], type: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": type, "entry": [copy.deepcopy(e) for e in entries]}


def attendance_bundle(
    n: int = 0,
    *,
    visit: str | None = None,
    birth_date: str = "2009-04-12",
    diagnosis: tuple[str, str, str] = ASSAULT,
    reasons: tuple[tuple[str, str, str], ...] = (STAB_WOUND,),
    status: str = "in-progress",
) -> dict[str, Any]:
    """A transaction Bundle as an ED system sends it: Patient (conditional create on the NHS
    number), Encounter and Condition, tied together with urn:uuid references."""
    p_url, e_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    nhs = nhs_number(n)
    return bundle(
        post(
            patient(nhs=nhs, birth_date=birth_date, mrn=f"RXX-MRN-{n:06d}"),
            p_url,
            if_none_exist=f"identifier={NHS}|{nhs}",
        ),
        post(
            encounter(
                visit=visit or f"ED-2025-{n:06d}", subject=p_url, reasons=reasons, status=status
            ),
            e_url,
        ),
        post(condition(encounter_ref=e_url, subject=p_url, code=diagnosis)),
    )


def at_source(resource: dict[str, Any], last_updated: str, version: int = 1) -> dict[str, Any]:
    """A resource as the source server holds it: with its id and meta."""
    assert resource.get("id"), "source resources need an id"
    return {**resource, "meta": {"versionId": str(version), "lastUpdated": last_updated}}


def backport_notification(
    base: str, *focus: str, kind: str = "event-notification"
) -> dict[str, Any]:
    """An R4 backport notification: Parameters status, then one id-only entry per event."""
    events = [
        {
            "name": "notification-event",
            "part": [
                {"name": "event-number", "valueString": str(n + 1)},
                {"name": "focus", "valueReference": {"reference": f"{base}/{ref}"}},
            ],
        }
        for n, ref in enumerate(focus)
    ]
    status = {
        "resourceType": "Parameters",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                "backport-subscription-status-r4"
            ]
        },
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/s1"}},
            {"name": "topic", "valueCanonical": "http://example.org/topics/ed-encounter"},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": kind},
            {"name": "events-since-subscription-start", "valueString": str(len(focus))},
            *events,
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f6a8e9e-1d1c-4c8e-9d1e-6f0f3c3b1a11",
                "resource": status,
                "request": {"method": "GET", "url": f"{base}/Subscription/s1/$status"},
                "response": {"status": "200"},
            }
        ]
        + [
            {
                "fullUrl": f"{base}/{ref}",
                "request": {"method": "PUT", "url": ref},
                "response": {"status": "200"},
            }
            for ref in focus
        ],
    }
