"""The per-shop cost budget against Redis alone (the emulator tests are in test_throttle.py)."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from neanelu.queue.errors import Defer
from neanelu.queue.ratelimit import CostLimiter, ShopBudget, ThrottleStatus, throttle_delay


@pytest.fixture
def limiter(redis_client: aioredis.Redis, key_prefix: str) -> CostLimiter:
    return CostLimiter(redis_client, prefix=key_prefix)


def shop() -> str:
    return str(uuid.uuid4())


async def test_unknown_shop_lets_one_probe_through(limiter: CostLimiter) -> None:
    s = shop()
    assert await limiter.try_acquire(s, 50) == 0.0
    assert await limiter.try_acquire(s, 50) > 0.0  # the bucket is unknown until a response
    await limiter.observe(s, ThrottleStatus(1000, 950, 50))
    assert await limiter.try_acquire(s, 50) == 0.0


async def test_share_of_bucket_and_restore(limiter: CostLimiter) -> None:
    s = shop()
    await limiter.observe(s, ThrottleStatus(1000, 1000, 50))
    granted = 0
    while await limiter.try_acquire(s, 100, 0.9) == 0.0:
        granted += 1
    assert granted == 9  # 90% of 1000 points
    # Webhook work may use the whole bucket.
    assert await limiter.try_acquire(s, 100, 1.0) == 0.0
    wait = await limiter.try_acquire(s, 100, 1.0)
    assert 1.9 < wait <= 2.05  # 100 points at 50/s
    limiter.clock_offset_ms += 2100
    assert await limiter.try_acquire(s, 100, 1.0) == 0.0


async def test_refund_gives_back_unused_points(limiter: CostLimiter) -> None:
    s = shop()
    await limiter.observe(s, ThrottleStatus(100, 100, 10))
    assert await limiter.try_acquire(s, 90, 1.0) == 0.0
    assert await limiter.try_acquire(s, 50, 1.0) > 0
    await limiter.settle(s, requested=90, actual=20, status=None)
    assert await limiter.try_acquire(s, 50, 1.0) == 0.0


async def test_observe_only_tightens(limiter: CostLimiter) -> None:
    s = shop()
    await limiter.observe(s, ThrottleStatus(1000, 1000, 50))
    await limiter.observe(s, ThrottleStatus(1000, 200, 50))  # others spent 800
    state = await limiter.state(s)
    assert 790 < state.used <= 800
    await limiter.observe(s, ThrottleStatus(1000, 1000, 50))  # looser: ignored
    assert (await limiter.state(s)).used > 700
    # Capacity and rate follow the shop's responses (a plan upgrade).
    await limiter.observe(s, ThrottleStatus(20000, 20000, 1000))
    state = await limiter.state(s)
    assert (state.capacity, state.restore_rate) == (20000, 1000)


async def test_block_holds_every_caller(limiter: CostLimiter) -> None:
    s = shop()
    await limiter.observe(s, ThrottleStatus(1000, 1000, 50))
    await limiter.block(s, 3.0)
    wait = await limiter.try_acquire(s, 1, 1.0)
    assert 2.9 < wait <= 3.0
    limiter.clock_offset_ms += 3001
    assert await limiter.try_acquire(s, 1, 1.0) == 0.0


async def test_throttled_blocks_shop_and_defers_whole_group(limiter: CostLimiter) -> None:
    s = shop()
    budget = ShopBudget(limiter, s, 0.9)
    status = ThrottleStatus(1000, 10, 50)
    with pytest.raises(Defer) as raised:
        await budget.throttled(status, cost=110)
    assert raised.value.block_group
    assert 2.0 <= raised.value.seconds <= 2.4  # 100 missing points at 50/s, plus jitter
    assert (await limiter.state(s)).blocked_s > 1.9


async def test_long_wait_defers_instead_of_sleeping(limiter: CostLimiter) -> None:
    s = shop()
    await limiter.observe(s, ThrottleStatus(100, 0, 1))
    with pytest.raises(Defer) as raised:
        await limiter.acquire(s, 50, 1.0, max_wait_s=1.0)
    assert not raised.value.block_group
    assert raised.value.seconds > 1.0


def test_throttle_delay_prefers_retry_after() -> None:
    assert 3.0 <= throttle_delay(None, 10, retry_after_s=3.0) <= 3.36
    assert throttle_delay(ThrottleStatus(2000, 2000, 100), 10) < 0.2
    assert ThrottleStatus.from_extensions(
        {
            "cost": {
                "throttleStatus": {
                    "maximumAvailable": 2000,
                    "currentlyAvailable": 5,
                    "restoreRate": 100,
                }
            }
        }
    ) == ThrottleStatus(2000, 5, 100)
    assert ThrottleStatus.from_extensions({}) is None
