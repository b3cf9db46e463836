"""The HTTP face of the gateway: operations JSON now; queue, FHIR and reports mount here."""

from __future__ import annotations

import hmac
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from referral_gateway.bootstrap import Gateway
from referral_gateway.services.report_wiring import Reports, mount_reports
from referral_gateway.storage.views import error_store, feed_counts
from referral_gateway.web.options import WebOptions
from referral_gateway.web.ui import install_web


def build_app(
    gateway: Gateway,
    *,
    ops_token: str | None = None,
    web: WebOptions | None = None,
    reports: Reports | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Referral gateway",
        summary="ED feeds to youth-worker referrals, gated by consent",
        version="0.1.0",
    )
    app.state.gateway = gateway
    app.include_router(gateway.fhir.router())

    def require_ops(request: Request) -> None:
        """Operations views carry no identifiable data, but say what the feeds are doing:
        they answer only the holder of the ops token, and nobody when none is configured."""
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

    ops = [Depends(require_ops)]

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/ops/counts", tags=["operations"], dependencies=ops)
    def counts(since: Annotated[date | None, Query()] = None) -> list[dict[str, Any]]:
        """Received, duplicate, filtered, errored and candidate messages per sender per day."""
        return feed_counts(gateway.engine, since=since)

    @app.get("/api/ops/errors", tags=["operations"], dependencies=ops)
    def errors() -> list[dict[str, Any]]:
        """The error store: messages that failed a stage, with the stage and the error."""
        return error_store(gateway.engine)

    if reports is not None:  # dashboard at /reports; hub at /hub when RG_HUB_KEYS_FILE is set
        mount_reports(app, reports, gateway.clock, ops_token=ops_token)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # never echo exception text: it may carry identifiable data
        return JSONResponse({"detail": "internal error"}, status_code=500)

    install_web(
        app,
        engine=gateway.engine,
        keyring=gateway.keyring,
        clock=gateway.clock,
        listeners=gateway.referral_listeners,
        sharing=gateway.sharing,
        options=web or WebOptions.from_settings(gateway.settings),
    )
    return app
