"""A live emulator and the wiring a sync needs, with the token minted through the control API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.shopify.graphql import AdminClient, ShopEndpoint
from neanelu.sync.service import SyncDeps, SyncSummary, request_full_sync, run_sync
from shopify_emulator.config import CatalogShape, EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from tests.factories import create_shop

API_VERSION = "2026-01"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        shops=[ShopConfig(name="alpha", products=120, seed=7)],
        catalog=CatalogShape(variants_mean=3.0, variants_max=12, locations=2),
        bulk_dir=str(tmp_path_factory.mktemp("bulk")),
        bulk_max_connection_depth=3,
    )
    with start_in_thread(config) as running:
        yield running


@dataclass
class EmulatorShopAccess:
    emulator: RunningEmulator
    http: httpx.AsyncClient
    shop: str
    tokens: dict[str, str] = field(default_factory=dict)

    async def admin_client(self, shop_id: uuid.UUID) -> AdminClient:
        if self.shop not in self.tokens:
            response = await self.http.post(
                f"{self.emulator.base_url}/_emulator/shops/{self.shop}/tokens", json={}
            )
            response.raise_for_status()
            self.tokens[self.shop] = response.json()["access_token"]
        endpoint = ShopEndpoint(f"{self.shop}.myshopify.com", API_VERSION, self.emulator.base_url)
        return AdminClient(self.http, endpoint, self.tokens[self.shop])


@dataclass
class SyncHarness:
    emulator: RunningEmulator
    pool: AsyncConnectionPool[Conn]
    http: httpx.AsyncClient
    shop: str
    shop_id: uuid.UUID

    @property
    def deps(self) -> SyncDeps:
        return SyncDeps(
            self.pool, self.http, EmulatorShopAccess(self.emulator, self.http, self.shop)
        )

    async def control(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        url = f"{self.emulator.base_url}/_emulator/shops/{self.shop}{path}"
        response = await self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
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


@pytest.fixture
async def harness(
    emulator: RunningEmulator, app_pool: AsyncConnectionPool[Conn]
) -> AsyncIterator[SyncHarness]:
    async with httpx.AsyncClient(timeout=30) as http:
        shop_id = await create_shop(app_pool, "alpha.myshopify.com")
        h = SyncHarness(emulator, app_pool, http, "alpha", shop_id)
        await h.control("DELETE", "/faults")
        yield h
        await h.control("DELETE", "/faults")
