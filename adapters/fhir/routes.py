"""The FHIR R4 endpoint under /fhir: create, update, transaction / batch, metadata, and the
rest-hook for subscription notifications.

Every answer that is not a success is an OperationOutcome with the right status: 400 for
what is not JSON or not a resource, 401 / 403 for a missing / unknown token, 404 / 405 for
what the endpoint does not do, 412 for failed preconditions, 415 for a media type that is
not FHIR JSON R4, 422 for invalid resources (issue.expression names the element), 503 when
the database does not take the write. A 500 is a bug in the gateway, never the client's
input, and says nothing about it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adapters.fhir import interactions
from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.capability import capability_statement
from adapters.fhir.checks import SUPPORTED_TYPES
from adapters.fhir.errors import (
    BadRequest,
    FhirError,
    Issue,
    MethodNotAllowed,
    NoSuchEndpoint,
    PayloadTooLarge,
    StorageUnavailable,
    UnsupportedMediaType,
)
from adapters.fhir.outcome import FHIR_JSON, error_outcome, etag, http_date, operation_outcome
from adapters.fhir.writer import FhirWriter, WriteUnit, Written, fhir_instant
from referral_gateway.domain.clock import Clock
from referral_gateway.storage.database import storage_unavailable
from referral_gateway.storage.fhir_store import ApiClient

log = logging.getLogger(__name__)


class FhirJsonResponse(JSONResponse):
    """For the OpenAPI schema: every answer here is FHIR JSON (the handlers build their own)."""

    media_type = FHIR_JSON


_RESOURCE = {"schema": {"type": "object", "required": ["resourceType"]}}
FHIR_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": f"OperationOutcome: {why}", "content": {FHIR_JSON: _RESOURCE}}
    for status, why in [
        (400, "not JSON, not a resource, or not what this interaction takes"),
        (401, "no token"),
        (403, "unknown or revoked token"),
        (404, "a resource type or endpoint not served here"),
        (405, "an interaction not served here"),
        (409, "a conflicting write"),
        (412, "a failed If-Match or conditional create"),
        (413, "a body over the limit"),
        (415, "not FHIR JSON R4"),
        (422, "an invalid resource"),
        (503, "the store did not take the write"),
    ]
}
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created", "content": {FHIR_JSON: _RESOURCE}}
}

JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
NotificationHandler = Callable[[Mapping[str, Any], ApiClient], Mapping[str, Any]]


def fhir_router(
    *,
    writer: FhirWriter,
    authenticate: TokenAuthenticator,
    clock: Clock,
    notifications: NotificationHandler | None = None,
    max_body_bytes: int = 5 * 1024 * 1024,
) -> APIRouter:
    """The /fhir routes. `notifications` takes a subscription notification Bundle from an
    authenticated client and returns an OperationOutcome (see subscriptions.py)."""
    router = APIRouter(
        prefix="/fhir",
        tags=["fhir"],
        default_response_class=FhirJsonResponse,
        responses=FHIR_ERRORS,
    )

    async def body_of(request: Request) -> Any:
        _media_type(request.headers.get("content-type"))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes")
        try:
            return json.loads(raw)
        except ValueError:
            raise BadRequest("the body is not JSON", code="structure") from None
        except RecursionError:
            raise BadRequest("the body is nested too deeply", code="structure") from None

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/fhir/"

    @router.get("/metadata", summary="CapabilityStatement")
    async def metadata(request: Request) -> Response:
        async def work() -> Response:
            return respond(200, capability_statement(base_of(request).rstrip("/"), clock()))

        return await guarded(work)

    @router.post("/", include_in_schema=False)  # the base with a trailing slash, as
    @router.post("", summary="transaction, batch or collection Bundle")  # fhirclient sends it
    async def post_bundle(request: Request) -> Response:
        async def work() -> Response:
            client = authenticate(request.headers.get("authorization"))
            body = await body_of(request)
            if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise BadRequest("POST to the base takes a Bundle", expression=["resourceType"])
            if body.get("type") == "history" and notifications is not None:
                outcome = await asyncio.to_thread(notifications, body, client)
                return respond(200, dict(outcome))
            parsed = interactions.bundle_interactions(body)
            todo = tuple(e for e in parsed.entries if not isinstance(e, FhirError))
            written = (
                await writer.write_async(
                    WriteUnit(client.site, client.name, todo, atomic=parsed.atomic)
                )
                if todo
                else []
            )
            return respond(
                200, interactions.bundle_response(parsed, written, base=base_of(request))
            )

        return await guarded(work)

    if notifications is not None:
        handler = notifications

        @router.post("/subscription-hook", summary="rest-hook subscription notifications")
        async def subscription_hook(request: Request) -> Response:
            async def work() -> Response:
                client = authenticate(request.headers.get("authorization"))
                body = await body_of(request)
                if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                    raise BadRequest(
                        "a notification is a history Bundle", expression=["resourceType"]
                    )
                outcome = await asyncio.to_thread(handler, body, client)
                return respond(200, dict(outcome))

            return await guarded(work)

    @router.post("/{resource_type}", summary="create", status_code=201)
    async def create(resource_type: str, request: Request) -> Response:
        async def work() -> Response:
            client = authenticate(request.headers.get("authorization"))
            interactions.supported_type(resource_type)
            body = await body_of(request)
            interaction = interactions.create(
                resource_type, body, if_none_exist=request.headers.get("if-none-exist")
            )
            written = await writer.write_async(WriteUnit(client.site, client.name, (interaction,)))
            return _written(written[0], request, base_of(request))

        return await guarded(work)

    @router.put(
        "/{resource_type}/{resource_id}",
        summary="update (or create with this id)",
        responses=CREATED,
    )
    async def update(resource_type: str, resource_id: str, request: Request) -> Response:
        async def work() -> Response:
            client = authenticate(request.headers.get("authorization"))
            interactions.supported_type(resource_type)
            body = await body_of(request)
            interaction = interactions.update(
                resource_type, resource_id, body, if_match=request.headers.get("if-match")
            )
            written = await writer.write_async(WriteUnit(client.site, client.name, (interaction,)))
            return _written(written[0], request, base_of(request))

        return await guarded(work)

    @router.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"],
        include_in_schema=False,
    )
    async def not_here(path: str, request: Request) -> Response:
        async def work() -> Response:
            first = path.split("/", 1)[0]
            if first not in SUPPORTED_TYPES:
                interactions.supported_type(first)  # raises 404 naming what is taken
                raise NoSuchEndpoint("no such endpoint")
            raise MethodNotAllowed(
                f"{request.method} {first}... is not supported: this endpoint receives "
                "(create and update); see /fhir/metadata"
            )

        return await guarded(work)

    return router


def _media_type(content_type: str | None) -> None:
    if not content_type:
        raise UnsupportedMediaType("send Content-Type: application/fhir+json")
    mime, *params = [p.strip() for p in content_type.split(";")]
    if mime.lower() not in JSON_TYPES:
        raise UnsupportedMediaType("only application/fhir+json (or application/json) is taken")
    for param in params:
        name, _, value = param.partition("=")
        value = value.strip().strip('"').lower()
        if name.strip().lower() == "fhirversion" and not value.startswith("4.0"):
            raise UnsupportedMediaType("this endpoint speaks FHIR R4 (fhirVersion=4.0)")
        if name.strip().lower() == "charset" and value not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("the body must be UTF-8")


def _written(w: Written, request: Request, base: str) -> Response:
    assert w.version is not None and w.last_updated is not None
    headers = {
        "Location": f"{base}{w.resource_type}/{w.resource_id}/_history/{w.version}",
        "ETag": etag(w.version),
        "Last-Modified": http_date(w.last_updated),
    }
    prefer = request.headers.get("prefer", "").replace(" ", "").lower()
    if "return=minimal" in prefer:
        return Response(status_code=w.status, headers=headers)
    if "return=operationoutcome" in prefer:
        issues = list(w.warnings) or [
            Issue(
                "information",
                "informational",
                f"{'created' if w.status == 201 else 'stored'} version {w.version} "
                f"at {fhir_instant(w.last_updated)}",
            )
        ]
        return respond(w.status, operation_outcome(issues), headers)
    return respond(w.status, w.resource or {}, headers)


async def guarded(work: Callable[[], Awaitable[Response]]) -> Response:
    """Runs a FHIR route's work and turns what goes wrong into an OperationOutcome: a FhirError
    as its status, the database down as 503, anything else as a bare 500 (saying nothing of
    the input)."""
    try:
        return await work()
    except FhirError as err:
        return respond(err.status, error_outcome(err), _auth_headers(err.status))
    except Exception as exc:
        if storage_unavailable(exc):  # e.g. the token check while the database is down
            log.error("FHIR request: the database is unavailable (%s)", type(exc).__name__)
            down = StorageUnavailable("the database is unavailable; try again later")
            return respond(down.status, error_outcome(down))
        # a bug of ours: say nothing about the input
        log.error("FHIR request failed: %s", type(exc).__name__)
        return respond(500, operation_outcome([Issue("fatal", "exception", "internal error")]))


def respond(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(
        content=content, status_code=status, media_type=FHIR_JSON, headers=dict(headers or {})
    )


def _auth_headers(status: int) -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="fhir"'} if status == 401 else {}
