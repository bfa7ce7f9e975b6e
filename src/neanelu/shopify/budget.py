"""The cost budget a GraphQL client spends from. The queue's Redis GCRA limiter implements it; the
client only depends on this protocol, so it stays free of Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


class CostBudget(Protocol):
    async def acquire(self, cost: float) -> None:
        """Wait until `cost` points may be spent, then take them."""

    async def refund(self, points: float) -> None:
        """Give back what a call did not use (requested minus actual)."""

    async def observe(self, status: ThrottleStatus) -> None:
        """Correct the budget from Shopify's own figures (only ever tightening)."""

    async def block(self, seconds: float) -> None:
        """Stop every caller for this shop for `seconds` (after THROTTLED or 429)."""


class UnlimitedBudget:
    """For one-off CLI calls and tests that do not exercise rate limits."""

    async def acquire(self, cost: float) -> None:
        return None

    async def refund(self, points: float) -> None:
        return None

    async def observe(self, status: ThrottleStatus) -> None:
        return None

    async def block(self, seconds: float) -> None:
        return None
