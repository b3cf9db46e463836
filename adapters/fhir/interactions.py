"""From what a client sent to the writes the gateway makes, and back to what it answers.

- `create` / `update`: one resource from `POST /fhir/{type}` or `PUT /fhir/{type}/{id}`;
- `bundle_interactions`: the entries of a transaction, batch or collection Bundle;
- `bundle_response`: the transaction-response or batch-response Bundle.

Every resource is validated here (structure with the R4B models, then the gateway's checks)
before anything is stored. In a transaction or a collection one bad entry fails the lot
with every problem listed; in a batch each entry stands alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.fhir.checks import SUPPORTED_TYPES, check_resource
from adapters.fhir.errors import (
    BadRequest,
    FhirError,
    Issue,
    MethodNotAllowed,
    NoSuchEndpoint,
    Unprocessable,
)
from adapters.fhir.models import is_resource_type, validate_bundle_shell, validate_resource
from adapters.fhir.outcome import etag, operation_outcome, status_line
from adapters.fhir.writer import Interaction, Written, fhir_instant

BUNDLE_TYPES = ("transaction", "batch", "collection")
WRITE_METHODS = ("POST", "PUT")


def supported_type(resource_type: str) -> str:
    """The type named in a URL, if the gateway takes it; else 404."""
    if resource_type in SUPPORTED_TYPES:
        return resource_type
    if is_resource_type(resource_type):
        raise NoSuchEndpoint(
            f"{resource_type} is not taken here; the gateway takes "
            + ", ".join(SUPPORTED_TYPES)
            + " (see /fhir/metadata)",
            code="not-supported",
        )
    raise NoSuchEndpoint("unknown resource type (not an R4 resource type)", code="not-supported")


def checked_resource(resource: Any, where: str | None = None) -> tuple[dict[str, Any], list[Issue]]:
    """Validate one resource; return it with its warnings."""
    if not isinstance(resource, dict):
        raise BadRequest(
            "expected a JSON object holding a FHIR resource", expression=[where] if where else ()
        )
    validate_resource(resource, where=where)
    return resource, check_resource(resource, where)


def create(resource_type: str, body: Any, *, if_none_exist: str | None) -> Interaction:
    resource_type = supported_type(resource_type)
    _same_type(body, resource_type)
    resource, warnings = checked_resource(body)
    return Interaction(
        "POST",
        resource_type,
        resource,
        if_none_exist=if_none_exist or None,
        warnings=tuple(warnings),
    )


def update(resource_type: str, resource_id: str, body: Any, *, if_match: str | None) -> Interaction:
    resource_type = supported_type(resource_type)
    _same_type(body, resource_type)
    if body.get("id") != resource_id:
        raise BadRequest(
            "the resource's id must match the id in the URL", expression=[f"{resource_type}.id"]
        )
    resource, warnings = checked_resource(body)
    return Interaction(
        "PUT",
        resource_type,
        resource,
        resource_id=resource_id,
        if_match=if_match or None,
        warnings=tuple(warnings),
    )


def _same_type(body: Any, resource_type: str) -> None:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object holding a FHIR resource")
    if body.get("resourceType") != resource_type:
        raise BadRequest(f"the body is not a {resource_type}", expression=["resourceType"])


@dataclass(frozen=True)
class BundleRequest:
    bundle_type: str  # transaction | batch | collection
    entries: tuple[Interaction | FhirError, ...]  # errors only in a batch

    @property
    def atomic(self) -> bool:
        return self.bundle_type != "batch"


def bundle_interactions(bundle: Mapping[str, Any]) -> BundleRequest:
    bundle_type = bundle.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise Unprocessable(
            "POST to the base takes transaction, batch or collection Bundles",
            code="not-supported",
            expression=["Bundle.type"],
        )
    validate_bundle_shell(bundle)
    entries: list[Interaction | FhirError] = []
    for i, entry in enumerate(bundle.get("entry") or ()):
        try:
            entries.append(_entry(str(bundle_type), i, entry))
        except FhirError as err:
            entries.append(err)
    errors = [e for e in entries if isinstance(e, FhirError)]
    if errors and bundle_type != "batch":
        first = errors[0]
        issues = [issue for err in errors for issue in err.issues]
        raise type(first)(
            first.diagnostics
            if len(errors) == 1
            else f"{len(errors)} entries of the {bundle_type} are not acceptable",
            issues=issues,
        )
    return BundleRequest(str(bundle_type), tuple(entries))


def _entry(bundle_type: str, i: int, entry: Mapping[str, Any]) -> Interaction:
    where = f"Bundle.entry[{i}]"
    resource = entry.get("resource")
    request = entry.get("request") or {}
    if bundle_type == "collection":
        if not isinstance(resource, dict):
            raise Unprocessable(
                "a collection entry needs a resource",
                code="required",
                expression=[f"{where}.resource"],
            )
        has_id = bool(resource.get("id"))
        method, url = (
            ("PUT", f"{resource.get('resourceType')}/{resource.get('id')}")
            if has_id
            else ("POST", str(resource.get("resourceType")))
        )
    else:
        method, url = str(request.get("method", "")), str(request.get("url", ""))
        if not method:
            raise Unprocessable(
                "a transaction or batch entry needs request.method",
                code="required",
                expression=[f"{where}.request"],
            )
    if method not in WRITE_METHODS:
        raise MethodNotAllowed(
            f"{method} entries are not supported: the gateway takes POST (create) and PUT (update)",
            expression=[f"{where}.request.method"],
        )
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and not query:
        parts = parts[-2:]  # an absolute URL: keep Type/id
    if method == "PUT" and (query or len(parts) != 2):
        raise Unprocessable(
            "PUT entries must name Type/id (conditional update is not supported)",
            code="not-supported",
            expression=[f"{where}.request.url"],
        )
    if method == "POST" and (query or len(parts) != 1):
        raise Unprocessable(
            "POST entries must name the resource type only",
            code="invalid",
            expression=[f"{where}.request.url"],
        )
    try:
        resource_type = supported_type(parts[0])
    except NoSuchEndpoint as err:
        raise Unprocessable(
            err.diagnostics, code="not-supported", expression=[f"{where}.request.url"]
        ) from None
    if not isinstance(resource, dict):
        raise Unprocessable(
            f"a {method} entry needs a resource", code="required", expression=[f"{where}.resource"]
        )
    if resource.get("resourceType") != resource_type:
        raise BadRequest(
            "the entry's resource is not of the type its request.url names",
            expression=[f"{where}.resource.resourceType"],
        )
    resource, warnings = checked_resource(resource, f"{where}.resource")
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    if method == "PUT":
        if resource.get("id") not in (None, parts[1]):
            raise BadRequest(
                "the resource's id must match the id in request.url",
                expression=[f"{where}.resource.id"],
            )
        resource = {**resource, "id": parts[1]}
        return Interaction(
            "PUT",
            resource_type,
            resource,
            resource_id=parts[1],
            if_match=request.get("ifMatch"),
            full_url=full_url,
            warnings=tuple(warnings),
        )
    return Interaction(
        "POST",
        resource_type,
        resource,
        if_none_exist=request.get("ifNoneExist"),
        full_url=full_url,
        warnings=tuple(warnings),
    )


def bundle_response(
    request: BundleRequest, written: Sequence[Written], *, base: str = ""
) -> dict[str, Any]:
    response_type = "batch-response" if request.bundle_type == "batch" else "transaction-response"
    entries: list[dict[str, Any]] = []
    results = iter(written)
    for item in request.entries:
        if isinstance(item, FhirError):
            entries.append(
                {
                    "response": {
                        "status": status_line(item.status),
                        "outcome": operation_outcome(item.issues),
                    }
                }
            )
            continue
        w = next(results)
        if w.error is not None:
            entries.append(
                {
                    "response": {
                        "status": status_line(w.status),
                        "outcome": operation_outcome(w.error.issues),
                    }
                }
            )
            continue
        response: dict[str, Any] = {
            "status": status_line(w.status),
            "location": f"{w.resource_type}/{w.resource_id}/_history/{w.version}",
            "etag": etag(w.version or 0),
        }
        if w.last_updated is not None:
            response["lastModified"] = fhir_instant(w.last_updated)
        if w.warnings:
            response["outcome"] = operation_outcome(w.warnings)
        entries.append(
            {"fullUrl": f"{base}{w.resource_type}/{w.resource_id}", "response": response}
        )
    return {"resourceType": "Bundle", "type": response_type, "entry": entries}
