"""What an operator can change: each a POST with the session's CSRF token, each audited."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import enqueue_full_sync
from neanelu.shops import repository as shops
from neanelu.sync.parity import DEFAULT_SAMPLE, request_parity
from neanelu.web.console import audit, queues
from neanelu.web.console.deps import checked_form, client_address, first, runtime
from neanelu.web.console.render import SECURITY_HEADERS
from neanelu.web.console.sessions import Operator

router = APIRouter()
MAX_IDS = 1000
MAX_PARITY_SAMPLE = 10_000


def _back(to: str, notice: str, n: int = 0) -> Response:
    """Back to the page, which shows one of render.NOTICES (never text from the URL)."""
    return RedirectResponse(
        f"{to}?notice={notice}&n={n}", status_code=303, headers=SECURITY_HEADERS
    )


async def _audit(
    request: Request, who: Operator, action: str, target: str, detail: dict[str, Any]
) -> None:
    rt = runtime(request)
    async with global_scope(rt.pool) as conn:
        await audit.record(
            conn,
            operator_id=who.id,
            username=who.username,
            action=action,
            target=target,
            detail=detail,
            remote_addr=client_address(request),
        )


async def _installed(request: Request, shop_id: UUID) -> str:
    async with global_scope(runtime(request).pool) as conn:
        row = await shops.get(conn, shop_id)
    if row is None:
        raise HTTPException(404, f"no shop {shop_id}")
    return row.domain


@router.post("/admin/shops/{shop_id}/sync", include_in_schema=False)
async def start_full_sync(request: Request, shop_id: UUID) -> Response:
    who, _ = await checked_form(request)
    rt = runtime(request)
    domain = await _installed(request, shop_id)
    async with global_scope(rt.pool) as conn:
        row = await shops.get(conn, shop_id)
        if row is None or row.status != "installed":
            raise HTTPException(
                409, f"shop {domain} is not installed (status {row.status if row else 'gone'})"
            )
    # The job and its audit row commit together: an audited sync is a queued sync.
    async with tenant_scope(rt.pool, shop_id) as conn:
        job_id = await enqueue_full_sync(conn, shop_id, reason=f"console:{who.username}")
        await audit.record(
            conn,
            operator_id=who.id,
            username=who.username,
            action="shop.full_sync",
            target=domain,
            detail={"job_id": job_id},
            remote_addr=client_address(request),
        )
    return _back(f"/admin/shops/{shop_id}", "sync")


@router.post("/admin/shops/{shop_id}/parity", include_in_schema=False)
async def start_parity(request: Request, shop_id: UUID) -> Response:
    who, fields = await checked_form(request)
    raw = first(fields, "sample") or str(DEFAULT_SAMPLE)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARITY_SAMPLE:
        raise HTTPException(400, f"sample must be a whole number from 1 to {MAX_PARITY_SAMPLE}")
    rt = runtime(request)
    domain = await _installed(request, shop_id)
    async with tenant_scope(rt.pool, shop_id) as conn:
        check_id = await request_parity(conn, shop_id, sample=int(raw), requested_by=who.username)
        await audit.record(
            conn,
            operator_id=who.id,
            username=who.username,
            action="shop.parity_check",
            target=domain,
            detail={"check_id": str(check_id), "sample": int(raw)},
            remote_addr=client_address(request),
        )
    return _back(f"/admin/shops/{shop_id}", "parity")


@router.post("/admin/shops/{shop_id}/pause", include_in_schema=False)
async def pause(request: Request, shop_id: UUID) -> Response:
    who, _ = await checked_form(request)
    domain = await _installed(request, shop_id)
    await queues.pause_shop(runtime(request).queues, str(shop_id))
    await _audit(request, who, "shop.pause", domain, {"queues": runtime(request).queues.names})
    return _back(f"/admin/shops/{shop_id}", "paused")


@router.post("/admin/shops/{shop_id}/resume", include_in_schema=False)
async def resume(request: Request, shop_id: UUID) -> Response:
    who, _ = await checked_form(request)
    domain = await _installed(request, shop_id)
    await queues.resume_shop(runtime(request).queues, str(shop_id))
    await _audit(request, who, "shop.resume", domain, {"queues": runtime(request).queues.names})
    return _back(f"/admin/shops/{shop_id}", "resumed")


@router.post("/admin/queues/{queue}/{which}/{op}", include_in_schema=False)
async def terminal_op(request: Request, queue: str, which: str, op: str) -> Response:
    """Retry or purge jobs of a dead/failed set: the ids ticked, or the whole set (`all=1`)."""
    who, fields = await checked_form(request)
    rt = runtime(request)
    if queue not in rt.queues.names or which not in queues.TERMINAL or op not in ("retry", "purge"):
        raise HTTPException(404, f"no {op!r} of the {which!r} set of queue {queue!r}")
    everything = fields.get("all") == ["1"]
    ids = [i for i in fields.get("job_id", []) if i]
    if not everything and not ids:
        raise HTTPException(400, "tick at least one job, or choose all")
    if len(ids) > MAX_IDS:
        raise HTTPException(400, f"at most {MAX_IDS} jobs at once")
    run = queues.retry_dead if op == "retry" else queues.purge_dead
    moved = await run(rt.queues, queue, None if everything else ids, which=which)
    await _audit(
        request,
        who,
        f"queue.{op}",
        f"{queue}/{which}",
        {"all": everything, "job_ids": ids[:100], "moved": moved},
    )
    return _back(f"/admin/queues/{queue}/{which}", "retried" if op == "retry" else "purged", moved)
