"""One attempt's ingest, as an object that owns its phases.

Metafields and core are staged split over two sessions (products, variants), then merged side by
side. The inventory has a session of its own (sync/inventory.py): a large file is decoded, staged
and merged by a child process from the start, on the second core; a small one here, while the
catalog merges. Then the sweeps (after a complete full sync), the variants' quantities, the
statistics and the run's record of the merge.

Each phase ends with one `PhaseFigures` (sync/figures.py) published once to the attempt's
observers: the live progress, the metrics, the run's record and summary (and the phase's span).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from neanelu.db.pool import Conn
from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import METAFIELD_FILES, metafields_builder
from neanelu.ingest.stage import PhaseStats
from neanelu.shopify.bulk import BulkResult
from neanelu.sync import repository as runs
from neanelu.sync.figures import PhaseFigures, PhaseObserver, ToMetrics, ToProgress, ToRun, publish
from neanelu.sync.inventory import (
    InventoryOutcome,
    InventoryPlan,
    inventory_in_child,
    parent_observers,
    run_inventory,
)
from neanelu.sync.owner_metafields import OwnerOutcome
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.sync.staging import Stager, SyncSummary
from neanelu.telemetry import span
from neanelu.telemetry.tracing import SHOP_ID

if TYPE_CHECKING:
    from neanelu.sync.service import SyncDeps

log = logging.getLogger(__name__)

# Ids of kept rows recorded on the run per table (the quarantine holds every line).
KEPT_IDS = 100


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


@dataclass(slots=True)
class _MergeProgress:
    """Live progress of the merges (catalog and inventory, whichever process runs it)."""

    reporter: ProgressReporter
    progress: PhaseProgress = field(default_factory=lambda: PhaseProgress("merge"))
    rows: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    async def on_batch(self, table: str, merged: int) -> None:
        self.rows[table] = merged
        self.progress.rows = sum(self.rows.values())
        self.progress.seconds = time.perf_counter() - self.started
        await self.reporter.update(self.progress)


@dataclass(slots=True)
class SyncAttempt:
    """The ingest of one attempt of a run whose bulk operations are done (`results`, and the
    owner apps' `owners`); its figures end up in `summary`."""

    deps: SyncDeps
    run: runs.SyncRun
    results: dict[Phase, BulkResult]
    owners: list[OwnerOutcome]
    reporter: ProgressReporter
    summary: SyncSummary
    observers: tuple[PhaseObserver, ...] = ()

    def __post_init__(self) -> None:
        if not self.observers:
            self.observers = (
                ToProgress(self.reporter),
                ToMetrics(),
                ToRun(self.deps.pool, self.run.shop_id, self.run.id, self.summary),
            )

    @property
    def complete_full(self) -> bool:
        """A complete full sync: what the files do not hold may be swept."""
        run = self.run
        return self.summary.complete and run.kind == "full" and run.started_at is not None

    @property
    def started_at(self) -> datetime:
        assert self.run.started_at is not None
        return self.run.started_at

    async def ingest(self, sessions: tuple[Conn, Conn]) -> None:
        """Stage and merge every file on `sessions` (catalog, variants; autocommit)."""
        for conn in sessions:
            await conn.execute(load_sql("ingest/staging.sql"))
        merges = _MergeProgress(self.reporter)
        inventory = self._inventory_in_child(merges)
        catalog_merge: asyncio.Task[merge.MergeStats] | None = None
        try:
            staged = await self._stage_catalog(sessions)
            merges.started = time.perf_counter()
            catalog_merge = asyncio.create_task(self._merge_catalog(sessions, staged, merges))
            if inventory is None:
                # A small inventory file: staged here while PostgreSQL merges the catalog.
                inventory = asyncio.create_task(
                    run_inventory(
                        self.deps.staging,
                        self._inventory_plan(),
                        self.reporter,
                        merges.on_batch,
                        parent_observers(self.reporter),
                    )
                )
            catalog_stats, levels = await asyncio.gather(catalog_merge, inventory)
        except BaseException:
            # A failure on either side stops the other rather than leaving it writing.
            running = [t for t in (catalog_merge, inventory) if t is not None]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        self._absorb(levels, catalog_stats)
        await self._sweep(sessions, staged, catalog_stats)
        await self._settle(sessions)
        await publish(self._merge_figures(merges.started), self.observers)

    def _inventory_plan(self) -> InventoryPlan:
        return InventoryPlan(
            self.run,
            self.results[Phase.INVENTORY],
            sweep_before=self.started_at if self.complete_full else None,
            max_bad_share=self.deps.max_bad_share,
            batch_pages=self.deps.merge_batch_pages,
        )

    def _inventory_in_child(self, merges: _MergeProgress) -> asyncio.Task[InventoryOutcome] | None:
        """A large inventory file goes to a child process from the start (None: it stays)."""
        child_from, conninfo = self.deps.inventory_child_bytes, self.deps.pool.conninfo
        if (
            child_from is None
            or self.results[Phase.INVENTORY].operation.file_size < child_from
            or not isinstance(conninfo, str)  # a pool that computes its connection string
        ):
            return None
        return asyncio.create_task(
            inventory_in_child(conninfo, self._inventory_plan(), self.reporter, merges.on_batch)
        )

    async def _stage_catalog(self, sessions: tuple[Conn, Conn]) -> CatalogStaged:
        """Metafields first (ours, then each owner app's own namespaces), then the core file;
        rows of products go to the first session, those of variants to the second."""
        catalog, variants = sessions
        stager = Stager(self.deps.staging, self.run, self.reporter, self.summary, self.observers)
        staged = CatalogStaged()
        for phase in (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS):
            stats = await stager.stage(catalog, phase, self.results[phase], variants_to=variants)
            staged.absorb(phase, stats)
        for outcome in self.owners:
            # Only the owner's own namespaces: the rest of what its token sees came with ours.
            for phase, result in outcome.results.items():
                label = outcome.app.operation_key(phase)
                stats = await stager.stage(
                    catalog,
                    phase,
                    result,
                    label=label,
                    build=metafields_builder(outcome.app.owns, source=len(staged.files)),
                    variants_to=variants,
                )
                staged.files.append(label)
                staged.absorb(phase, stats)
        core = self.results[Phase.CORE]
        stats = await stager.stage(catalog, Phase.CORE, core, variants_to=variants)
        staged.absorb(Phase.CORE, stats)
        return staged

    async def _merge_catalog(
        self, sessions: tuple[Conn, Conn], staged: CatalogStaged, merges: _MergeProgress
    ) -> merge.MergeStats:
        results = self.results
        plan = merge.CatalogMerge(
            metafields_complete=(
                results[Phase.METAFIELDS].complete and results[Phase.VARIANT_METAFIELDS].complete
            ),
            partial_metafields=staged.partial,
            metafield_files=staged.files,
            # Owner apps not read in full keep what is stored of their metafields.
            kept_patterns=[
                p for o in self.owners if o.unavailable is not None for p in o.app.patterns()
            ],
            batch_pages=self.deps.merge_batch_pages,
        )
        shop_id = self.run.shop_id
        with span("ingest.merge catalog", {SHOP_ID: str(shop_id)}) as merge_span:
            merged = await merge.merge_catalog(
                sessions[0],
                shop_id,
                self.run.id,
                plan,
                on_batch=merges.on_batch,
                variants_conn=sessions[1],
            )
            merge_span.set_attribute("neanelu.rows", merged.products + merged.variants)
            return merged

    def _absorb(self, levels: InventoryOutcome, catalog: merge.MergeStats) -> None:
        """The merges' figures, the inventory's whichever process ran it."""
        summary = self.summary
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
        summary.products, summary.variants = catalog.products, catalog.variants
        summary.orphans = catalog.orphans
        summary.orphan_metafields = catalog.orphan_metafields

    async def _sweep(
        self, sessions: tuple[Conn, Conn], staged: CatalogStaged, catalog: merge.MergeStats
    ) -> None:
        """Rows the files no longer hold, deleted (a complete full sync), and those quarantined
        lines keep as stored."""
        (products, variants), summary, shop_id = sessions, self.summary, self.run.shop_id
        # A table that held none of the shop's rows before this sync has nothing to miss.
        if self.complete_full and not catalog.first_load:
            if staged.core_unidentified:
                # A bad core line named no id: nothing proves any missing row gone.
                summary.unswept += ["products", "variants"]
            else:
                summary.marked_deleted = await merge.mark_deleted(
                    products, shop_id, self.started_at, variants
                )
        if staged.protected:
            kept_rows = await merge.kept_catalog(products, shop_id, self.started_at, variants)
            summary.kept.update(kept_rows.rows)
        summary.unswept += [
            f"{'product' if k == 'P' else 'variant'}_metafields" for k in staged.partial
        ]
        self._report_kept()

    async def _settle(self, sessions: tuple[Conn, Conn]) -> None:
        (products, variants), summary = sessions, self.summary
        # Levels were analyzed as their merge ended (run_inventory); products and variants now,
        # side by side (during the merges it would only slow them down), and before the settle,
        # which joins variants to levels and otherwise plans on an empty-table picture.
        await asyncio.gather(
            *(
                merge.refresh_statistics(session, (table,))
                for session, table, rows in (
                    (products, "products", summary.products),
                    (variants, "variants", summary.variants),
                )
                if rows >= merge.ANALYZE_AFTER_ROWS
            )
        )
        if summary.complete:
            # Needs both the variants and the levels merged: a stock change during the sync is
            # in the levels, not in the file's variant quantities.
            await merge.settle_variant_quantities(sessions, self.run.shop_id)
        summary.merged_at = time.perf_counter()

    def _merge_figures(self, started: float) -> PhaseFigures:
        summary = self.summary
        summary.merge_seconds = time.perf_counter() - started
        rows = summary.products + summary.variants + summary.inventory_levels
        record = {
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
            "merge_rows": rows,
        }
        return PhaseFigures("merge", rows=rows, seconds=summary.merge_seconds, record=record)

    def _report_kept(self) -> None:
        summary, run = self.summary, self.run
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
