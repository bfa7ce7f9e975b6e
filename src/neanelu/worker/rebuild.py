"""After Redis is lost, what the queue held is rebuilt from PostgreSQL.

Redis keeps the queue; PostgreSQL keeps what the queue is for. A job is an outbox row until the
relay pushes it, and then lives only in Redis. An empty Redis (a lost volume, a failover to a
blank replica) therefore drops every pushed job: deliveries recorded in the inbox but never
applied, sync runs queued or running with no job behind them, the periodic ticks. A marker key,
written when a Redis is first seen, tells a restarted Redis (AOF replayed: marker there) from an
empty one (marker gone). Whichever worker finds it gone writes it back and re-queues, through the
outbox, a job for every unapplied delivery, a job resuming every unfinished sync run and the next
periodic ticks. All of it is idempotent: deliveries apply once (inbox row lock and processed_at),
a run is resumed by its id, ticks have one job id per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.db.rows import fetch_all, fetch_scalars
from neanelu.handles import DeliveryBatch, FullSyncJob, full_sync, process_deliveries
from neanelu.queue.settings import QueueSettings
from neanelu.shops.tasks import schedule_reconciliation
from neanelu.shops.token_sweep import schedule_token_sweep

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 5.0
BATCH = 100


def marker_key(prefix: str) -> str:
    return f"{prefix}:books-since"


@dataclass(frozen=True, slots=True)
class Rebuilt:
    deliveries: int = 0
    runs: int = 0


@dataclass(frozen=True, slots=True)
class _UnfinishedRun:
    id: UUID
    updated_since: datetime | None


async def rebuild(pool: AsyncConnectionPool[Conn], *, epoch: str, sync_delay_s: float) -> Rebuilt:
    """Queue again, through the outbox, everything PostgreSQL says is unfinished. `epoch` makes
    the job ids this rebuild's own (the lost jobs' tombstones went with Redis). Sync runs wait
    `sync_delay_s`: a worker still running one learns from its lease renewal that the job is gone
    and cancels it, so the resumed attempt does not run beside it."""
    async with global_scope(pool) as conn:
        await schedule_reconciliation(conn)
        await schedule_token_sweep(conn)
        shops = await fetch_scalars(
            conn, UUID, "SELECT id FROM shops WHERE status <> 'uninstalled'"
        )
    deliveries = runs = 0
    for shop_id in shops:
        async with tenant_scope(pool, shop_id) as conn:
            ids = await fetch_scalars(
                conn, int, "SELECT id FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id"
            )
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                await process_deliveries.enqueue_in_tx(
                    conn,
                    DeliveryBatch(shop_id=str(shop_id), inbox_ids=batch),
                    group=shop_id,
                    job_id=f"webhook-{shop_id}-{batch[0]}-rebuilt-{epoch}",
                )
            deliveries += len(ids)
            unfinished = await fetch_all(
                conn,
                _UnfinishedRun,
                "SELECT id, updated_since FROM sync_runs WHERE status IN ('queued', 'running')",
            )
            for run in unfinished:
                run_id, since = run.id, run.updated_since
                await full_sync.enqueue_in_tx(
                    conn,
                    FullSyncJob(
                        shop_id=str(shop_id),
                        reason="resumed after the queue was lost",
                        updated_since=since.isoformat() if since is not None else None,
                        run_id=str(run_id),
                    ),
                    group=shop_id,
                    job_id=f"sync-{shop_id}-{run_id}-rebuilt-{epoch}",
                    delay_s=sync_delay_s,
                )
                runs += 1
    return Rebuilt(deliveries, runs)


async def check_books(
    redis: Redis, pool: AsyncConnectionPool[Conn], prefix: str, sync_delay_s: float
) -> Rebuilt | None:
    """Rebuild when this Redis has no marker (an empty Redis, or the first start); None when
    the marker was there. The marker is written first, so one worker rebuilds, not all."""
    epoch = str(int(time.time() * 1000))
    if not await redis.set(marker_key(prefix), epoch, nx=True):
        return None
    try:
        done = await rebuild(pool, epoch=epoch, sync_delay_s=sync_delay_s)
    except BaseException:
        # Rebuild again on the next check rather than never.
        with contextlib.suppress(RedisError):
            await redis.delete(marker_key(prefix))
        raise
    if done.deliveries or done.runs:
        log.warning(
            "the queue's Redis held no books: %d unapplied deliveries and %d unfinished sync"
            " runs queued again from PostgreSQL",
            done.deliveries,
            done.runs,
        )
    return done


def resume_delay_s(bulk: QueueSettings) -> float:
    """Long enough for a worker still running a lost sync job to find out at its next lease
    renewal (a third of the lease) and cancel it, with a margin."""
    return bulk.lease_ms / 1000 / 3 + 15


async def watch_books(
    redis: Redis,
    pool: AsyncConnectionPool[Conn],
    prefix: str,
    stop: asyncio.Event,
    *,
    sync_delay_s: float,
    interval_s: float = CHECK_INTERVAL_S,
) -> None:
    """Check the marker every `interval_s` until `stop`; Redis or PostgreSQL down is waited out."""
    while not stop.is_set():
        try:
            await check_books(redis, pool, prefix, sync_delay_s)
        except Exception as exc:  # either server restarting: the next check tries again
            log.info("queue books not checked (%s); next try in %.0f s", exc, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
