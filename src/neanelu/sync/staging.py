"""One bulk file into its staging table, recorded on the run: the step every phase shares, in
this process or in the inventory's child process (sync/inventory.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import RowBuilder
from neanelu.ingest.stage import PhaseStats, StageOptions, stage_phase
from neanelu.shopify.bulk import BulkResult
from neanelu.shopify.download import DownloadProgress, stream_file
from neanelu.shopify.errors import BulkOperationError
from neanelu.sync import repository as runs
from neanelu.sync.figures import PhaseFigures, PhaseObserver, ToSpan, publish
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.telemetry import span
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


@dataclass(frozen=True, slots=True)
class Stager:
    """Stages the files of one attempt, in this process or the inventory's child: each file
    streamed into its staging table, live progress on `reporter` while it runs, and its figures
    published once to `observers` (and to the phase's span) when it ends."""

    deps: StageDeps
    run: runs.SyncRun
    reporter: ProgressReporter
    summary: SyncSummary
    observers: Sequence[PhaseObserver]

    async def stage(
        self,
        conn: Conn,
        phase: Phase,
        result: BulkResult,
        *,
        label: str | None = None,
        build: RowBuilder | None = None,
        variants_to: Conn | None = None,
    ) -> PhaseStats:
        """Stage one file (catalog files split to `variants_to` when given)."""
        name = label or phase.value
        expected = result.operation
        if result.url is None:
            await publish(
                PhaseFigures(
                    name,
                    expected_lines=expected.object_count,
                    expected_bytes=expected.file_size,
                    read=False,
                ),
                self.observers,
            )
            return PhaseStats(phase)
        options = StageOptions(max_bad_share=self.deps.max_bad_share, build=build)
        options = replace(options, expected_lines=expected.object_count, variants_to=variants_to)
        # Download, decode, stitch and COPY are one stream (no step holds the file), so they share
        # one span per phase that carries each step's figures.
        with span(f"ingest.stage {name}", {SHOP_ID: str(self.run.shop_id)}) as stage_span:
            stats, figures = await self._stream(conn, phase, name, result, options)
            await publish(figures, (ToSpan(stage_span), *self.observers))
        await self._check_length(name, result, stats, figures.bytes)
        return stats

    async def _stream(
        self, conn: Conn, phase: Phase, name: str, result: BulkResult, options: StageOptions
    ) -> tuple[PhaseStats, PhaseFigures]:
        expected = result.operation
        progress = PhaseProgress(
            name, expected_lines=expected.object_count, expected_bytes=expected.file_size
        )
        started = time.perf_counter()
        download = DownloadProgress()
        summary, url = self.summary, result.url or ""

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in stream_file(
                self.deps.http, url, progress=download, renew=result.renew
            ):
                if summary.first_byte_at is None:
                    summary.first_byte_at = time.perf_counter()
                yield chunk

        async def on_progress(stats: PhaseStats) -> None:
            progress.lines, progress.rows = stats.lines, stats.rows
            progress.bad_lines, progress.bytes = stats.bad_lines, download.bytes_read
            progress.seconds = time.perf_counter() - started
            await self.reporter.update(progress)

        quarantine = QuarantineSink(self.deps.pool, self.run.shop_id, self.run.id, name)
        async with conn.transaction():
            stats = await stage_phase(
                conn, phase, chunks(), quarantine, replace(options, on_progress=on_progress)
            )
        figures = PhaseFigures(
            name,
            lines=stats.lines,
            rows=stats.rows,
            bytes=download.bytes_read,
            bad_lines=stats.bad_lines,
            seconds=time.perf_counter() - started,
            expected_lines=expected.object_count,
            expected_bytes=expected.file_size,
        )
        return stats, figures

    async def _check_length(
        self, name: str, result: BulkResult, stats: PhaseStats, bytes_read: int
    ) -> None:
        expected = result.operation
        short = stats.lines < expected.object_count or (
            stats.truncated and bytes_read < expected.file_size
        )
        if result.complete and short:
            # A file shorter than Shopify's count (of lines, or of bytes when it ends mid-line)
            # is damaged: the next attempt asks for a new one. A file of the promised size that
            # ends in a cut-off line is what Shopify wrote: that line is quarantined like any
            # bad one.
            async with tenant_scope(self.deps.pool, self.run.shop_id) as side:
                await runs.forget_operation(side, self.run.id, name)
            raise BulkOperationError(
                f"{name}: file held {stats.lines} lines"
                f"{' ending in a cut-off line' if stats.truncated else ''}, Shopify counted "
                f"{expected.object_count}",
                retryable=True,
            )
