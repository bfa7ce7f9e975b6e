"""Shopify's leaky bucket, one per (app, shop), on a monotonic clock.

GraphQL deducts the requested cost up front and refunds `requested - actual` after the query ran; REST
counts calls. Wall-clock jumps must not refill a bucket, hence a monotonic reading (the emulator's clock's,
so a test can refill a bucket by advancing it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class LeakyBucket:
    size: float
    restore_rate: float
    available: float = -1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    stamp: float = -1.0
    # What the bucket has seen, for a drill's "budget use" figure: points kept (taken minus
    # refunded), calls refused, and the lowest level it fell to.
    spent: float = 0.0
    refused: int = 0
    lowest: float = -1.0

    def __post_init__(self) -> None:
        if self.stamp < 0:
            self.stamp = self.clock()
        if self.available < 0:
            self.available = self.size
        if self.lowest < 0:
            self.lowest = self.available

    def refill(self) -> float:
        now = self.clock()
        self.available = min(self.size, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now
        return self.available

    def try_take(self, cost: float) -> bool:
        self.refill()
        if cost > self.available:
            return False
        self.available -= cost
        self.spent += cost
        self.lowest = min(self.lowest, self.available)
        return True

    def refund(self, amount: float) -> None:
        self.refill()
        self.available = min(self.size, self.available + amount)
        self.spent -= amount

    def refuse(self) -> None:
        """Count a call answered THROTTLED (the level was too low, or a fault forced it)."""
        self.refused += 1

    def seconds_until(self, cost: float) -> float:
        self.refill()
        missing = cost - self.available
        return max(0.0, missing / self.restore_rate) if self.restore_rate > 0 else 1.0

    def status(self) -> dict[str, float]:
        self.refill()
        return {
            "maximumAvailable": float(self.size),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }

    def usage(self) -> dict[str, float]:
        return {
            "points_spent": round(self.spent, 1),
            "refused": self.refused,
            "lowest_available": round(self.lowest, 1),
            "available": round(self.refill(), 1),
        }
