"""Merchant activity during a drill: product edits, new products and stock changes made in the
emulator (Shopify), which sends the webhooks; and full syncs asked for on a schedule. Seeded, so a
drill repeated with the same seed makes the same changes in the same order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from drills.stack import Shop, Stack, say
from neanelu.handles import enqueue_full_sync

PRODUCT_BASE = 8_000_000_000_000


@dataclass
class Traffic:
    stack: Stack
    rng: random.Random
    per_s: float = 4.0
    # products/create carries no metafields and no inventory levels (Shopify's REST payload), so
    # a created product is whole only after the next reconciliation: off unless a drill wants it.
    creates: bool = False
    changes: int = 0
    errors: int = 0
    created: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        say(f"traffic: {self.changes} catalog changes made ({self.errors} refused by Shopify)")

    async def _run(self) -> None:
        while not self._stop.is_set():
            shop = self.rng.choice(self.stack.shops)
            roll = self.rng.random()
            try:
                if self.creates and roll < 0.1:
                    await self._create(shop)
                elif roll < 0.3:
                    await self._stock(shop)
                else:
                    await self._edit(shop)
                self.changes += 1
            except Exception:  # the emulator's control API is not under test; count and go on
                self.errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0 / self.per_s)

    def _product(self, shop: Shop) -> int:
        return PRODUCT_BASE + self.rng.randrange(shop.products)

    async def _edit(self, shop: Shop) -> None:
        n = self.changes
        await self.stack.control(
            "PATCH",
            f"/shops/{shop.name}/products/{self._product(shop)}",
            json={"title": f"drill edit {n}", "vendor": f"v{n % 7}", "tags": [f"t{n % 5}"]},
        )

    async def _create(self, shop: Shop) -> None:
        await self.stack.control(
            "POST", f"/shops/{shop.name}/products", json={"title": f"drill new {self.changes}"}
        )
        self.created[shop.name] = self.created.get(shop.name, 0) + 1

    async def _stock(self, shop: Shop) -> None:
        product = await self.stack.control(
            "GET", f"/shops/{shop.name}/products/{self._product(shop)}"
        )
        item = self.rng.choice(product["variants"])["inventoryItem"]["id"]
        await self.stack.control(
            "POST",
            f"/shops/{shop.name}/inventory",
            json={"inventory_item_id": item, "available": self.rng.randrange(500)},
        )


async def request_sync(stack: Stack, shop: Shop, reason: str = "drill") -> str:
    """A full sync queued the way the install queues one: an outbox row, relayed by a worker."""
    async with await psycopg.AsyncConnection.connect(stack.super_url) as conn:
        job_id = await enqueue_full_sync(conn, UUID(shop.id), reason=reason)
        await conn.commit()
    return job_id


async def running_phase(stack: Stack) -> list[tuple[str, str]]:
    """(status, phase) of every unfinished run."""
    rows = await stack.query(
        "SELECT status, coalesce(phase, '') FROM sync_runs WHERE status IN ('queued', 'running')"
    )
    return [(str(a), str(b)) for a, b in rows]
