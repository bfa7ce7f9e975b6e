"""The inventory's child process (sync/inventory.py): `python -m neanelu.sync.inventory_child FD`,
FD being its end of the pipe to the parent. It imports only what the phase needs: the parent's
main module (a worker's CLI, the web app) is never loaded here.

It reads the connection string and the plan from the pipe, runs the phase, and sends progress,
merge batches, the staged file's figures and the outcome (or the error) back.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

# httpx imports its command-line client whenever click and rich are installed (the neanelu CLI's
# own dependencies): about 6 MB resident this process never uses. A None entry in sys.modules
# makes that one import fail, and httpx then defines a stub `main` instead.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx

from neanelu.db.pool import PoolSizes, create_pool
from neanelu.ingest import merge, stage
from neanelu.shopify.errors import BulkOperationError
from neanelu.sync.figures import PhaseFigures
from neanelu.sync.inventory import InventoryPlan, run_inventory
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.sync.staging import StageDeps


@dataclass(frozen=True, slots=True)
class ToParent:
    """The child's figures, published again by the parent (to its reporter and metrics)."""

    pipe: Connection

    async def phase_done(self, figures: PhaseFigures) -> None:
        self.pipe.send(("phase", figures))


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this process when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)


def main(fd: int) -> None:
    pipe = Connection(fd)
    _die_with_parent()
    parent = os.getppid()
    conninfo, plan, renewable = pipe.recv()
    try:
        outcome = asyncio.run(_child(conninfo, plan, renewable, pipe, parent))
    except stage.TooManyBadLines as exc:
        pipe.send(("error", "too_many_bad_lines", str(exc), False))
    except BulkOperationError as exc:
        pipe.send(("error", "bulk", str(exc), exc.retryable))
    except merge.ShopGone as exc:
        pipe.send(("error", "shop_gone", str(exc), False))
    except Exception as exc:  # anything else: the parent's job retries the run
        pipe.send(("error", "other", f"{type(exc).__name__}: {exc}", True))
    else:
        pipe.send(("done", outcome))
    finally:
        pipe.close()


async def _child(
    conninfo: str, plan: InventoryPlan, renewable: bool, pipe: Connection, parent: int
) -> Any:
    if os.getppid() != parent:
        raise RuntimeError("parent exited before the inventory phase began")

    async def ask_parent() -> str | None:
        pipe.send(("renew",))
        reply = await asyncio.to_thread(pipe.recv)
        return reply[1] if isinstance(reply, tuple) and reply[0] == "url" else None

    if renewable:
        plan = replace(plan, result=replace(plan.result, renew=ask_parent))

    async def forward(progress: PhaseProgress) -> None:
        pipe.send(("progress", progress))

    async def merged(table: str, rows: int) -> None:
        pipe.send(("merged", table, rows))

    pool = create_pool(conninfo, PoolSizes(1, 3), name="neanelu-inventory")
    await pool.open(wait=True)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
            deps = StageDeps(pool, http, plan.max_bad_share)
            reporter = ProgressReporter(None, plan.run.shop_id, plan.run.id, forward)
            return await run_inventory(deps, plan, reporter, merged, (ToParent(pipe),))
    finally:
        await pool.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
