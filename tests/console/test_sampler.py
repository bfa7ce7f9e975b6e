"""The console's charts are sampled in the background, not only while a page is open."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest

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
    # Ended before the runtime's teardown closes the clients it uses (asyncio.wait neither raises
    # the task's CancelledError nor absorbs one meant for this test).
    await asyncio.wait([task], timeout=10)
    assert task.cancelled()


async def test_sampling_stops_when_a_round_swallowed_its_cancellation(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.11, asyncio.wait_for under a client's call returns normally when what it awaits
    finishes as its task is cancelled (cpython#86296): the round ends as if nothing happened. The
    loop must stop all the same, or the API's shutdown, which awaits it, hangs (as this file's other
    test hung a CI run to its limit)."""
    rounds = 0

    async def round_that_swallows(rt: Runtime) -> int:
        nonlocal rounds
        rounds += 1
        # What 3.11's wait_for does in that race: the cancellation is lost here.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        return 0

    monkeypatch.setattr(sampler, "sample_once", round_that_swallows)
    task = asyncio.create_task(sampler.sample_forever(runtime, every_s=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait([task], timeout=10)
    assert task.cancelled()
    assert rounds == 1
