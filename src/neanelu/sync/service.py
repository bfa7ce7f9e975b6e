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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.sql_files import load_sql
from neanelu.handles import queue_shop_embedding
from neanelu.ingest import merge, stage
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import METAFIELD_FILES, metafields_builder
from neanelu.ingest.stage import PhaseStats, TooManyBadLines
from neanelu.shopify.bulk import DEFAULT_POLLING, BulkPolling, BulkResult
from neanelu.shopify.errors import AccessDenied, BulkOperationError, InvalidToken
from neanelu.shopify.graphql import AdminClient
from neanelu.sync import repository as runs
from neanelu.sync.attempts import LEASE_HEARTBEATS, describe, heartbeat, record_end, this_process
from neanelu.sync.inventory import (
    InventoryOutcome,
    InventoryPlan,
    inventory_in_child,
    run_inventory,
)
from neanelu.sync.operations import RecordOperation, run_operations
from neanelu.sync.owner_apps import OwnerAppSource, OwnerOutcome, owner_results
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.sync.staging import StageDeps, count_phase, stage_and_record
from neanelu.sync.staging import SyncSummary as SyncSummary
from neanelu.telemetry import current_metrics, span
from neanelu.telemetry.tracing import SHOP_ID

log = logging.getLogger(__name__)

PHASES = (Phase.CORE, Phase.METAFIELDS, Phase.VARIANT_METAFIELDS, Phase.INVENTORY)
# Ids of kept rows recorded on the run per table (the quarantine holds every line).
KEPT_IDS = 100


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
            await _ingest(deps, sessions, run, results, outcomes, reporter, summary)
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


async def _ingest(
    deps: SyncDeps,
    sessions: tuple[Conn, Conn],
    run: runs.SyncRun,
    results: dict[Phase, BulkResult],
    outcomes: list[OwnerOutcome],
    reporter: ProgressReporter,
    summary: SyncSummary,
) -> None:
    """Stage metafields and core split over two sessions (products, variants), then merge both
    side by side. The inventory has a session of its own (sync/inventory.py): a large file is
    decoded, staged and merged by a child process from the start, on the second core; a small
    one here, while the catalog merges."""
    catalog, variants = sessions
    for conn in sessions:
        await conn.execute(load_sql("ingest/staging.sql"))
    merge_progress = PhaseProgress("merge")
    merged_rows: dict[str, int] = {}
    started = time.perf_counter()

    async def on_batch(table: str, merged: int) -> None:
        merged_rows[table] = merged
        merge_progress.rows = sum(merged_rows.values())
        merge_progress.seconds = time.perf_counter() - started
        await reporter.update(merge_progress)

    inventory_result = results[Phase.INVENTORY]
    complete_full = summary.complete and run.kind == "full" and run.started_at is not None
    plan = InventoryPlan(
        run,
        inventory_result,
        sweep_before=_started(run) if complete_full else None,
        max_bad_share=deps.max_bad_share,
        batch_pages=deps.merge_batch_pages,
    )
    inventory: asyncio.Task[InventoryOutcome] | None = None
    catalog_merge: asyncio.Task[merge.MergeStats] | None = None
    child_from, conninfo = deps.inventory_child_bytes, deps.pool.conninfo
    if (
        child_from is not None
        and inventory_result.operation.file_size >= child_from
        and isinstance(conninfo, str)  # a pool that computes its connection string stays here
    ):
        inventory = asyncio.create_task(inventory_in_child(conninfo, plan, reporter, on_batch))
    try:
        staged = await _stage_catalog(deps, sessions, run, results, outcomes, reporter, summary)
        started = time.perf_counter()
        # Owner apps not read in full keep what is stored of their metafields.
        kept = [p for o in outcomes if o.unavailable is not None for p in o.app.patterns()]
        metafields_complete = (
            results[Phase.METAFIELDS].complete and results[Phase.VARIANT_METAFIELDS].complete
        )
        catalog_merge = asyncio.create_task(
            _merge_catalog(deps, sessions, run, metafields_complete, kept, staged, on_batch)
        )
        if inventory is None:
            # A small inventory file: staged here while PostgreSQL merges the catalog.
            inventory = asyncio.create_task(run_inventory(deps.staging, plan, reporter, on_batch))
        catalog_stats, levels = await asyncio.gather(catalog_merge, inventory)
    except BaseException:
        # A failure on either side stops the other rather than leaving it writing.
        running = [t for t in (catalog_merge, inventory) if t is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    _absorb(summary, levels)
    summary.products, summary.variants = catalog_stats.products, catalog_stats.variants
    summary.orphans = catalog_stats.orphans
    summary.orphan_metafields = catalog_stats.orphan_metafields
    # A table that held none of the shop's rows before this sync has nothing to miss.
    if complete_full and not catalog_stats.first_load:
        if staged.core_unidentified:
            # A bad core line named no id: nothing proves any missing row gone.
            summary.unswept += ["products", "variants"]
        else:
            summary.marked_deleted = await merge.mark_deleted(
                catalog, run.shop_id, _started(run), variants
            )
    if staged.protected:
        kept_rows = await merge.kept_catalog(catalog, run.shop_id, _started(run), variants)
        summary.kept.update(kept_rows.rows)
    summary.unswept += [
        f"{'product' if k == 'P' else 'variant'}_metafields" for k in staged.partial
    ]
    _report_kept(run, summary)
    if summary.complete:
        # Needs both the variants and the levels merged: a stock change during the sync is in
        # the levels, not in the file's variant quantities.
        await merge.settle_variant_quantities(variants, run.shop_id)
    summary.merged_at = time.perf_counter()
    # Levels were analyzed as their merge ended (run_inventory); products and variants now, side
    # by side (during the merges it would only slow them down).
    await asyncio.gather(
        *(
            merge.refresh_statistics(session, (table,))
            for session, table, rows in (
                (catalog, "products", summary.products),
                (variants, "variants", summary.variants),
            )
            if rows >= merge.ANALYZE_AFTER_ROWS
        )
    )
    summary.merge_seconds = time.perf_counter() - started
    merge_rows = summary.products + summary.variants + summary.inventory_levels
    count_phase("merge", 0, merge_rows, 0, 0, summary.merge_seconds)
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
                "orphan_metafields": summary.orphan_metafields,
                "marked_deleted": summary.marked_deleted,
                # What quarantined lines kept from the sweeps: counts, and the first ids.
                "kept_as_stored": {t: len(ids) for t, ids in summary.kept.items()},
                "kept_as_stored_ids": {t: ids[:KEPT_IDS] for t, ids in summary.kept.items()},
                "unswept": summary.unswept,
                "complete": summary.complete,
                "unavailable_metafields": summary.unavailable_metafields,
                "merge_seconds": round(summary.merge_seconds, 3),
                "merge_rows": merge_rows,
            },
            sum(p.bytes for p in summary.phases.values() if p.phase != "merge"),
            summary.bad_lines,
        )


@dataclass(slots=True)
class CatalogStaged:
    """What staging the catalog files left for the merges: the metafield files' labels (by
    `source`), and what their quarantined lines keep from the sweeps (ingest/evidence.py)."""

    files: list[str] = field(default_factory=lambda: list(METAFIELD_FILES))
    # Ids named by bad lines were protected (some row may be kept as stored).
    protected: bool = False
    # A bad core line named nothing: no product or variant can be proven gone.
    core_unidentified: bool = False
    # Owner kinds ('P', 'V') whose metafield files had a bad line naming no owner.
    partial: set[str] = field(default_factory=set)

    def absorb(self, phase: Phase, stats: PhaseStats) -> None:
        self.protected = self.protected or stats.protected > 0
        if stats.unidentified:
            if phase is Phase.CORE:
                self.core_unidentified = True
            else:
                self.partial.add("P" if phase is Phase.METAFIELDS else "V")


async def _stage_catalog(
    deps: SyncDeps,
    sessions: tuple[Conn, Conn],
    run: runs.SyncRun,
    results: dict[Phase, BulkResult],
    outcomes: list[OwnerOutcome],
    reporter: ProgressReporter,
    summary: SyncSummary,
) -> CatalogStaged:
    """Metafields first (ours, then each owner app's own namespaces), then the core file; rows
    of products go to the first session, those of variants to the second."""
    staging, (catalog, variants) = deps.staging, sessions
    staged = CatalogStaged()
    for phase in (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS):
        stats = await stage_and_record(
            staging, catalog, run, phase, results[phase], reporter, summary, variants_to=variants
        )
        staged.absorb(phase, stats)
    for outcome in outcomes:
        # Only the owner's own namespaces: the rest of what its token sees came with ours.
        for phase, result in outcome.results.items():
            label = outcome.app.operation_key(phase)
            stats = await stage_and_record(
                staging,
                catalog,
                run,
                phase,
                result,
                reporter,
                summary,
                label=label,
                build=metafields_builder(outcome.app.owns, source=len(staged.files)),
                variants_to=variants,
            )
            staged.files.append(label)
            staged.absorb(phase, stats)
    core = results[Phase.CORE]
    stats = await stage_and_record(
        staging, catalog, run, Phase.CORE, core, reporter, summary, variants_to=variants
    )
    staged.absorb(Phase.CORE, stats)
    return staged


async def _merge_catalog(
    deps: SyncDeps,
    sessions: tuple[Conn, Conn],
    run: runs.SyncRun,
    metafields_complete: bool,
    kept: list[str],
    staged: CatalogStaged,
    on_batch: merge.BatchCallback,
) -> merge.MergeStats:
    with span("ingest.merge catalog", {SHOP_ID: str(run.shop_id)}) as merge_span:
        merged = await merge.merge_catalog(
            sessions[0],
            run.shop_id,
            run.id,
            metafields_complete=metafields_complete,
            partial_metafields=staged.partial,
            metafield_files=staged.files,
            kept_patterns=kept,
            on_batch=on_batch,
            batch_pages=deps.merge_batch_pages,
            variants_conn=sessions[1],
        )
        merge_span.set_attribute("neanelu.rows", merged.products + merged.variants)
        return merged


def _report_kept(run: runs.SyncRun, summary: SyncSummary) -> None:
    summary.kept = {table: ids for table, ids in summary.kept.items() if ids}
    if summary.kept:
        log.warning(
            "shop %s run %s: kept as stored, named by quarantined lines: %s",
            run.shop_id,
            run.id,
            ", ".join(f"{len(ids)} {table}" for table, ids in summary.kept.items()),
        )
    if summary.unswept:
        log.warning(
            "shop %s run %s: quarantined lines name no id; not swept in this run: %s",
            run.shop_id,
            run.id,
            ", ".join(summary.unswept),
        )


def _absorb(summary: SyncSummary, levels: InventoryOutcome) -> None:
    """The inventory phase's figures, whichever process ran it."""
    summary.phases[levels.progress.phase] = levels.progress
    summary.inventory_levels = levels.levels
    if levels.kept:
        summary.kept["inventory_levels"] = levels.kept
    if levels.unswept:
        summary.unswept.append("inventory_levels")
    summary.bad_lines += levels.bad_lines
    summary.download_seconds += levels.download_seconds
    if levels.first_byte_at is not None:
        # Both processes read CLOCK_MONOTONIC (perf_counter on Linux): comparable.
        summary.first_byte_at = min(
            summary.first_byte_at or levels.first_byte_at, levels.first_byte_at
        )


def _started(run: runs.SyncRun) -> datetime:
    assert run.started_at is not None
    return run.started_at
