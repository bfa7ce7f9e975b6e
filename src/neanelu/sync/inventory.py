"""The inventory phase: its file staged and merged on a session of its own, then the levels
Shopify no longer has swept away (after a complete full sync).

Decoding is Python work and this process decodes one file at a time, so a large inventory file
goes to a child process: its decoding then uses the second core while this process decodes the
catalog, and its merge starts as soon as its own file is staged. The child reports progress,
merge batches and the outcome over a pipe; it dies with its parent (a SIGKILLed worker leaves no
orphan writing behind it), and everything it writes is idempotent, so a resumed run redoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge, stage
from neanelu.ingest.queries import Phase
from neanelu.shopify.bulk import BulkResult
from neanelu.shopify.errors import BulkOperationError
from neanelu.sync import repository as runs
from neanelu.sync.figures import PhaseObserver, ToMetrics, ToProgress, ToRun, publish
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.sync.staging import StageDeps, Stager, SyncSummary
from neanelu.telemetry import span
from neanelu.telemetry.tracing import SHOP_ID

BatchCallback = Callable[[str, int], Awaitable[None]]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InventoryPlan:
    """Everything the phase needs; crosses to the child process (no secrets but the pipe's)."""

    run: runs.SyncRun
    result: BulkResult
    # Delete levels missing from the file written before this time (a complete full sync).
    sweep_before: datetime | None
    max_bad_share: float
    batch_pages: int


@dataclass(slots=True)
class InventoryOutcome:
    progress: PhaseProgress
    levels: int = 0
    bad_lines: int = 0
    first_byte_at: float | None = None
    download_seconds: float = 0.0
    # Stored levels quarantined lines name, kept as stored (their Shopify ids), and whether the
    # sweep was skipped because a quarantined line named no level or item.
    kept: list[int] = field(default_factory=list)
    unswept: bool = False


# Where the inventory's figures go besides the run's record, in the process that merges the
# catalog: the reporter and the metrics (a child's are lost when it exits).
def parent_observers(reporter: ProgressReporter) -> tuple[PhaseObserver, ...]:
    return (ToProgress(reporter), ToMetrics())


async def run_inventory(
    deps: StageDeps,
    plan: InventoryPlan,
    reporter: ProgressReporter,
    on_batch: BatchCallback,
    observers: Sequence[PhaseObserver],
) -> InventoryOutcome:
    """The whole phase on a session of this process's pool; the staged file's figures go to the
    run's record and to `observers`."""
    run = plan.run
    summary = SyncSummary(run.id, "running")
    stager = Stager(
        deps, run, reporter, summary, (ToRun(deps.pool, run.shop_id, run.id, summary), *observers)
    )
    kept: list[int] = []
    unswept = False
    async with deps.pool.connection() as conn:
        await conn.set_autocommit(True)
        await stage.make_room(conn)
        try:
            await conn.execute(load_sql("ingest/staging_inventory.sql"))
            stats = await stager.stage(conn, Phase.INVENTORY, plan.result)
            with span("ingest.merge inventory", {SHOP_ID: str(run.shop_id)}) as levels_span:
                levels, first_load = await merge.merge_inventory(
                    conn, run.shop_id, on_batch, plan.batch_pages
                )
                levels_span.set_attribute("neanelu.rows", levels)
            # A table that held none of the shop's levels before this sync has nothing to miss,
            # and a quarantined line naming no level leaves nothing proven missing.
            if plan.sweep_before is not None and not first_load:
                unswept = stats.unidentified > 0
                if not unswept:
                    await merge.delete_missing_levels(conn, run.shop_id, plan.sweep_before)
            if stats.protected and run.started_at is not None:
                kept = await merge.kept_levels(conn, run.shop_id, run.started_at)
            if levels >= merge.ANALYZE_AFTER_ROWS:
                await merge.refresh_statistics(conn, ("inventory_levels",))
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {merge.INVENTORY_STAGING}")
            await conn.set_autocommit(False)
    return InventoryOutcome(
        summary.phases[Phase.INVENTORY.value],
        levels,
        summary.bad_lines,
        summary.first_byte_at,
        summary.download_seconds,
        kept,
        unswept,
    )


async def inventory_in_child(
    conninfo: str,
    plan: InventoryPlan,
    reporter: ProgressReporter,
    on_batch: BatchCallback,
) -> InventoryOutcome:
    """The phase in a child process; its messages drive this process's reporter and callbacks."""
    ours, theirs = multiprocessing.Pipe()
    # Its own small entry point, not multiprocessing's spawn (which imports the parent's main
    # module again: a worker's whole CLI, tens of MB resident for nothing).
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "neanelu.sync.inventory_child",
        str(theirs.fileno()),
        pass_fds=(theirs.fileno(),),
        stdin=asyncio.subprocess.DEVNULL,
    )
    theirs.close()
    # The connection string may hold a password: it goes over the pipe, never into argv. The
    # URL renewer asks Shopify with this process's client: the child asks it over the pipe.
    renew = plan.result.renew
    ours.send((conninfo, replace(plan, result=replace(plan.result, renew=None)), renew is not None))
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(ours.recv())
        except (EOFError, OSError):
            loop.remove_reader(ours.fileno())
            inbox.put_nowait(("exited",))

    loop.add_reader(ours.fileno(), readable)
    try:
        while True:
            message = await inbox.get()
            if message[0] == "progress":
                await reporter.update(message[1])
            elif message[0] == "phase":
                await publish(message[1], parent_observers(reporter))
            elif message[0] == "merged":
                await on_batch(message[1], message[2])
            elif message[0] == "renew":
                ours.send(("url", await _renewed(renew)))
            elif message[0] == "done":
                outcome: InventoryOutcome = message[1]
                return outcome
            elif message[0] == "error":
                raise _rebuilt(message[1], message[2], message[3])
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.wait(), 1)
                raise RuntimeError(f"inventory process exited (code {child.returncode})")
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(ours.fileno())
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()  # cancelled, or failed on this side: the child must not write on
        with contextlib.suppress(TimeoutError):
            # Shielded: a cancelled sync still reaps its child.
            await asyncio.shield(asyncio.wait_for(child.wait(), 10))
        ours.close()


async def _renewed(renew: Callable[[], Awaitable[str | None]] | None) -> str | None:
    """A fresh URL for the child; None (the child's attempt then fails, to be retried) when
    Shopify cannot give one now."""
    if renew is None:
        return None
    try:
        return await renew()
    except Exception as exc:
        log.warning("inventory: no fresh result URL (%s)", type(exc).__name__)
        return None


def _rebuilt(kind: str, message: str, retryable: bool) -> BaseException:
    if kind == "too_many_bad_lines":
        return stage.TooManyBadLines(message)
    if kind == "bulk":
        return BulkOperationError(message, retryable=retryable)
    if kind == "shop_gone":
        return merge.ShopGone(message)
    return RuntimeError(f"inventory process failed: {message}")
