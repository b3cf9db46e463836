"""The CapabilityStatement served at /fhir/metadata: what the endpoint really does, no more.

A receiving endpoint: create and update of four resource types (no read, search, history or
delete: identifiable data only flows in), conditional create on `identifier`, versioned
updates with If-Match, transaction and batch Bundles, bearer tokens per sending system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.fhir.checks import SUPPORTED_TYPES
from adapters.fhir.models import FHIR_VERSION

SOFTWARE_VERSION = "0.1.0"

_DOCS = {
    "Patient": "UK Core shape: NHS number identifier (https://fhir.nhs.uk/Id/nhs-number; a "
    "wrong check digit is accepted with a warning), birthDate (needed to screen), gender, "
    "name, telecom, address.",
    "Encounter": "An ED attendance: class EMER (v3-ActCode), period.start = arrival, "
    "identifier = the visit number (correlates with HL7 v2 PV1-19 at the same site), "
    "reasonCode, location, status (finished = discharged; cancelled / entered-in-error "
    "voids a candidate).",
    "Condition": "Encounter diagnoses (category encounter-diagnosis) referencing the Encounter.",
    "Observation": "ECDS injury intent / mechanism codes referencing the Encounter.",
}


def capability_statement(base_url: str, now: datetime) -> dict[str, Any]:
    resources = [
        {
            "type": name,
            "documentation": _DOCS[name],
            "interaction": [{"code": "create"}, {"code": "update"}],
            "versioning": "versioned-update",
            "readHistory": False,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        for name in SUPPORTED_TYPES
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.date().isoformat(),
        "publisher": "Teachable-moment referral gateway",
        "kind": "instance",
        "software": {"name": "referral-gateway", "version": SOFTWARE_VERSION},
        "implementation": {
            "description": "Referral gateway FHIR R4 receiving endpoint",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Receives ED attendances. Writes are stored before they are answered; a "
                    "repeat of a resource's current content is answered with the current "
                    "version and not processed again. If-None-Exist takes a single "
                    "identifier=[system|]value parameter. Rest-hook subscription "
                    "notifications (R4 backport, id-only or full-resource) are taken at "
                    "POST [base]/subscription-hook and the named resources are fetched from "
                    "the configured source server."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Each sending system has its own API token, bound to its site's ODS "
                        "code: Authorization: Bearer <token>. No token: 401; an unknown or "
                        "revoked token: 403."
                    ),
                },
                "resource": resources,
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": "Atomic; collection Bundles are taken the same way.",
                    },
                    {"code": "batch"},
                ],
            }
        ],
    }
