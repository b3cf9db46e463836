"""Operations JSON: `/health`, and `/api/ops/counts` and `/api/ops/errors` behind the ops
token when one is configured. No identifiable data in any of them, nor in the answer to an
unexpected error."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.engine import Engine

from referral_gateway.storage.views import error_store, feed_counts
from referral_gateway.web.openapi import refusals


def ops_token_check(ops_token: str | None) -> Callable[[Request], None]:
    """The one check of every operations route (`/api/ops/*`, `/metrics`). Operations views
    carry no identifiable data, but say what the feeds are doing: they answer only the holder
    of the ops token (401 otherwise), and nobody when none is configured (403)."""

    def require_ops(request: Request) -> None:
        if not ops_token:
            raise HTTPException(
                status_code=403,
                detail="the operations API is off: set RG_OPS_TOKEN to turn it on",
            )
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {ops_token}".encode()):
            raise HTTPException(
                status_code=401, detail="ops token required", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_ops


def ops_router(
    engine: Engine,
    ops_token: str | None,
    *,
    fhir_sources: Callable[[], list[dict[str, Any]]] | None = None,
) -> APIRouter:
    """`fhir_sources` gives each FHIR source's state (`adapters.fhir.status`), as the
    composition root reads it from the gateway's poller and subscription receiver."""
    router = APIRouter()
    ops = [Depends(ops_token_check(ops_token))]
    refused = refusals(401, 403, 422)

    @router.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/api/ops/counts", tags=["operations"], dependencies=ops, responses=refused)
    def counts(since: Annotated[date | None, Query()] = None) -> list[dict[str, Any]]:
        """Received, duplicate, filtered, errored and candidate messages per sender per day."""
        return feed_counts(engine, since=since)

    @router.get("/api/ops/errors", tags=["operations"], dependencies=ops, responses=refused)
    def errors() -> list[dict[str, Any]]:
        """The error store: messages that failed a stage, with the stage and the error."""
        return error_store(engine)

    @router.get("/api/ops/fhir-sources", tags=["operations"], dependencies=ops, responses=refused)
    def fhir_source_states() -> list[dict[str, Any]]:
        """Each FHIR source: watermark, consecutive failures, last error, next attempt."""
        return fhir_sources() if fhir_sources is not None else []

    return router
