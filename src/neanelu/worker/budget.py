"""The Shopify client's cost budget, spent from the queue's Redis limiter for one shop.

Every process and every job of a shop draw from the same bucket, so twenty workers together stay
within the shop's restore rate; the client's corrections (refunds, Shopify's throttleStatus,
blocks after THROTTLED) go to the same place.
"""

from __future__ import annotations

from neanelu.queue import CostLimiter
from neanelu.queue import ThrottleStatus as QueueThrottleStatus
from neanelu.shopify.budget import ThrottleStatus


class LimiterBudget:
    def __init__(self, limiter: CostLimiter, shop: str, share: float) -> None:
        self.limiter, self.shop, self.share = limiter, shop, share

    async def acquire(self, cost: float) -> None:
        await self.limiter.acquire(self.shop, cost, self.share)

    async def refund(self, points: float) -> None:
        await self.limiter.refund(self.shop, points)

    async def observe(self, status: ThrottleStatus) -> None:
        await self.limiter.observe(
            self.shop,
            QueueThrottleStatus(
                status.maximum_available, status.currently_available, status.restore_rate
            ),
        )

    async def block(self, seconds: float) -> None:
        await self.limiter.block(self.shop, seconds)
