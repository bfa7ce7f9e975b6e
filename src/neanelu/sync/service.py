"""A full (or incremental) catalog sync: three bulk queries, streamed into staging, merged.

The run's state lives in `sync_runs`, so an attempt that dies anywhere (SIGKILL mid-COPY or
mid-merge) is resumed by the next one: bulk operations already started are reused, staging is
rebuilt (it died with the session), and the merges are idempotent newer-wins upserts, so the final
tables equal those of a clean run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge, stage
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase, bulk_query
from neanelu.ingest.rows import RowBuilder, metafields_builder
from neanelu.ingest.stage import PhaseStats, TooManyBadLines, stage_phase
from neanelu.shopify.bulk import (
    BulkResult,
    BulkStatus,
    get_operation,
    judge,
    runs_concurrently,
    start_bulk_query,
    wait_for_operation,
)
from neanelu.shopify.download import DownloadProgress, stream_file
from neanelu.shopify.errors import AccessDenied, BulkOperationError, InvalidToken
from neanelu.shopify.graphql import AdminClient
from neanelu.sync import repository as runs
from neanelu.sync.owner_apps import OwnerApp, OwnerAppSource, OwnerOutcome, owner_results
from neanelu.sync.progress import PhaseProgress, ProgressReporter
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


@dataclass(slots=True)
class SyncSummary:
    run_id: UUID
    status: str
    phases: dict[str, PhaseProgress] = field(default_factory=dict)
    products: int = 0
    variants: int = 0
    inventory_levels: int = 0
    orphans: int = 0
    marked_deleted: int = 0
    bad_lines: int = 0
    complete: bool = True
    merge_seconds: float = 0.0
    download_seconds: float = 0.0
    first_byte_at: float | None = None
    # When the last write of the merges committed (before statistics are refreshed).
    merged_at: float | None = None
    # Owner apps' namespaces (`app--{id}`) not read in full, with the reason; what is stored of
    # them was kept.
    unavailable_metafields: dict[str, str] = field(default_factory=dict)


async def request_full_sync(conn: Conn, shop_id: UUID) -> runs.SyncRun:
    """The active full run of the shop, or a new queued one (one at a time per shop)."""
    return await open_run(conn, shop_id, None)


async def open_run(conn: Conn, shop_id: UUID, updated_since: datetime | None) -> runs.SyncRun:
    """The shop's unfinished run of this kind (a retried job continues it), or a new one."""
    kind = "incremental" if updated_since is not None else "full"
    existing = await runs.active_run(conn, kind)
    return existing or await runs.create_run(conn, shop_id, kind, updated_since)


async def run_sync(
    deps: SyncDeps,
    shop_id: UUID,
    run_id: UUID,
    *,
    listener: ProgressReporter | None = None,
) -> SyncSummary:
    async with tenant_scope(deps.pool, shop_id) as conn:
        run = await runs.get_run(conn, run_id)
        if run is None:
            raise SyncFailed(f"sync run {run_id} does not exist for shop {shop_id}")
        if run.status in ("completed", "failed", "canceled"):
            return SyncSummary(run_id, run.status)
        await runs.start_attempt(conn, run_id)
        run = await runs.get_run(conn, run_id)
        assert run is not None
    reporter = listener or ProgressReporter(deps.redis, shop_id, run_id)
    with span("sync.run", {SHOP_ID: str(shop_id), "neanelu.sync_run_id": str(run_id)}):
        return await _run_recorded(deps, run, reporter)


async def _run_recorded(
    deps: SyncDeps, run: runs.SyncRun, reporter: ProgressReporter
) -> SyncSummary:
    started, outcome = time.perf_counter(), "retry"
    try:
        summary = await _attempt(deps, run, reporter)
        outcome = "completed"
        return summary
    except SyncFailed:
        outcome = "failed"
        raise
    finally:
        m = current_metrics()
        m.sync_runs.labels(run.kind, outcome).inc()
        m.sync_duration.labels(run.kind, outcome).observe(time.perf_counter() - started)


async def _attempt(deps: SyncDeps, run: runs.SyncRun, reporter: ProgressReporter) -> SyncSummary:
    shop_id, run_id = run.shop_id, run.id
    try:
        summary = await _run(deps, run, reporter)
    except (SyncFailed, BulkOperationError, AccessDenied, TooManyBadLines, merge.ShopGone) as exc:
        if isinstance(exc, BulkOperationError) and exc.retryable:
            raise
        if isinstance(exc, InvalidToken):
            raise  # a refreshed token may fix it: the job retries
        async with tenant_scope(deps.pool, shop_id) as conn:
            await runs.finish_run(conn, run_id, "failed", str(exc))
        raise SyncFailed(str(exc)) from exc
    async with tenant_scope(deps.pool, shop_id) as conn:
        await runs.finish_run(conn, run_id, "completed", None)
        await runs.mark_shop_synced(conn, shop_id, run.kind)
    return summary


async def _run(deps: SyncDeps, run: runs.SyncRun, reporter: ProgressReporter) -> SyncSummary:
    client = await deps.shops.admin_client(run.shop_id)
    since = run.updated_since.isoformat() if run.updated_since else None
    owners = await deps.owner_apps.owner_apps(run.shop_id) if deps.owner_apps else []
    with span("ingest.bulk_operations", {SHOP_ID: str(run.shop_id)}):
        ours = asyncio.ensure_future(_bulk_results(deps, client, run, since))
        try:
            outcomes = list(
                await asyncio.gather(*(_owner_results(deps, run, o, since) for o in owners))
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
    async with deps.pool.connection() as catalog, deps.pool.connection() as inventory:
        sessions = (catalog, inventory)
        for conn in sessions:
            # Autocommit: each staging step and each merge batch is its own explicit transaction,
            # never a savepoint inside an implicit one that a later rollback would take back.
            await conn.set_autocommit(True)
            await stage.make_room(conn)
        try:
            await _ingest(deps, catalog, inventory, run, results, outcomes, reporter, summary)
        finally:
            # Staging tables are session-private; drop them before the connections are reused.
            for conn in sessions:
                await conn.execute("DROP TABLE IF EXISTS stg_core, stg_meta, stg_inv, stg_meta_agg")
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


async def _bulk_results(
    deps: SyncDeps, client: AdminClient, run: runs.SyncRun, since: str | None
) -> dict[Phase, BulkResult]:
    """Start (or find again) the run's bulk operations and wait until each has ended."""
    concurrent = runs_concurrently(client)
    operation_ids: dict[Phase, str] = {}
    for phase in PHASES:
        known = run.bulk_operations.get(phase.value)
        if known and await _reusable(client, known):
            operation_ids[phase] = known
            continue
        if not concurrent and operation_ids:
            # One bulk query at a time: the previous one must end before this one starts.
            await wait_for_operation(client, operation_ids[PHASES[PHASES.index(phase) - 1]])
        operation_ids[phase] = await start_bulk_query(client, bulk_query(phase, since))
        async with tenant_scope(deps.pool, run.shop_id) as conn:
            await runs.record_operation(conn, run.id, phase.value, operation_ids[phase])
    finished = await asyncio.gather(*(wait_for_operation(client, operation_ids[p]) for p in PHASES))
    return {phase: judge(op) for phase, op in zip(PHASES, finished, strict=True)}


async def _owner_results(
    deps: SyncDeps, run: runs.SyncRun, owner: OwnerApp, since: str | None
) -> OwnerOutcome:
    async def record(key: str, operation_id: str) -> None:
        async with tenant_scope(deps.pool, run.shop_id) as conn:
            await runs.record_operation(conn, run.id, key, operation_id)

    return await owner_results(owner, run.bulk_operations, since, _reusable, record)


async def _reusable(client: AdminClient, operation_id: str) -> bool:
    """A previous attempt's operation is reused unless it can no longer give a file."""
    try:
        operation = await get_operation(client, operation_id)
    except BulkOperationError:
        return False
    if operation.status in (BulkStatus.CREATED, BulkStatus.RUNNING):
        return True
    if operation.status is BulkStatus.COMPLETED:
        return operation.url is not None or operation.object_count == 0
    return False


async def _ingest(
    deps: SyncDeps,
    catalog: Conn,
    inventory: Conn,
    run: runs.SyncRun,
    results: dict[Phase, BulkResult],
    outcomes: list[OwnerOutcome],
    reporter: ProgressReporter,
    summary: SyncSummary,
) -> None:
    """Stage metafields and core on the catalog session; merge products and variants there while
    the inventory streams into its own session; then merge the inventory. Python decodes on one
    core while PostgreSQL copies and merges on the other."""
    await catalog.execute(load_sql("ingest/staging.sql"))
    await inventory.execute(load_sql("ingest/staging_inventory.sql"))
    merge_progress = PhaseProgress("merge")
    merged_rows: dict[str, int] = {}

    async def on_batch(table: str, merged: int) -> None:
        merged_rows[table] = merged
        merge_progress.rows = sum(merged_rows.values())
        merge_progress.seconds = time.perf_counter() - started
        await reporter.update(merge_progress)

    # Metafields first: products and variants can merge as soon as the core file is staged, and
    # their merge (PostgreSQL, one core) then overlaps the inventory staging (Python, the other).
    for phase in (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS):
        await _stage_and_record(deps, catalog, run, phase, results[phase], reporter, summary)
    for outcome in outcomes:
        # Only the owner's own namespaces: the rest of what its token sees came with ours.
        for phase, result in outcome.results.items():
            build = metafields_builder(outcome.app.owns)
            key = outcome.app.operation_key(phase)
            await _stage_and_record(
                deps, catalog, run, phase, result, reporter, summary, label=key, build=build
            )
    await _stage_and_record(deps, catalog, run, Phase.CORE, results[Phase.CORE], reporter, summary)
    # Owner apps not read in full keep what is stored of their metafields.
    kept = [p for o in outcomes if o.unavailable is not None for p in o.app.patterns()]
    started = time.perf_counter()

    async def merge_catalog() -> merge.MergeStats:
        with span("ingest.merge catalog", {SHOP_ID: str(run.shop_id)}) as merge_span:
            await merge.prepare(catalog)
            merged = await merge.merge_catalog(
                catalog,
                run.shop_id,
                run.id,
                metafields_complete=(
                    results[Phase.METAFIELDS].complete
                    and results[Phase.VARIANT_METAFIELDS].complete
                ),
                kept_patterns=kept,
                on_batch=on_batch,
                batch_pages=deps.merge_batch_pages,
            )
            merge_span.set_attribute("neanelu.rows", merged.products + merged.variants)
            return merged

    catalog_merge = asyncio.create_task(merge_catalog())
    try:
        await _stage_and_record(
            deps, inventory, run, Phase.INVENTORY, results[Phase.INVENTORY], reporter, summary
        )
        with span("ingest.merge inventory", {SHOP_ID: str(run.shop_id)}) as levels_span:
            summary.inventory_levels, levels_new = await merge.merge_inventory(
                inventory, run.shop_id, on_batch, deps.merge_batch_pages
            )
            levels_span.set_attribute("neanelu.rows", summary.inventory_levels)
    except BaseException:
        # A failure on the inventory side stops the catalog merge rather than leaving it running.
        catalog_merge.cancel()
        await asyncio.gather(catalog_merge, return_exceptions=True)
        raise
    merged = await catalog_merge
    summary.products, summary.variants = merged.products, merged.variants
    summary.orphans = merged.orphans
    if summary.complete and run.kind == "full" and run.started_at is not None:
        # A table that held none of the shop's rows before this sync has nothing to miss.
        if not merged.first_load:
            summary.marked_deleted = await merge.mark_deleted(catalog, run.shop_id, _started(run))
        if not levels_new:
            await merge.delete_missing_levels(inventory, run.shop_id, _started(run))
    summary.merged_at = time.perf_counter()
    if merged.products + merged.variants + summary.inventory_levels >= merge.ANALYZE_AFTER_ROWS:
        await merge.refresh_statistics(catalog, ("products", "variants", "inventory_levels"))
    summary.merge_seconds = time.perf_counter() - started
    merge_rows = summary.products + summary.variants + summary.inventory_levels
    _count_phase("merge", 0, merge_rows, 0, 0, summary.merge_seconds)
    merge_progress.done, merge_progress.seconds = True, summary.merge_seconds
    await reporter.update(merge_progress, force=True)
    summary.phases["merge"] = merge_progress
    async with tenant_scope(deps.pool, run.shop_id) as side:
        await runs.record_progress(
            side,
            run.id,
            "merge",
            {
                "products": summary.products,
                "variants": summary.variants,
                "inventory_levels": summary.inventory_levels,
                "orphans": summary.orphans,
                "marked_deleted": summary.marked_deleted,
                "complete": summary.complete,
                "unavailable_metafields": summary.unavailable_metafields,
                "merge_seconds": round(summary.merge_seconds, 3),
                "merge_rows": summary.products + summary.variants + summary.inventory_levels,
            },
            sum(p.bytes for p in summary.phases.values() if p.phase != "merge"),
            summary.bad_lines,
        )


async def _stage_and_record(
    deps: SyncDeps,
    conn: Conn,
    run: runs.SyncRun,
    phase: Phase,
    result: BulkResult,
    reporter: ProgressReporter,
    summary: SyncSummary,
    *,
    label: str | None = None,
    build: RowBuilder | None = None,
) -> None:
    name = label or phase.value
    stats = await _stage(deps, conn, run, phase, name, result, reporter, summary, build)
    summary.bad_lines += stats.bad_lines
    async with tenant_scope(deps.pool, run.shop_id) as side:
        await runs.record_progress(
            side,
            run.id,
            name,
            {
                f"{name}_lines": stats.lines,
                f"{name}_rows": stats.rows,
                f"{name}_bytes": stats.bytes,
                f"{name}_seconds": round(summary.phases[name].seconds, 3),
            },
            sum(p.bytes for p in summary.phases.values()),
            summary.bad_lines,
        )


def _started(run: runs.SyncRun) -> datetime:
    assert run.started_at is not None
    return run.started_at


async def _stage(
    deps: SyncDeps,
    conn: Conn,
    run: runs.SyncRun,
    phase: Phase,
    name: str,
    result: BulkResult,
    reporter: ProgressReporter,
    summary: SyncSummary,
    build: RowBuilder | None,
) -> PhaseStats:
    progress = PhaseProgress(
        name,
        expected_lines=result.operation.object_count,
        expected_bytes=result.operation.file_size,
    )
    summary.phases[name] = progress
    if result.url is None:
        progress.done = True
        await reporter.update(progress, force=True)
        return PhaseStats(phase)
    started = time.perf_counter()
    download = DownloadProgress()

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in stream_file(deps.http, result.url or "", progress=download):
            if summary.first_byte_at is None:
                summary.first_byte_at = time.perf_counter()
            yield chunk

    async def on_progress(stats: PhaseStats) -> None:
        progress.lines, progress.rows, progress.bad_lines = stats.lines, stats.rows, stats.bad_lines
        progress.bytes = download.bytes_read
        progress.seconds = time.perf_counter() - started
        await reporter.update(progress)

    quarantine = QuarantineSink(deps.pool, run.shop_id, run.id, name)
    # Download, decode, stitch and COPY are one stream (no step holds the file), so they share
    # one span per phase that carries each step's figures.
    with span(f"ingest.stage {name}", {SHOP_ID: str(run.shop_id)}) as stage_span:
        async with conn.transaction():
            stats = await stage_phase(
                conn,
                phase,
                chunks(),
                quarantine,
                max_bad_share=deps.max_bad_share,
                expected_lines=result.operation.object_count,
                on_progress=on_progress,
                build=build,
            )
        stage_span.set_attributes(
            {
                "neanelu.phase": name,
                "neanelu.bytes": download.bytes_read,
                "neanelu.lines": stats.lines,
                "neanelu.rows": stats.rows,
                "neanelu.bad_lines": stats.bad_lines,
            }
        )
    progress.lines, progress.rows, progress.bad_lines = stats.lines, stats.rows, stats.bad_lines
    progress.bytes, progress.done = download.bytes_read, True
    progress.seconds = time.perf_counter() - started
    _count_phase(
        name, stats.lines, stats.rows, download.bytes_read, stats.bad_lines, progress.seconds
    )
    summary.download_seconds += progress.seconds
    await reporter.update(progress, force=True)
    if result.complete and (stats.truncated or stats.lines < result.operation.object_count):
        # A file shorter than Shopify's count is damaged: the next attempt asks for a new one.
        async with tenant_scope(deps.pool, run.shop_id) as side:
            await runs.forget_operation(side, run.id, name)
        raise BulkOperationError(
            f"{name}: file held {stats.lines} lines"
            f"{' ending in a cut-off line' if stats.truncated else ''}, Shopify counted "
            f"{result.operation.object_count}",
            retryable=True,
        )
    return stats


def _count_phase(
    phase: str, lines: int, rows: int, nbytes: int, bad_lines: int, seconds: float
) -> None:
    m = current_metrics()
    m.ingest_lines.labels(phase).inc(lines)
    m.ingest_rows.labels(phase).inc(rows)
    m.ingest_bytes.labels(phase).inc(nbytes)
    m.ingest_bad_lines.labels(phase).inc(bad_lines)
    m.ingest_phase_seconds.labels(phase).observe(seconds)
    if seconds > 0:
        m.ingest_rows_per_second.labels(phase).set(rows / seconds)
