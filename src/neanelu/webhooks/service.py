"""Recording deliveries: short transactions, no Shopify call, no Redis round trip.

A delivery's inbox row and its job's outbox row commit together, and the request is answered only
after that commit: a delivery is either recorded and queued, or neither (Shopify then retries it).
Under load, deliveries that arrive while a transaction is in flight share the next one (group
commit): the commit and its round trips are paid once per batch instead of once per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope
from neanelu.handles import DeliveryBatch, process_deliveries
from neanelu.shops import repository as shops
from neanelu.webhooks import repository as inbox
from neanelu.webhooks import topics
from neanelu.webhooks.repository import NewDelivery

log = logging.getLogger(__name__)

# The queue group of compliance deliveries (every shop's): never paused by an uninstall.
COMPLIANCE_GROUP = "compliance"


class ShopDirectory:
    """Shop id and status by domain, cached for a few seconds: every delivery needs them and
    they change only on install and uninstall (which the handlers re-check anyway)."""

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, UUID | None, str]] = {}

    async def lookup(self, pool: AsyncConnectionPool[Conn], domain: str) -> tuple[UUID, str] | None:
        now = time.monotonic()
        hit = self._entries.get(domain)
        if hit is not None and hit[0] > now:
            return None if hit[1] is None else (hit[1], hit[2])
        async with global_scope(pool) as conn:
            found = await shops.lookup_status(conn, domain)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[domain] = (
            now + self.ttl_s,
            found.id if found else None,
            found.status if found else "",
        )
        return (found.id, found.status) if found else None

    def forget(self, domain: str) -> None:
        self._entries.pop(domain, None)


@dataclass(slots=True)
class _Pending:
    shop_id: UUID
    delivery: NewDelivery
    done: asyncio.Future[int | None] = field(repr=False)


async def record_deliveries(conn: Conn, items: list[tuple[UUID, NewDelivery]]) -> list[int | None]:
    """Insert the deliveries and queue the new ones in one transaction on `conn` (which must be
    idle). Returns, per item, its inbox id when it was new, else None (a duplicate).

    Pipelined: BEGIN, the tenant scopes and the inserts travel together, then the outbox rows and
    COMMIT; two round trips per batch however large it is.
    """
    by_shop: dict[UUID, list[NewDelivery]] = defaultdict(list)
    for shop_id, delivery in items:
        by_shop[shop_id].append(delivery)
    new_ids: dict[tuple[UUID, str], int] = {}
    results: list[int | None] = []
    async with conn.pipeline(), conn.transaction():
        for shop_id, deliveries in by_shop.items():
            # The inbox is a tenant table: each shop's rows are written under its own scope
            # (SET LOCAL semantics: it ends with this transaction).
            await conn.execute(
                "SELECT set_config('app.current_shop_id', %s, true)", (str(shop_id),)
            )
            inserted = await inbox.insert_many(conn, shop_id, deliveries)
            for webhook_id, inbox_id in inserted.items():
                new_ids[(shop_id, webhook_id)] = inbox_id
        queued: dict[tuple[UUID, bool], list[int]] = defaultdict(list)
        for shop_id, delivery in items:
            # pop: a webhook id twice in one batch is new once, a duplicate the second time.
            key = (shop_id, delivery.webhook_id)
            found = new_ids.pop(key) if key in new_ids else None
            results.append(found)
            if found is not None:
                queued[(shop_id, delivery.topic in topics.COMPLIANCE)].append(found)
        # One job per shop per batch: the outbox, the relay and the queue carry a row per batch,
        # not per delivery, and the shop's deliveries are applied in the order they came.
        # Compliance requests go to a group of their own: an uninstall pauses the shop's group,
        # and shop/redact comes after the uninstall.
        for (shop_id, compliance), inbox_ids in queued.items():
            await process_deliveries.enqueue_in_tx(
                conn,
                DeliveryBatch(shop_id=str(shop_id), inbox_ids=inbox_ids),
                group=COMPLIANCE_GROUP if compliance else shop_id,
                job_id=f"webhook-{shop_id}-{inbox_ids[0]}",
            )
    return results


class InboxWriter:
    """Group commit for webhook ingress: up to `writers` transactions in flight; deliveries that
    arrive meanwhile wait (at most `max_batch` per transaction) for the next one."""

    def __init__(self, writers: int = 2, max_batch: int = 200, spawn_backlog: int = 8) -> None:
        self.writers = writers
        self.max_batch = max_batch
        # Another writer joins only when this many deliveries wait: at moderate rates one writer
        # batches everything (less work per delivery, so lower latency); under a burst the second
        # overlaps its round trips with the first's.
        self.spawn_backlog = spawn_backlog
        self._pending: list[_Pending] = []
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(
        self, pool: AsyncConnectionPool[Conn], shop_id: UUID, delivery: NewDelivery
    ) -> int | None:
        """The inbox id once committed (None for a duplicate); raises what the write raised."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(shop_id, delivery, done))
        if self._active == 0 or (
            self._active < self.writers and len(self._pending) >= self.spawn_backlog
        ):
            self._active += 1
            task = asyncio.create_task(self._drain(pool), name="webhook-inbox-writer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _drain(self, pool: AsyncConnectionPool[Conn]) -> None:
        try:
            # One connection for as long as there is work: under load the checkout is paid once.
            async with pool.connection() as conn:
                while self._pending:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    if not await self._write(conn, batch):
                        break  # the connection may be broken: the next writer takes a new one
        except Exception as exc:
            # No connection at all (PostgreSQL down): fail what is waiting; Shopify retries.
            self._fail_all(exc)
        finally:
            self._active -= 1

    def _fail_all(self, exc: Exception) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            if not item.done.done():
                item.done.set_exception(exc)

    async def _write(self, conn: Conn, batch: list[_Pending]) -> bool:
        """Commit the batch and answer its requests; False when it failed."""
        try:
            ids = await record_deliveries(conn, [(p.shop_id, p.delivery) for p in batch])
        except Exception as exc:
            if len(batch) > 1 and not conn.closed:
                # One bad delivery (a shop purged a moment ago) must not fail its neighbours:
                # each is retried in its own transaction.
                ok = True
                for item in batch:
                    ok = await self._write(conn, [item]) and ok
                return ok
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return False
        for item, inbox_id in zip(batch, ids, strict=True):
            if not item.done.done():
                item.done.set_result(inbox_id)
        return True
