"""What monitoring reads: `/health/live`, `/health/ready` and `/metrics`.

- `/health/live`: 200 while the process answers HTTP at all (restart it when this fails).
- `/health/ready`: 200 only when the database answers (within `DATABASE_WAIT_S`) and every
  listener registered (the MLLP listener under `serve`) is up; 503 otherwise, naming which
  check failed (send it no traffic when this fails). Neither needs a token; neither says
  more than check names and true/false.
- `/metrics`: Prometheus text format, with the ops token (`Authorization: Bearer ...`);
  refused to everyone while RG_OPS_TOKEN is unset (the operations routes' one check,
  `web.ops.ops_token_check`: 401 without the token, 403 while none is configured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from referral_gateway.observability.metrics import Metrics
from referral_gateway.web.openapi import refusals
from referral_gateway.web.ops import ops_token_check

DATABASE_WAIT_S = 3.0


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


def monitoring_router(
    engine: Engine,
    metrics: Metrics,
    *,
    ops_token: str | None,
    listeners: Mapping[str, Callable[[], bool]],
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        try:
            db = await asyncio.wait_for(
                run_in_threadpool(database_answers, engine), DATABASE_WAIT_S
            )
        except TimeoutError:
            db = False
        checks = {"database": db}
        for name, up in listeners.items():
            try:
                checks[name] = bool(up())
            except Exception:
                checks[name] = False
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get(
        "/metrics",
        dependencies=[Depends(ops_token_check(ops_token))],
        responses={
            200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
            **refusals(401, 403),
        },
        response_class=Response,
    )
    async def scrape() -> Response:
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
