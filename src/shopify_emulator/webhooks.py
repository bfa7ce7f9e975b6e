"""Webhook deliveries: Shopify's headers and HMAC, retries with backoff, duplicate and reorder modes.

Deliveries run as asyncio tasks on the server's loop. Retries keep the payload and the webhook id (a stale
retry is exactly what a receiver must tolerate). Backoff follows Shopify's 8 retries over ~4 hours and is
multiplied by `time_scale`, so tests see the whole schedule in well under a second.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from shopify_emulator import ids
from shopify_emulator.catalog import now_iso
from shopify_emulator.config import AppCredentials
from shopify_emulator.model import BulkOperation, Product, Variant
from shopify_emulator.state import COMPLIANCE_TOPICS, TOPICS, EmulatorState, ShopState

MODES = ("normal", "duplicate", "reorder")
LOG_LIMIT = 10_000


@dataclass(slots=True)
class Delivery:
    shop: ShopState
    topic: str  # header form, e.g. products/update
    url: str
    body: bytes
    secret: str
    api_version: str
    webhook_id: str
    event_id: str
    triggered_at: str
    subscription_id: int | None

    def headers(self) -> dict[str, str]:
        digest = hmac.new(self.secret.encode(), self.body, hashlib.sha256).digest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Shop-Domain": self.shop.domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": self.webhook_id,
            "X-Shopify-Event-Id": self.event_id,
            "X-Shopify-Triggered-At": self.triggered_at,
        }


def rest_time(stamp: str | None) -> str | None:
    # REST payloads carry offsets, not `Z`: receivers must parse both forms.
    return None if stamp is None else stamp.replace("Z", "+00:00")


def product_payload(product: Product) -> dict[str, Any]:
    variants = [_variant_payload(product, v) for v in product.variants]
    return {
        "id": product.id,
        "admin_graphql_api_id": ids.gid("Product", product.id),
        "title": product.title,
        "body_html": product.description_html,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "handle": product.handle,
        "status": product.status.lower(),
        "tags": ", ".join(product.tags),
        "created_at": rest_time(product.created_at),
        "updated_at": rest_time(product.updated_at),
        "published_at": rest_time(product.created_at) if product.status == "ACTIVE" else None,
        "variants": variants,
        "options": [
            {"name": name, "position": n + 1, "product_id": product.id}
            for n, name in enumerate(product.option_names)
        ],
        "images": [
            {"id": i.id, "src": i.url, "alt": i.alt_text, "width": i.width, "height": i.height}
            for i in product.images
        ],
    }


def _variant_payload(product: Product, variant: Variant) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": variant.id,
        "admin_graphql_api_id": ids.gid("ProductVariant", variant.id),
        "product_id": product.id,
        "title": variant.title,
        "price": variant.price,
        "compare_at_price": variant.compare_at_price,
        "sku": variant.sku,
        "barcode": variant.barcode,
        "position": variant.position,
        "inventory_item_id": variant.inventory_item_id,
        "inventory_quantity": variant.inventory_quantity,
        "created_at": rest_time(variant.created_at),
        "updated_at": rest_time(variant.updated_at),
    }
    for n in range(3):
        payload[f"option{n + 1}"] = variant.options[n][1] if n < len(variant.options) else None
    return payload


def level_payload(variant: Variant, location_index: int) -> dict[str, Any]:
    return {
        "inventory_item_id": variant.inventory_item_id,
        "location_id": ids.location_id(location_index),
        "available": variant.available[location_index],
        "updated_at": rest_time(variant.level_updated_at[location_index]),
        "admin_graphql_api_id": ids.level_gid(variant.inventory_item_id, location_index),
    }


class Dispatcher:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[str, list[Delivery]] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.state.config.webhook_timeout_s)
        return self._client

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- firing -----------------------------------------------------------------------------------

    def fire(
        self, shop: ShopState, topic: str, payload: dict[str, Any], client_id: str | None = None
    ) -> str:
        """Deliver `payload` to every subscription of `topic` (enum form); returns the event id."""
        event_id = str(uuid.uuid4())
        body = msgspec.json.encode(payload)
        stamp = now_iso(self.state.clock)
        for sub in list(shop.subscriptions.values()):
            if sub.topic != topic or (client_id is not None and sub.client_id != client_id):
                continue
            app = self.state.apps[sub.client_id]
            self._schedule(
                Delivery(
                    shop=shop,
                    topic=TOPICS[topic],
                    url=sub.uri,
                    body=body,
                    secret=app.client_secret,
                    api_version=sub.api_version,
                    webhook_id=str(uuid.uuid4()),
                    event_id=event_id,
                    triggered_at=stamp,
                    subscription_id=sub.id,
                )
            )
        return event_id

    def fire_compliance(
        self, shop: ShopState, app: AppCredentials, topic: str, payload: dict[str, Any]
    ) -> bool:
        if topic not in COMPLIANCE_TOPICS or app.compliance_url is None:
            return False
        self._schedule(
            Delivery(
                shop=shop,
                topic=topic,
                url=app.compliance_url,
                body=msgspec.json.encode(payload),
                secret=app.client_secret,
                api_version=self.state.config.default_api_version,
                webhook_id=str(uuid.uuid4()),
                event_id=str(uuid.uuid4()),
                triggered_at=now_iso(self.state.clock),
                subscription_id=None,
            )
        )
        return True

    def bulk_finished(self, shop: ShopState, op: BulkOperation, status: str | None = None) -> None:
        """`bulk_operations/finish` for `op`, with `status` when the webhook reported another
        status than the operation reads now (one that expired after it completed)."""
        payload = {
            "admin_graphql_api_id": op.gid,
            "completed_at": rest_time(op.completed_at),
            "created_at": rest_time(op.created_at),
            "error_code": op.error_code.lower() if op.error_code else None,
            "status": (status or op.status).lower(),
            "type": op.type.lower(),
        }
        self.fire(shop, "BULK_OPERATIONS_FINISH", payload, client_id=op.client_id)

    def schedule_later(self, delay_s: float, callback: Any) -> None:
        async def later() -> None:
            await asyncio.sleep(delay_s)
            callback()

        self._track(later())

    # -- sending ----------------------------------------------------------------------------------

    def _track(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self, delivery: Delivery) -> None:
        mode = delivery.shop.webhook_mode
        if mode == "reorder":
            pending = self._pending.setdefault(delivery.shop.domain, [])
            pending.append(delivery)
            if len(pending) == 1:
                self._track(self._flush_reordered(delivery.shop.domain))
            return
        self._track(self._deliver(delivery, 0))
        if mode == "duplicate":
            # The same delivery twice, same webhook id: what receivers must dedupe.
            self._track(self._deliver(delivery, 0))

    async def _flush_reordered(self, domain: str) -> None:
        await asyncio.sleep(self.state.config.webhook_reorder_window_s)
        batch = self._pending.pop(domain, [])
        for delivery in reversed(batch):
            if not await self._attempt(delivery, 0):
                self._track(self._deliver(delivery, 1))

    async def _deliver(self, delivery: Delivery, first_attempt: int) -> None:
        config = self.state.config
        for attempt in range(first_attempt, config.webhook_retries + 1):
            if attempt > 0:
                await asyncio.sleep(
                    config.webhook_retry_base_s * 2 ** (attempt - 1) * config.time_scale
                )
            if await self._attempt(delivery, attempt):
                return
        if config.webhook_remove_after_failures and delivery.subscription_id is not None:
            delivery.shop.subscriptions.pop(delivery.subscription_id, None)

    async def _attempt(self, delivery: Delivery, attempt: int) -> bool:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self.client.post(
                delivery.url, content=delivery.body, headers=delivery.headers()
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        ok = status is not None and 200 <= status < 300
        log = delivery.shop.deliveries
        log.append(
            {
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "topic": delivery.topic,
                "url": delivery.url,
                "attempt": attempt,
                "status": status,
                "error": error,
                "ok": ok,
                "elapsed_s": round(time.monotonic() - started, 4),
                "at": now_iso(self.state.clock),
            }
        )
        if len(log) > LOG_LIMIT:
            del log[: len(log) - LOG_LIMIT]
        return ok
