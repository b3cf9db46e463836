"""Checks beyond the structure pydantic validates: codes the gateway relies on, and the data
quality a sender should hear about.

Errors (422) are for what would make the resource meaningless to us: an Encounter without
a usable class or status, a code outside its required value set. Warnings are accepted and
flagged: an NHS number with a wrong check digit (the attendance is never dropped for it),
a Patient without a full birth date (no age at arrival, so no screening).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.fhir.errors import Issue, Unprocessable
from referral_gateway.domain.nhs_number import is_valid_nhs_number

SUPPORTED_TYPES = ("Patient", "Encounter", "Condition", "Observation")
MAX_ID_LENGTH = 64  # R4's limit on Resource.id
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ACT_CODE_SYSTEMS = frozenset(
    {"http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://hl7.org/fhir/v3/ActCode"}
)
# v3 ActEncounterCode, the required binding of Encounter.class in R4.
ENCOUNTER_CLASSES = frozenset(
    {"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"}
)
ENCOUNTER_STATUSES = frozenset(
    {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
OBSERVATION_STATUSES = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
GENDERS = frozenset({"male", "female", "other", "unknown"})
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_resource(resource: Mapping[str, Any], where: str | None = None) -> list[Issue]:
    """Warnings for an accepted resource; raises Unprocessable for a rejected one."""
    resource_type = str(resource.get("resourceType"))
    prefix = where or resource_type
    errors: list[Issue] = []
    warnings: list[Issue] = []
    if len(str(resource.get("id") or "")) > MAX_ID_LENGTH:
        errors.append(_error("value", "a resource id has at most 64 characters", f"{prefix}.id"))
    if resource_type == "Encounter":
        _encounter(resource, prefix, errors)
    elif resource_type == "Patient":
        _patient(resource, prefix, errors, warnings)
    elif resource_type == "Observation":
        status = resource.get("status")
        if status not in OBSERVATION_STATUSES:
            errors.append(
                _error(
                    "value",
                    "Observation.status is not an R4 observation status",
                    f"{prefix}.status",
                )
            )
    if errors:
        raise Unprocessable(f"{resource_type} fails the gateway's checks", issues=errors)
    return warnings


def _encounter(resource: Mapping[str, Any], prefix: str, errors: list[Issue]) -> None:
    if resource.get("status") not in ENCOUNTER_STATUSES:
        errors.append(
            _error("value", "Encounter.status is not an R4 encounter status", f"{prefix}.status")
        )
    klass = resource.get("class")
    if not isinstance(klass, Mapping):
        errors.append(
            _error(
                "required", "Encounter.class (a v3-ActCode Coding) is required", f"{prefix}.class"
            )
        )
        return
    system, code = klass.get("system"), klass.get("code")
    if system is not None and system not in ACT_CODE_SYSTEMS:
        errors.append(
            _error(
                "code-invalid",
                "Encounter.class.system must be http://terminology.hl7.org/CodeSystem/v3-ActCode",
                f"{prefix}.class.system",
            )
        )
    if not code:
        errors.append(
            _error(
                "required",
                "Encounter.class.code is required (EMER for an ED attendance)",
                f"{prefix}.class.code",
            )
        )
    elif code not in ENCOUNTER_CLASSES:
        errors.append(
            _error(
                "code-invalid",
                "Encounter.class.code is not in v3 ActEncounterCode (EMER for an ED attendance)",
                f"{prefix}.class.code",
            )
        )


def _patient(
    resource: Mapping[str, Any], prefix: str, errors: list[Issue], warnings: list[Issue]
) -> None:
    gender = resource.get("gender")
    if gender is not None and gender not in GENDERS:
        errors.append(
            _error(
                "code-invalid",
                "Patient.gender is not an R4 administrative gender",
                f"{prefix}.gender",
            )
        )
    for i, identifier in enumerate(resource.get("identifier") or ()):
        if not isinstance(identifier, Mapping) or identifier.get("system") != NHS_NUMBER_SYSTEM:
            continue
        if not is_valid_nhs_number(str(identifier.get("value", ""))):
            warnings.append(
                Issue(
                    "warning",
                    "value",
                    "the NHS number fails its check digit; accepted and flagged",
                    (f"{prefix}.identifier[{i}].value",),
                )
            )
    birth = resource.get("birthDate")
    if not birth:
        warnings.append(
            Issue(
                "warning",
                "required",
                "birthDate is missing: the age at arrival cannot be worked out, so the "
                "attendance cannot be screened",
                (f"{prefix}.birthDate",),
            )
        )
    elif not _FULL_DATE.match(str(birth)):
        warnings.append(
            Issue(
                "warning",
                "incomplete",
                "birthDate is not a full date: the age at arrival cannot be worked out",
                (f"{prefix}.birthDate",),
            )
        )


def _error(code: str, diagnostics: str, expression: str) -> Issue:
    return Issue("error", code, diagnostics, (expression,))
