"""The console's time series, sampled by every `neanelu serve` whether or not an operator looks:
the queues' running totals and each installed shop's cost budget. A chart opened after a busy
night shows the night, not only the minutes since the page was opened."""

from __future__ import annotations

import asyncio
import logging

import psycopg
from redis.exceptions import RedisError

from neanelu.cancellation import raise_if_cancelling
from neanelu.db.pool import global_scope
from neanelu.queue.ratelimit import CostLimiter
from neanelu.runtime import Runtime
from neanelu.shops import repository as shops
from neanelu.web.console import queues, timeseries

log = logging.getLogger(__name__)

# A shop page samples its budget every 2 s while open; in the background every 10 s is enough
# for an hour's chart, and 200 shops cost 20 Redis reads a second per API process.
BUDGET_EVERY_S = 10.0
BUDGET_KEPT = 900


def budget_key(prefix: str, shop_id: object) -> str:
    return f"{prefix}:console:budget:{shop_id}"


async def sample_once(rt: Runtime) -> int:
    """One round: the queue totals, then the budget of every shop that has synced. Returns how
    many shops' budgets were read."""
    await queues.throughput(rt.queues, await queues.counts(rt.queues))
    async with global_scope(rt.pool) as conn:
        synced = [shop_id for shop_id, last in await shops.last_synced(conn) if last is not None]
    limiter = CostLimiter(rt.redis)
    for shop_id in synced:
        state = await limiter.state(str(shop_id))
        await timeseries.record(
            rt.redis,
            budget_key(rt.queues.prefix, shop_id),
            {"used": state.used, "capacity": state.capacity},
            every_s=BUDGET_EVERY_S,
            keep=BUDGET_KEPT,
        )
    return len(synced)


async def sample_forever(rt: Runtime, every_s: float = queues.SAMPLE_EVERY_S) -> None:
    """Until cancelled (the app's shutdown). A Redis or PostgreSQL outage costs the charts a gap,
    never the process: the next round tries again."""
    while True:
        try:
            await sample_once(rt)
        except (RedisError, psycopg.Error, OSError) as exc:
            log.warning("console sampling skipped a round: %s", type(exc).__name__)
        # A cancel a round swallowed (Python 3.11): the API's shutdown awaits this loop.
        raise_if_cancelling()
        await asyncio.sleep(every_s)
