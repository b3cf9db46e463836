"""`/fhir/Task/{id}`: where an onward service reads and moves the Task of a referral we sent.

    GET   /fhir/Task/{id}   the Task as the gateway holds it
    PUT   /fhir/Task/{id}   the whole Task, with the new status (fhirclient's `update()`)
    PATCH /fhir/Task/{id}   a JSON Patch of status, statusReason, businessStatus, output

With the service's own token (`referral-gateway services add` prints it); a Task of another
service is 404, as is an unknown one. `rejected` needs `statusReason`, `completed` an
`output` (or `businessStatus`) giving the outcome; a move the Task's life does not allow is
422 (see `domain.onward`). Every answer is the Task or an OperationOutcome.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.errors import BadRequest, NoSuchEndpoint, Unprocessable
from adapters.fhir.onward import apply_patch, task_move, task_resource
from adapters.fhir.outcome import etag
from adapters.fhir.routes import FHIR_ERRORS, FhirJsonResponse, guarded, respond
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.onward import Service, TaskMove, TaskRefusal
from referral_gateway.services.errors import NotFound
from referral_gateway.storage.onward import OnwardTask


class TaskKeeper(Protocol):
    def describe(self, task_id: str) -> tuple[OnwardTask, str, Service] | None: ...

    def update_task(
        self, service_id: str, task_id: str, move: TaskMove, *, now: Any
    ) -> OnwardTask | TaskRefusal: ...


def task_router(*, tasks: TaskKeeper, authenticate: TokenAuthenticator, clock: Clock) -> APIRouter:
    router = APIRouter(
        prefix="/fhir",
        tags=["fhir"],
        default_response_class=FhirJsonResponse,
        responses=FHIR_ERRORS,
    )

    def own(service_id: str, task_id: str) -> dict[str, Any]:
        found = tasks.describe(task_id)
        if found is None or found[0].service_id != service_id:
            raise NoSuchEndpoint("no such Task")
        task, site, service = found
        return task_resource(task, site, service.code)

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > 1024 * 1024:
            raise BadRequest("the body is too large")
        try:
            return json.loads(raw)
        except ValueError:
            raise BadRequest("the body is not JSON", code="structure") from None

    async def move(service_id: str, task_id: str, wanted: TaskMove) -> Response:
        try:
            done = await asyncio.to_thread(
                tasks.update_task, service_id, task_id, wanted, now=clock()
            )
        except NotFound:
            raise NoSuchEndpoint("no such Task") from None
        if isinstance(done, TaskRefusal):
            raise Unprocessable(done.message, code="business-rule", expression=["Task.status"])
        resource = own(service_id, task_id)
        return respond(200, resource, {"ETag": etag(done.version)})

    @router.get("/Task/{task_id}", summary="an onward referral's Task")
    async def read(task_id: str, request: Request) -> Response:
        async def work() -> Response:
            service_id = authenticate.service(request.headers.get("authorization"))
            resource = await asyncio.to_thread(own, service_id, task_id)
            return respond(200, resource)

        return await guarded(work)

    @router.put("/Task/{task_id}", summary="the service moves its Task")
    async def put(task_id: str, request: Request) -> Response:
        async def work() -> Response:
            service_id = authenticate.service(request.headers.get("authorization"))
            wanted = task_move(await body_of(request), task_id)
            return await move(service_id, task_id, wanted)

        return await guarded(work)

    @router.patch("/Task/{task_id}", summary="the service moves its Task (JSON Patch)")
    async def patch(task_id: str, request: Request) -> Response:
        async def work() -> Response:
            service_id = authenticate.service(request.headers.get("authorization"))
            current = await asyncio.to_thread(own, service_id, task_id)
            patched = apply_patch(current, await body_of(request))
            patched.pop("meta", None)
            return await move(service_id, task_id, task_move(patched, task_id))

        return await guarded(work)

    return router
