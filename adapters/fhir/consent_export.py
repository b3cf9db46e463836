"""A referral's consent history as a FHIR R4B Consent, for an outside case system to see on
what basis the data reached it.

    consent_json(history, site=..., patient_reference=...) -> dict | None   (FHIR JSON)

Mapping (the record in force at `at`, default the latest):
- given consent → `active`, provision `permit` from when it was given;
  performer: the young person (the `patient` reference) or, for a parent or guardian, a
  RelatedPerson by type only; the giver (16+, Gillick-competent under-16, parent) also as
  `policyRule` text and an extension-free `verification` entry;
- safeguarding override → `active`, provision `permit`, `policyRule` says it is a
  safeguarding override (no consent), performer the authoriser by role only;
- withdrawn → `inactive`, the provision period ends at the withdrawal;
- declined → `rejected`;
- not approached, or no record → None: there is no consent decision to describe.

Nothing free-text from the record goes out (no Gillick notes, no override reason, no
authoriser's name): only codes, times, the site's ODS code and the referral id.

The body is checked through the FHIR adapter's single import point (`models.py`, R4B).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.fhir.models import validate_resource
from consent.records import (
    ConsentGiver,
    ConsentOutcome,
    ConsentRecord,
    current_basis,
    latest_record,
)

REFERRAL_ID_SYSTEM = "urn:referral-gateway:referral-id"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
LOINC = "http://loinc.org"

_GIVER_TEXT = {
    ConsentGiver.YOUNG_PERSON_16_PLUS: "Consent given by the young person, aged 16 or over.",
    ConsentGiver.GILLICK_COMPETENT_UNDER_16: (
        "Consent given by the young person, under 16, assessed as Gillick competent."
    ),
    ConsentGiver.PARENT_GUARDIAN: "Consent given by a parent or guardian.",
}
_OVERRIDE_TEXT = (
    "Safeguarding override: information shared without consent on a safeguarding basis, "
    "authorised by a named senior practitioner."
)


def consent_json(
    history: Sequence[ConsentRecord],
    *,
    site: str,
    patient_reference: str | None = None,
    at: datetime | None = None,
    referral_id_system: str = REFERRAL_ID_SYSTEM,
) -> dict[str, Any] | None:
    """The Consent (FHIR JSON, checked against the R4B model) describing `history` at `at`,
    or None when there is no decision."""
    body = _consent_body(history, site, patient_reference, at, referral_id_system)
    if body is not None:
        validate_resource(body, where="Consent")
    return body


def _consent_body(
    history: Sequence[ConsentRecord],
    site: str,
    patient_reference: str | None,
    at: datetime | None,
    referral_id_system: str,
) -> dict[str, Any] | None:
    latest = latest_record(history, at=at)
    if latest is None or latest.outcome is ConsentOutcome.NOT_APPROACHED:
        return None
    patient = {"reference": patient_reference} if patient_reference else None
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "identifier": [{"system": referral_id_system, "value": latest.referral_id}],
        "scope": {
            "coding": [
                {"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}
            ]
        },
        "category": [
            {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "organization": [{"identifier": {"system": ODS_SYSTEM, "value": site}}],
        "dateTime": _instant(latest.recorded_at),
    }
    if patient:
        body["patient"] = patient

    if latest.outcome is ConsentOutcome.DECLINED:
        body |= {"status": "rejected", "policyRule": _opt_in("The young person declined.")}
        body["provision"] = {"type": "deny", "purpose": [_purpose()]}
        return body

    if latest.outcome is ConsentOutcome.WITHDRAWN:
        basis = current_basis(history[: latest.seq - 1])
        if basis is None:  # check_history and record_consent make this impossible
            raise ValueError("A withdrawal follows a basis for sharing.")
        deciding, status, end = basis.record, "inactive", latest.recorded_at
    else:
        deciding, status, end = latest, "active", None

    period: dict[str, str] = {"start": _instant(deciding.recorded_at)}
    if end is not None:
        period["end"] = _instant(end)
    body["status"] = status
    body["provision"] = {"type": "permit", "period": period, "purpose": [_purpose()]}
    if deciding.outcome is ConsentOutcome.SAFEGUARDING_OVERRIDE:
        body["policyRule"] = {"text": _OVERRIDE_TEXT}
        role = deciding.authoriser_role or "safeguarding authoriser"
        body["performer"] = [{"type": "Practitioner", "display": role}]
    else:
        giver = deciding.giver
        body["policyRule"] = _opt_in(_GIVER_TEXT[giver] if giver else "Consent given.")
        if giver is ConsentGiver.PARENT_GUARDIAN:
            body["performer"] = [{"type": "RelatedPerson", "display": "parent or guardian"}]
        elif patient:
            body["performer"] = [{**patient, "type": "Patient"}]
        body["verification"] = [
            {"verified": True, "verificationDate": _instant(deciding.recorded_at)}
        ]
    return body


def _opt_in(text: str) -> dict[str, Any]:
    return {"coding": [{"system": ACT_CODE, "code": "OPTIN", "display": "opt-in"}], "text": text}


def _purpose() -> dict[str, str]:
    return {"system": ACT_REASON, "code": "COC", "display": "coordination of care"}


def _instant(moment: datetime) -> str:
    """A FHIR instant in UTC, written with Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
