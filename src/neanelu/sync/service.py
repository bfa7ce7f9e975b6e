"""A full (or incremental) catalog sync: three bulk queries, streamed into staging, merged.

The run's state lives in `sync_runs`, so an attempt that dies anywhere (SIGKILL mid-COPY or
mid-merge) is resumed by the next one: bulk operations already started are reused, staging is
rebuilt (it died with the session), and the merges are idempotent newer-wins upserts, so the final
tables equal those of a clean run.

Each attempt has a row of its own (`sync_run_attempts`): who holds it, a heartbeat its holder
renews while it runs, and how it ended, with the error whatever it was. An attempt whose holder
died without a word is found by the next attempt (or the queue giving up) and closed as
abandoned, so no failure leaves the run without a reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.handles import queue_shop_embedding
from neanelu.ingest import merge, stage
from neanelu.ingest.queries import Phase
from neanelu.ingest.stage import TooManyBadLines
from neanelu.shopify.bulk import DEFAULT_POLLING, BulkPolling
from neanelu.shopify.errors import AccessDenied, BulkOperationError, InvalidToken
from neanelu.shopify.graphql import AdminClient
from neanelu.sync import repository as runs
from neanelu.sync.attempt import SyncAttempt
from neanelu.sync.attempts import LEASE_HEARTBEATS, describe, heartbeat, record_end, this_process
from neanelu.sync.operations import RecordOperation, run_operations
from neanelu.sync.owner_metafields import OwnerAppSource, owner_results
from neanelu.sync.progress import ProgressReporter
from neanelu.sync.staging import StageDeps
from neanelu.sync.staging import SyncSummary as SyncSummary
from neanelu.telemetry import current_metrics, span
from neanelu.telemetry.tracing import SHOP_ID

log = logging.getLogger(__name__)

PHASES = (Phase.CORE, Phase.METAFIELDS, Phase.VARIANT_METAFIELDS, Phase.INVENTORY)


class ShopAccess(Protocol):
    async def admin_client(self, shop_id: UUID) -> AdminClient:
        """A GraphQL client for the shop with a fresh token and the shop's cost budget."""


class SyncFailed(Exception):
    """The run cannot succeed by retrying (recorded on the run as its error)."""


@dataclass(frozen=True, slots=True)
class SyncDeps:
    pool: AsyncConnectionPool[Conn]
    http: httpx.AsyncClient
    shops: ShopAccess
    redis: Redis | None = None
    max_bad_share: float = 0.01
    merge_batch_pages: int = merge.PAGES_PER_BATCH
    # Other apps whose app-owned metafields the shop wants mirrored (None: none registered).
    owner_apps: OwnerAppSource | None = None
    # Inventory files at least this large are decoded and merged by a child process, on the
    # second core, while this one decodes the catalog (None: always here).
    inventory_child_bytes: int | None = 64 * 2**20
    # How bulk operations are waited for; its signal (bulk_operations/finish) ends waits early.
    bulk_polling: BulkPolling = DEFAULT_POLLING
    # How often the holder of an attempt renews its heartbeat (its lease is three of these).
    heartbeat_s: float = 10.0

    @property
    def staging(self) -> StageDeps:
        return StageDeps(self.pool, self.http, self.max_bad_share)


async def request_full_sync(conn: Conn, shop_id: UUID) -> runs.SyncRun:
    """The active full run of the shop, or a new queued one (one at a time per shop)."""
    return await open_run(conn, shop_id, None)


async def open_run(conn: Conn, shop_id: UUID, updated_since: datetime | None) -> runs.SyncRun:
    """The shop's unfinished run of this kind (a retried job continues it), or a new one."""
    existing = await unfinished_run(conn, updated_since)
    kind = "incremental" if updated_since is not None else "full"
    return existing or await runs.create_run(conn, shop_id, kind, updated_since)


async def unfinished_run(conn: Conn, updated_since: datetime | None) -> runs.SyncRun | None:
    """The run a job without a run id works on: the shop's queued or running one of its kind."""
    return await runs.active_run(conn, "incremental" if updated_since is not None else "full")


async def run_sync(
    deps: SyncDeps,
    shop_id: UUID,
    run_id: UUID,
    *,
    listener: ProgressReporter | None = None,
    holder: str | None = None,
    job_id: str | None = None,
) -> SyncSummary:
    """One attempt of the run, held by `holder` (a worker's id; this process by default)."""
    lease_s = deps.heartbeat_s * LEASE_HEARTBEATS
    async with tenant_scope(deps.pool, shop_id) as conn:
        run = await runs.get_run(conn, run_id)
        if run is None:
            raise SyncFailed(f"sync run {run_id} does not exist for shop {shop_id}")
        if run.status in ("completed", "failed", "canceled"):
            return SyncSummary(run_id, run.status)
        attempt = await runs.start_attempt(conn, run_id, holder or this_process(), job_id, lease_s)
        run = await runs.get_run(conn, run_id)
        assert run is not None
    reporter = listener or ProgressReporter(deps.redis, shop_id, run_id)
    with span("sync.run", {SHOP_ID: str(shop_id), "neanelu.sync_run_id": str(run_id)}):
        async with heartbeat(deps.pool, run, attempt, deps.heartbeat_s):
            return await _run_recorded(deps, run, attempt, reporter)


async def _run_recorded(
    deps: SyncDeps, run: runs.SyncRun, attempt: int, reporter: ProgressReporter
) -> SyncSummary:
    started, outcome = time.perf_counter(), "retry"
    try:
        summary = await _attempt(deps, run, attempt, reporter)
        outcome = "completed"
        return summary
    except SyncFailed:
        outcome = "failed"
        raise
    except BaseException as exc:
        # Whatever ended the attempt (a retryable Shopify error, a bug, a cancel) is written on
        # the attempt and as the run's last error before the job hears of it.
        await record_end(deps.pool, run, attempt, exc)
        raise
    finally:
        m = current_metrics()
        m.sync_runs.labels(run.kind, outcome).inc()
        m.sync_duration.labels(run.kind, outcome).observe(time.perf_counter() - started)


async def _attempt(
    deps: SyncDeps, run: runs.SyncRun, attempt: int, reporter: ProgressReporter
) -> SyncSummary:
    shop_id, run_id = run.shop_id, run.id
    try:
        summary = await _run(deps, run, reporter)
    except (SyncFailed, BulkOperationError, AccessDenied, TooManyBadLines, merge.ShopGone) as exc:
        if isinstance(exc, BulkOperationError) and exc.retryable:
            raise
        if isinstance(exc, InvalidToken):
            raise  # a refreshed token may fix it: the job retries
        error = describe(exc) if not isinstance(exc, SyncFailed) else str(exc)
        async with tenant_scope(deps.pool, shop_id) as conn:
            await runs.end_attempt(conn, run_id, attempt, "failed", error)
            await runs.finish_run(conn, run_id, "failed", str(exc), attempt=attempt)
        raise SyncFailed(str(exc)) from exc
    async with tenant_scope(deps.pool, shop_id) as conn:
        await runs.end_attempt(conn, run_id, attempt, "completed", None)
        await runs.finish_run(conn, run_id, "completed", None, attempt=attempt)
        await runs.mark_shop_synced(conn, shop_id, run.kind)
        if run.kind == "full":
            # Embeddings follow the synced catalog; one job per run, committed with it.
            await queue_shop_embedding(
                conn, shop_id, source="full_sync", job_id=f"embed-sync-{run_id}"
            )
    return summary


async def _run(deps: SyncDeps, run: runs.SyncRun, reporter: ProgressReporter) -> SyncSummary:
    client = await deps.shops.admin_client(run.shop_id)
    since = run.updated_since.isoformat() if run.updated_since else None
    owners = await deps.owner_apps.owner_apps(run.shop_id) if deps.owner_apps else []
    with span("ingest.bulk_operations", {SHOP_ID: str(run.shop_id)}):
        record = _recorder(deps, run)
        known = run.bulk_operations
        ours = asyncio.ensure_future(
            run_operations(
                client, PHASES, lambda p: p.value, known, since, record, deps.bulk_polling
            )
        )
        try:
            outcomes = list(
                await asyncio.gather(
                    *(owner_results(o, known, since, record, deps.bulk_polling) for o in owners)
                )
            )
        except BaseException:
            ours.cancel()
            raise
        results = await ours
    summary = SyncSummary(run.id, "completed")
    summary.complete = all(r.complete for r in results.values())
    for outcome in outcomes:
        if outcome.unavailable is not None:
            summary.unavailable_metafields[outcome.app.namespace] = outcome.unavailable
            log.warning(
                "shop %s: metafields of owner app %s unavailable: %s",
                run.shop_id,
                outcome.app.api_client_id,
                outcome.unavailable,
            )
    # Products and variants stage and merge on two sessions, side by side.
    async with deps.pool.connection() as catalog, deps.pool.connection() as variants:
        sessions = (catalog, variants)
        for conn in sessions:
            # Autocommit: each staging step and each merge batch is its own explicit
            # transaction, never a savepoint inside an implicit one a later rollback takes back.
            await conn.set_autocommit(True)
            await stage.make_room(conn)
        try:
            await SyncAttempt(deps, run, results, outcomes, reporter, summary).ingest(sessions)
        finally:
            # Staging tables are session-private; drop them before the connections are reused.
            for conn in sessions:
                await conn.execute(f"DROP TABLE IF EXISTS {merge.CATALOG_STAGING}")
                await conn.set_autocommit(False)
    if not summary.complete:
        # What a FAILED operation left is merged (newer-wins keeps it safe); the run is retried
        # with fresh operations for the rest, and deletions wait for a complete file.
        failed = ", ".join(p.value for p, r in results.items() if not r.complete)
        raise BulkOperationError(
            f"{failed} ended FAILED; kept {summary.products} products and "
            f"{summary.variants} variants from partial data, retrying for the rest",
            retryable=True,
        )
    return summary


def _recorder(deps: SyncDeps, run: runs.SyncRun) -> RecordOperation:
    async def record(key: str, operation_id: str) -> None:
        async with tenant_scope(deps.pool, run.shop_id) as conn:
            await runs.record_operation(conn, run.id, key, operation_id)

    return record
