"""The full sync's handler and dead hook: a job on the `bulk` queue, one group per shop.

Its handle lives in `neanelu.handles`: call sites write
`await full_sync.enqueue_in_tx(conn, FullSyncJob(...), group=shop)`. The worker's composition root
provides `SyncDeps` as a resource.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from neanelu.db.pool import tenant_scope
from neanelu.handles import FullSyncJob, full_sync
from neanelu.queue import DeadJob, Defer, Fatal, JobContext, Registry, Resources, Retry
from neanelu.shopify.errors import BulkOperationError, InvalidToken, Throttled, TransientError
from neanelu.sync import repository as runs
from neanelu.sync.service import SyncDeps, SyncFailed, open_run, run_sync, unfinished_run
from neanelu.telemetry.redact import scrub

log = logging.getLogger(__name__)


async def handle_full_sync(ctx: JobContext, job: FullSyncJob) -> None:
    deps = ctx.resource(SyncDeps)
    try:
        shop_id = UUID(job.shop_id)
        since = datetime.fromisoformat(job.updated_since) if job.updated_since else None
        run_id = UUID(job.run_id) if job.run_id else None
    except ValueError:
        raise Fatal(f"bad sync job payload: {job!r}") from None
    if run_id is None:
        async with tenant_scope(deps.pool, shop_id) as conn:
            run_id = (await open_run(conn, shop_id, since)).id
    try:
        summary = await run_sync(deps, shop_id, run_id, holder=ctx.worker_id, job_id=ctx.job_id)
    except Throttled as exc:
        # The shop's bucket is empty: the whole group waits, this job first, attempts unchanged.
        raise Defer(exc.retry_after, block_group=True, reason=str(exc)) from None
    except (BulkOperationError, TransientError, InvalidToken) as exc:
        # Retried until its attempts run out; then the queue dead-letters the job (an operator
        # may retry it from the console) and its dead hook fails the run with the reason.
        raise Retry(reason=str(exc)) from None
    except SyncFailed as exc:
        raise Fatal(str(exc)) from None
    log.info(
        "full sync %s of shop %s %s: %d products, %d variants, %d levels",
        run_id,
        shop_id,
        summary.status,
        summary.products,
        summary.variants,
        summary.inventory_levels,
    )


async def fail_dead_sync(resources: Resources, job: FullSyncJob, dead: DeadJob) -> None:
    """The queue gave up on a sync job (attempts exhausted, or its workers kept dying): its run is
    failed with the reason, so it is not left `running` and the next sync starts a new run with
    new bulk operations instead of resuming this one."""
    deps = resources.resource(SyncDeps)
    try:
        shop_id = UUID(job.shop_id)
        since = datetime.fromisoformat(job.updated_since) if job.updated_since else None
        run_id = UUID(job.run_id) if job.run_id else None
    except ValueError:
        return  # a payload no attempt could read opened no run
    how = "dead-lettered" if dead.state == "dead" else "failed for good"
    after = f" after {dead.attempts} attempts" if dead.attempts else ""
    reason = scrub(f"sync job {dead.id} {how}{after}: {dead.error}")
    async with tenant_scope(deps.pool, shop_id) as conn:
        if run_id is None:
            run = await unfinished_run(conn, since)
            run_id = run.id if run is not None else None
        failed = run_id is not None and await runs.fail_unfinished(conn, run_id, reason[:2000])
    if failed:
        log.error("full sync %s of shop %s failed: %s", run_id, shop_id, reason)


def register(registry: Registry) -> None:
    registry.bind(full_sync, handle_full_sync, on_dead=fail_dead_sync)
