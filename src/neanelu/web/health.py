"""`/health/live` (the process answers) and `/health/ready` (PostgreSQL, Redis, schema at head)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from neanelu.db.rows import fetch_scalar
from neanelu.web.deps import RuntimeDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/health", tags=["health"])
CHECK_TIMEOUT_S = 2.0


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency is not ready"}},
)
async def ready(request: Request, rt: RuntimeDep) -> JSONResponse:
    head: str | None = request.app.state.migration_head
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), rt.pool.connection() as conn:
            current = await fetch_scalar(conn, str, "SELECT version_num FROM alembic_version")
        checks["postgres"] = "ok"
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except Exception as exc:
        checks["postgres"] = f"unavailable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable ({type(exc).__name__})"
    healthy = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if healthy else "unavailable", checks=checks)
    if not healthy:
        log.warning("not ready: %s", checks)
    return JSONResponse(
        body.model_dump(),
        status_code=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
