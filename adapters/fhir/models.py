"""The one place that imports fhir.resources, and it picks R4B.

The package's default models are R5, which rejects R4 Encounters (R5 made `class` a list of
CodeableConcepts and renamed `period` to `actualPeriod`). R4B (4.3) shares R4's shape for
every resource the gateway takes, so R4 JSON validates against it and R5-only shapes do not.

Validation is structural (pydantic): element names, types, cardinality, primitive formats.
Checks the gateway adds on top (codes, NHS numbers, birth dates) are in `checks.py`. Callers
get plain JSON back: nothing past this module sees a fhir.resources model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from adapters.fhir.errors import Issue, Unprocessable

FHIR_VERSION = "4.0.1"  # what the CapabilityStatement claims: R4 JSON, checked with R4B models


def is_resource_type(name: str) -> bool:
    """True for a resource type that R4 knows (R5-only types are not)."""
    if not name or not name[0].isupper() or not name.isalpha():
        return False
    try:
        model = get_fhir_model_class(name)
    except ValueError:
        return False
    if name in ("Resource", "DomainResource"):
        return False
    return any(base.__name__ == "FHIRResourceModel" for base in model.__mro__)


def validate_resource(resource: Mapping[str, Any], *, where: str | None = None) -> None:
    """Raise Unprocessable (422) listing every structural problem of an R4 resource.

    `where` prefixes each issue's expression (e.g. "Bundle.entry[2].resource"); without it
    expressions start at the resource type ("Encounter.class").
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise Unprocessable(
            "resourceType is missing or is not an R4 resource type",
            code="not-supported",
            expression=[f"{where}.resourceType" if where else "resourceType"],
        )
    prefix = where or resource_type
    _validate(resource_type, resource, prefix)


def validate_bundle_shell(bundle: Mapping[str, Any]) -> None:
    """Validate a Bundle apart from its entries' resources (each checked on its own by
    `validate_resource`, which is faster and gives per-entry expressions)."""
    entries = bundle.get("entry")
    shell = dict(bundle)
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
    _validate("Bundle", shell, "Bundle")


def _validate(resource_type: str, data: Mapping[str, Any], prefix: str) -> None:
    model = get_fhir_model_class(resource_type)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            f"{resource_type} is not a valid FHIR R4 {resource_type}",
            issues=[_issue(prefix, e) for e in exc.errors()],
        ) from None
    except Exception:  # fhir.resources raises KeyError/TypeError on some malformed input
        raise Unprocessable(
            f"{resource_type} could not be read as FHIR R4",
            code="structure",
            expression=[prefix],
        ) from None


_FRIENDLY = {
    "extra_forbidden": "unknown element (not part of FHIR R4 for this type)",
    "missing": "required element is missing",
    "model_field_validation.missing": "required element is missing",
}


def _issue(prefix: str, error: Mapping[str, Any]) -> Issue:
    path = prefix
    for part in error.get("loc", ()):
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part not in ("root", "__root__"):
            path += "." + ("resourceType" if part == "resource_type" else part)
    kind = str(error.get("type", "invalid"))
    message = _FRIENDLY.get(kind) or _safe_message(error)
    code = (
        "required" if "missing" in kind else "structure" if kind == "extra_forbidden" else ("value")
    )
    return Issue("error", code, message, (path,))


def _safe_message(error: Mapping[str, Any]) -> str:
    """pydantic's message, unless it quotes the offending value (which may identify someone)."""
    message = str(error.get("msg", "invalid value"))
    message = message.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")[:200]
    value = error.get("input")
    if isinstance(value, str | int | float) and str(value) and str(value) in message:
        return f"invalid value ({error.get('type', 'invalid')})"
    return message
