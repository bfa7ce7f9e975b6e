"""One bulk file into its staging table, recorded on the run: the step every phase shares, in
this process or in the inventory's child process (sync/inventory.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import RowBuilder
from neanelu.ingest.stage import PhaseStats, stage_phase
from neanelu.shopify.bulk import BulkResult
from neanelu.shopify.download import DownloadProgress, stream_file
from neanelu.shopify.errors import BulkOperationError
from neanelu.sync import repository as runs
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.telemetry import current_metrics, span
from neanelu.telemetry.tracing import SHOP_ID


@dataclass(frozen=True, slots=True)
class StageDeps:
    """What staging needs: the pool (quarantine, run records), the HTTP client, the bad-line limit."""

    pool: AsyncConnectionPool[Conn]
    http: httpx.AsyncClient
    max_bad_share: float


@dataclass(slots=True)
class SyncSummary:
    run_id: UUID
    status: str
    phases: dict[str, PhaseProgress] = field(default_factory=dict)
    products: int = 0
    variants: int = 0
    inventory_levels: int = 0
    orphans: int = 0
    orphan_metafields: int = 0
    marked_deleted: int = 0
    bad_lines: int = 0
    # Stored rows missing from the files that quarantined lines name, kept as stored, by table
    # (products, variants, inventory_levels; product_ and variant_metafields: owners whose stored
    # metafields the file's were merged over): their Shopify ids.
    kept: dict[str, list[int]] = field(default_factory=dict)
    # Tables whose deletion sweep (or metafields replacement) was skipped for this run because a
    # quarantined line named no id: nothing proves what it held absent.
    unswept: list[str] = field(default_factory=list)
    complete: bool = True
    merge_seconds: float = 0.0
    download_seconds: float = 0.0
    first_byte_at: float | None = None
    # When the last write of the merges committed (before statistics are refreshed).
    merged_at: float | None = None
    # Owner apps' namespaces (`app--{id}`) not read in full, with the reason; what is stored of
    # them was kept.
    unavailable_metafields: dict[str, str] = field(default_factory=dict)


async def stage_and_record(
    deps: StageDeps,
    conn: Conn,
    run: runs.SyncRun,
    phase: Phase,
    result: BulkResult,
    reporter: ProgressReporter,
    summary: SyncSummary,
    *,
    label: str | None = None,
    build: RowBuilder | None = None,
    variants_to: Conn | None = None,
) -> PhaseStats:
    """Stage one file (catalog files split to `variants_to` when given) and record its figures."""
    name = label or phase.value
    stats = await _stage(
        deps, conn, run, phase, name, result, reporter, summary, build, variants_to
    )
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
    return stats


async def _stage(
    deps: StageDeps,
    conn: Conn,
    run: runs.SyncRun,
    phase: Phase,
    name: str,
    result: BulkResult,
    reporter: ProgressReporter,
    summary: SyncSummary,
    build: RowBuilder | None,
    variants_to: Conn | None,
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
        async for chunk in stream_file(
            deps.http, result.url or "", progress=download, renew=result.renew
        ):
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
                variants_to=variants_to,
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
    count_phase(
        name, stats.lines, stats.rows, download.bytes_read, stats.bad_lines, progress.seconds
    )
    summary.download_seconds += progress.seconds
    await reporter.update(progress, force=True)
    short = stats.lines < result.operation.object_count or (
        stats.truncated and download.bytes_read < result.operation.file_size
    )
    if result.complete and short:
        # A file shorter than Shopify's count (of lines, or of bytes when it ends mid-line) is
        # damaged: the next attempt asks for a new one. A file of the promised size that ends
        # in a cut-off line is what Shopify wrote: that line is quarantined like any bad one.
        async with tenant_scope(deps.pool, run.shop_id) as side:
            await runs.forget_operation(side, run.id, name)
        raise BulkOperationError(
            f"{name}: file held {stats.lines} lines"
            f"{' ending in a cut-off line' if stats.truncated else ''}, Shopify counted "
            f"{result.operation.object_count}",
            retryable=True,
        )
    return stats


def count_phase(
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
