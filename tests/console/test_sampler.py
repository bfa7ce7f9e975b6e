"""The console's charts are sampled in the background, not only while a page is open."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.web.console import sampler, timeseries
from tests.factories import create_shop


async def test_one_round_samples_the_queues_and_every_synced_shops_budget(runtime: Runtime) -> None:
    synced = await create_shop(runtime.pool)
    fresh = await create_shop(runtime.pool)  # never synced: nothing to chart yet
    async with tenant_scope(runtime.pool, synced) as conn:
        await conn.execute(
            "UPDATE shops SET last_full_sync_at = %s WHERE id = %s",
            (datetime(2026, 11, 30, tzinfo=UTC), synced),
        )
    assert await sampler.sample_once(runtime) == 1
    prefix = runtime.queues.prefix
    assert await runtime.redis.llen(f"{prefix}:console:queue-samples") == 1
    assert await runtime.redis.llen(sampler.budget_key(prefix, synced)) == 1
    assert await runtime.redis.llen(sampler.budget_key(prefix, fresh)) == 0
    # A second round within the interval adds nothing.
    await sampler.sample_once(runtime)
    assert await runtime.redis.llen(sampler.budget_key(prefix, synced)) == 1


async def test_two_processes_sampling_at_once_add_one_point(runtime: Runtime) -> None:
    key = f"{runtime.queues.prefix}:console:test-series"
    lists = await asyncio.gather(
        *(
            timeseries.record(runtime.redis, key, {"n": float(i)}, every_s=0, keep=10)
            for i in range(5)
        )
    )
    assert await runtime.redis.llen(key) == 1
    assert max(len(points) for points in lists) == 1


async def test_sampling_goes_on_after_a_failed_round(runtime: Runtime) -> None:
    await runtime.pool.close()  # every PostgreSQL read of the round now fails
    task = asyncio.create_task(sampler.sample_forever(runtime, every_s=0.01))
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()
    # Ended before the runtime's teardown closes the Redis client the task may be using: a task
    # cancelled but left running raced that teardown, and a CI run hung in it.
    with contextlib.suppress(asyncio.CancelledError):
        await task
