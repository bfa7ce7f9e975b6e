"""Recording a delivery: one short transaction, no Shopify call, no Redis round trip.

The inbox insert and the job's outbox row commit together: a delivery is either recorded and
queued, or neither (Shopify then retries it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.shops import repository as shops
from neanelu.webhooks import repository as inbox
from neanelu.webhooks.tasks import DeliveryRef, process_delivery


@dataclass(frozen=True, slots=True)
class Delivery:
    shop_domain: str
    topic: str
    webhook_id: str
    event_id: str | None
    api_version: str | None
    triggered_at: datetime | None
    payload: str  # the raw JSON text, stored as it came


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
            found[0] if found else None,
            found[1] if found else "",
        )
        return found

    def forget(self, domain: str) -> None:
        self._entries.pop(domain, None)


async def record_delivery(
    pool: AsyncConnectionPool[Conn], shop_id: UUID, delivery: Delivery
) -> int | None:
    """The inbox id of a new delivery (queued for processing), None for a duplicate."""
    async with tenant_scope(pool, shop_id) as conn:
        inbox_id = await inbox.insert(
            conn,
            shop_id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            topic=delivery.topic,
            api_version=delivery.api_version,
            triggered_at=delivery.triggered_at,
            payload=delivery.payload,
        )
        if inbox_id is not None:
            await process_delivery.enqueue_in_tx(
                conn,
                DeliveryRef(shop_id=str(shop_id), inbox_id=inbox_id),
                group=shop_id,
                job_id=f"webhook-{shop_id}-{inbox_id}",
            )
    return inbox_id
