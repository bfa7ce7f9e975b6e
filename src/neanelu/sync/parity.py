"""Parity checks as jobs: asked for (from the console) in the caller's transaction, run by a
worker on the `sync` queue, and recorded in `parity_checks` with what they found."""

from __future__ import annotations

import logging
from dataclasses import asdict
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_scalar
from neanelu.handles import PARITY_ATTEMPTS, ParityJob, parity_check
from neanelu.queue import Defer, Fatal, JobContext, Registry, Retry
from neanelu.shopify.errors import AccessDenied, InvalidToken, Throttled, TransientError
from neanelu.sync.service import SyncDeps
from neanelu.sync.verify import verify_sample

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 100
KEPT_DIFFERENCES = 200  # the rest are counted, not stored


async def request_parity(conn: Conn, shop_id: UUID, *, sample: int, requested_by: str) -> UUID:
    """A queued check and its job, in the caller's tenant-scoped transaction."""
    check_id = await fetch_scalar(
        conn,
        UUID,
        "INSERT INTO parity_checks (shop_id, sample, requested_by) VALUES (%s, %s, %s) RETURNING id",
        (shop_id, sample, requested_by),
    )
    assert check_id is not None
    await parity_check.enqueue_in_tx(
        conn,
        ParityJob(shop_id=str(shop_id), check_id=str(check_id)),
        group=shop_id,
        job_id=f"parity-{check_id}-{uuid4().hex[:8]}",
    )
    return check_id


async def _finish(deps: SyncDeps, shop_id: UUID, check_id: UUID, status: str, error: str) -> None:
    async with tenant_scope(deps.pool, shop_id) as conn:
        await conn.execute(
            "UPDATE parity_checks SET status = %s, error = %s, finished_at = now() WHERE id = %s",
            (status, error[:2000], check_id),
        )


async def handle_parity(ctx: JobContext, job: ParityJob) -> None:
    deps = ctx.resource(SyncDeps)
    try:
        shop_id, check_id = UUID(job.shop_id), UUID(job.check_id)
    except ValueError:
        raise Fatal(f"bad parity job payload: {job!r}") from None
    async with tenant_scope(deps.pool, shop_id) as conn:
        sample = await fetch_scalar(
            conn,
            int,
            "UPDATE parity_checks SET status = 'running' WHERE id = %s RETURNING sample",
            (check_id,),
        )
    if sample is None:
        raise Fatal(f"no parity check {check_id} for shop {shop_id}")
    try:
        client = await deps.shops.admin_client(shop_id)
        owners = await deps.owner_apps.owner_apps(shop_id) if deps.owner_apps else []
        report = await verify_sample(
            deps.pool,
            client,
            shop_id,
            sample,
            owner_namespaces=tuple(o.namespace for o in owners),
        )
    except Throttled as exc:
        raise Defer(exc.retry_after, block_group=True, reason=str(exc)) from None
    except (TransientError, InvalidToken) as exc:
        if ctx.attempt >= PARITY_ATTEMPTS:
            await _finish(deps, shop_id, check_id, "failed", f"gave up: {exc}")
            raise Fatal(str(exc)) from None
        raise Retry(reason=str(exc)) from None
    except AccessDenied as exc:
        await _finish(deps, shop_id, check_id, "failed", str(exc))
        raise Fatal(str(exc)) from None
    kept = [
        {
            k: v if isinstance(v, int | float | str | bool | None) else repr(v)
            for k, v in asdict(d).items()
        }
        for d in report.differences[:KEPT_DIFFERENCES]
    ]
    async with tenant_scope(deps.pool, shop_id) as conn:
        await conn.execute(
            "UPDATE parity_checks SET status = %s, sampled = %s, compared = %s,"
            " difference_count = %s, differences = %s, error = NULL, finished_at = now()"
            " WHERE id = %s",
            (
                "matches" if report.matches else "differs",
                report.sampled,
                report.compared,
                len(report.differences),
                Jsonb(kept),
                check_id,
            ),
        )
    log.info(
        "parity check %s of shop %s: %d/%d compared, %d differences",
        check_id,
        shop_id,
        report.compared,
        report.sampled,
        len(report.differences),
    )


def register(registry: Registry) -> None:
    registry.bind(parity_check, handle_parity)
