"""The life of one attempt of a sync run: who holds it, its heartbeat, and how it ended.

The holder renews the attempt's lease while it runs, so `neanelu sync status` can tell a live
attempt from one whose worker was killed; whatever ends an attempt (a retryable Shopify error, a
bug, a cancel) is written on it before the job hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

from psycopg_pool import AsyncConnectionPool

from neanelu.cancellation import raise_if_cancelling
from neanelu.db.pool import Conn, tenant_scope
from neanelu.shopify.errors import Throttled
from neanelu.sync import repository as runs
from neanelu.telemetry.redact import scrub

log = logging.getLogger(__name__)

# An attempt's lease lasts this many heartbeats: one late renewal is not a dead holder.
LEASE_HEARTBEATS = 3
ERROR_MAX_CHARS = 2000


def this_process() -> str:
    """The holder name of attempts run outside a worker (the CLI): host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def describe(exc: BaseException) -> str:
    """An exception as an attempt's error: its type and message, with secrets scrubbed (a signed
    URL or a token may sit in a library's message)."""
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted: the attempt was cancelled (worker shutdown or lost queue lease)"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return scrub(text)[:ERROR_MAX_CHARS]


@contextlib.asynccontextmanager
async def heartbeat(
    pool: AsyncConnectionPool[Conn], run: runs.SyncRun, attempt: int, every_s: float
) -> AsyncIterator[None]:
    """Renews the attempt's lease while it runs, so `sync status` can tell a live attempt from
    one whose holder was killed. A missed renewal is logged, never fatal to the attempt."""

    async def renew() -> None:
        while True:
            # A cancel a round swallowed (Python 3.11): the attempt's end awaits this loop.
            raise_if_cancelling()
            await asyncio.sleep(every_s)
            try:
                async with tenant_scope(pool, run.shop_id) as conn:
                    held = await runs.renew_attempt(
                        conn, run.id, attempt, every_s * LEASE_HEARTBEATS
                    )
            except Exception as exc:
                log.warning("sync %s attempt %d: heartbeat not written: %s", run.id, attempt, exc)
                continue
            if not held:
                log.warning(
                    "sync %s attempt %d was closed by another holder while it ran", run.id, attempt
                )

    task = asyncio.create_task(renew(), name=f"sync-heartbeat:{run.id}")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def record_end(
    pool: AsyncConnectionPool[Conn], run: runs.SyncRun, attempt: int, exc: BaseException
) -> None:
    """How an attempt that raised ended, on its row and as the run's last error."""
    if isinstance(exc, asyncio.CancelledError):
        outcome = "interrupted"
    elif isinstance(exc, Throttled):
        outcome = "deferred"
    else:
        outcome = "error"

    async def write() -> None:
        async with tenant_scope(pool, run.shop_id) as conn:
            await runs.end_attempt(conn, run.id, attempt, outcome, describe(exc))

    try:
        # Shielded: a cancelled attempt still says so (the write is short).
        await asyncio.shield(write())
    except (Exception, asyncio.CancelledError) as record_exc:
        # The database may be what failed; the next attempt then closes this one as abandoned.
        log.warning(
            "sync %s attempt %d: its end (%s) not recorded: %s",
            run.id,
            attempt,
            outcome,
            record_exc,
        )
