"""A Shopify cost budget per shop, shared by every worker process (GCRA in Lua, variable cost).

Before a call take the query's requested cost; after it give back the unused part and let the
response's `throttleStatus` correct the estimate (it only ever tightens it). Bucket size and restore
rate are learned from each shop's own responses: plans differ (100 to 2000 points/s) and Shopify
changes them, so nothing here assumes a number.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec
from redis.asyncio import Redis

from neanelu.queue import redis_keys
from neanelu.queue.errors import Defer
from neanelu.queue.scripts import budget_script


class ThrottleStatus(msgspec.Struct, frozen=True):
    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, extensions: Mapping[str, Any] | None) -> ThrottleStatus | None:
        """From a GraphQL response's `extensions` (`cost.throttleStatus`), if present."""
        try:
            status = (extensions or {})["cost"]["throttleStatus"]
            return cls(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class BudgetState(msgspec.Struct, frozen=True):
    used: float
    capacity: float  # 0 until a response taught it
    restore_rate: float
    blocked_s: float


def throttle_delay(
    status: ThrottleStatus | None, cost: float, retry_after_s: float | None = None
) -> float:
    """How long a throttled shop should rest: Shopify's Retry-After when it gave one, else until
    the bucket holds the call's cost again; plus jitter so blocked jobs do not return together."""
    if retry_after_s is not None and retry_after_s > 0:
        base = retry_after_s
    elif status is not None and status.restore_rate > 0:
        needed = min(cost, status.maximum_available) - status.currently_available
        base = max(needed, 0.0) / status.restore_rate
    else:
        base = 1.0
    base = max(base, 0.05)
    return base + random.uniform(0.0, 0.1 * base + 0.05)


class CostLimiter:
    def __init__(self, redis: Redis, *, prefix: str = redis_keys.DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = budget_script(redis)
        # Added to Redis' clock in the script; tests only.
        self.clock_offset_ms = 0

    async def _call(self, shop: str, op: str, *args: float | str) -> list[Any]:
        key = redis_keys.budget_key(self.prefix, shop)
        result: list[Any] = await self._script([key], [self.clock_offset_ms, op, *args])
        return result

    async def try_acquire(self, shop: str, cost: float, share: float = 0.9) -> float:
        """0.0 when the cost was taken, else seconds to wait before asking again."""
        granted, wait_ms = await self._call(shop, "acquire", cost, share)
        return 0.0 if int(granted) == 1 else max(int(wait_ms), 1) / 1000

    async def acquire(
        self, shop: str, cost: float, share: float = 0.9, *, max_wait_s: float = 10.0
    ) -> None:
        """Take `cost` points, waiting while the wait is short; a longer wait defers the job so it
        does not hold a worker slot doing nothing."""
        while True:
            wait = await self.try_acquire(shop, cost, share)
            if wait == 0.0:
                return
            if wait > max_wait_s:
                raise Defer(wait, reason=f"shop budget: {wait:.1f}s to wait")
            # A little jitter keeps waiting workers from asking again in lockstep.
            await asyncio.sleep(wait * random.uniform(1.0, 1.1))

    async def refund(self, shop: str, points: float) -> None:
        if points > 0:
            await self._call(shop, "refund", points)

    async def observe(self, shop: str, status: ThrottleStatus) -> None:
        await self._call(
            shop,
            "observe",
            status.maximum_available,
            status.currently_available,
            status.restore_rate,
        )

    async def settle(
        self, shop: str, requested: float, actual: float | None, status: ThrottleStatus | None
    ) -> None:
        """After a call: give back what the query did not use, then learn from throttleStatus."""
        if actual is not None and requested > actual:
            await self.refund(shop, requested - actual)
        if status is not None:
            await self.observe(shop, status)

    async def block(self, shop: str, seconds: float) -> float:
        """No call for this shop until `seconds` from now (Redis time); returns the end in ms."""
        _, until_ms = await self._call(shop, "block", round(seconds * 1000))
        return int(until_ms) / 1000

    async def state(self, shop: str) -> BudgetState:
        used, cap, rate, blocked_ms = await self._call(shop, "state")
        return BudgetState(float(used), float(cap), float(rate), float(blocked_ms) / 1000)


class ShopBudget:
    """The limiter bound to one shop and the share its queue may use, as handlers receive it."""

    def __init__(self, limiter: CostLimiter, shop: str, share: float) -> None:
        self.limiter = limiter
        self.shop = shop
        self.share = share

    async def acquire(self, cost: float, *, max_wait_s: float = 10.0) -> None:
        await self.limiter.acquire(self.shop, cost, self.share, max_wait_s=max_wait_s)

    async def settle(
        self, requested: float, actual: float | None, status: ThrottleStatus | None
    ) -> None:
        await self.limiter.settle(self.shop, requested, actual, status)

    async def throttled(
        self,
        status: ThrottleStatus | None,
        cost: float,
        *,
        retry_after_s: float | None = None,
    ) -> NoReturn:
        """Shopify said THROTTLED (or 429): block the shop for every worker until the bucket holds
        this call again, and give the job back without using an attempt. Its whole group waits, so
        no other job of the shop starts first."""
        # Shopify took nothing for a refused call, so neither does our estimate.
        await self.limiter.refund(self.shop, cost)
        if status is not None:
            await self.limiter.observe(self.shop, status)
        seconds = throttle_delay(status, cost, retry_after_s)
        await self.limiter.block(self.shop, seconds)
        raise Defer(seconds, block_group=True, reason="shopify throttled")
