"""Wiring a sync against a live emulator: token minted through the control API, table snapshots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.shopify.graphql import AdminClient, ShopEndpoint
from neanelu.sync.service import SyncDeps, SyncSummary, request_full_sync, run_sync
from shopify_emulator.server import RunningEmulator

API_VERSION = "2026-01"

SNAPSHOT_SQL = {
    "products": "SELECT shopify_id, handle, title, vendor, product_type, status, tags, description,"
    " metafields, shopify_created_at, shopify_updated_at, deleted_at IS NOT NULL"
    " FROM products ORDER BY shopify_id",
    "variants": "SELECT shopify_id, product_shopify_id, sku, title, price, compare_at_price, barcode,"
    " position, inventory_quantity, inventory_item_id, selected_options, metafields,"
    " shopify_created_at, shopify_updated_at, deleted_at IS NOT NULL FROM variants ORDER BY shopify_id",
    "inventory_levels": "SELECT shopify_id, inventory_item_id, location_id, available,"
    " shopify_updated_at FROM inventory_levels ORDER BY inventory_item_id, location_id",
}


@dataclass
class EmulatorShopAccess:
    base_url: str
    http: httpx.AsyncClient
    shop: str
    tokens: dict[str, str] = field(default_factory=dict)

    async def admin_client(self, shop_id: uuid.UUID) -> AdminClient:
        if self.shop not in self.tokens:
            response = await self.http.post(
                f"{self.base_url}/_emulator/shops/{self.shop}/tokens", json={}
            )
            response.raise_for_status()
            self.tokens[self.shop] = response.json()["access_token"]
        endpoint = ShopEndpoint(f"{self.shop}.myshopify.com", API_VERSION, self.base_url)
        return AdminClient(self.http, endpoint, self.tokens[self.shop])


@dataclass
class SyncHarness:
    emulator: RunningEmulator
    pool: AsyncConnectionPool[Conn]
    http: httpx.AsyncClient
    shop: str
    shop_id: uuid.UUID
    # 0: the inventory phase always runs in its child process; None: always in this one.
    inventory_child_bytes: int | None = None

    @property
    def deps(self) -> SyncDeps:
        return SyncDeps(
            self.pool,
            self.http,
            EmulatorShopAccess(self.emulator.base_url, self.http, self.shop),
            inventory_child_bytes=self.inventory_child_bytes,
        )

    async def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.emulator.base_url}/_emulator/shops/{self.shop}{path}"
        response = await self.http.request(method, url, **kwargs)
        response.raise_for_status()
        return response

    async def full_sync(self) -> SyncSummary:
        async with tenant_scope(self.pool, self.shop_id) as conn:
            run = await request_full_sync(conn, self.shop_id)
        return await run_sync(self.deps, self.shop_id, run.id)

    async def expected_counts(self) -> dict[str, int]:
        return dict((await self.control("GET", "/counts")).json())

    async def stored(self) -> dict[str, int]:
        async with tenant_scope(self.pool, self.shop_id) as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM products WHERE deleted_at IS NULL),"
                " (SELECT count(*) FROM variants WHERE deleted_at IS NULL),"
                " (SELECT count(*) FROM inventory_levels),"
                " (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
                "  FROM products WHERE deleted_at IS NULL),"
                " (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
                "  FROM variants WHERE deleted_at IS NULL)"
            )
            row = await cur.fetchone()
        assert row is not None
        keys = (
            "products",
            "variants",
            "inventory_levels",
            "product_metafields",
            "variant_metafields",
        )
        return dict(zip(keys, (int(v) for v in row), strict=True))

    async def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every stored business column (not uuids or sync times), in a stable order."""
        out: dict[str, list[tuple[object, ...]]] = {}
        async with tenant_scope(self.pool, self.shop_id) as conn:
            for table, sql in SNAPSHOT_SQL.items():
                cur = await conn.execute(sql)
                out[table] = list(await cur.fetchall())
        return out
