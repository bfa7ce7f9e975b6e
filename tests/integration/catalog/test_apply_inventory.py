"""Inventory webhooks move the variant's quantity; deleting a product drops its levels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.catalog.apply import apply_inventory_level, apply_product, delete_product
from neanelu.catalog.product_versions import InventoryLevelRecord, ProductRecord, VariantRecord
from neanelu.db.pool import Conn, tenant_scope
from tests.factories import create_shop

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _product_with_item_111(conn: Conn, shop: UUID) -> None:
    """Product 1 with one variant (11) whose inventory item is 111, quantity 0."""
    await conn.execute(
        "INSERT INTO products (shop_id, shopify_id, shopify_updated_at) VALUES (%s, 1, %s)",
        (shop, T0),
    )
    await conn.execute(
        "INSERT INTO variants (shop_id, shopify_id, product_shopify_id, inventory_item_id,"
        " inventory_quantity, shopify_updated_at) VALUES (%s, 11, 1, 111, 0, %s)",
        (shop, T0),
    )


async def test_levels_sum_into_the_variant_and_go_with_its_product(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await _product_with_item_111(conn, shop)
        for location, available in ((1, 5), (2, 7)):
            await apply_inventory_level(
                conn, shop, InventoryLevelRecord(100 + location, 111, location, available, T0)
            )
        cur = await conn.execute("SELECT inventory_quantity FROM variants WHERE shopify_id = 11")
        assert await cur.fetchone() == (12,)
        # An older update changes nothing, a newer one moves the total.
        await apply_inventory_level(
            conn, shop, InventoryLevelRecord(101, 111, 1, 99, T0 - timedelta(minutes=1))
        )
        await apply_inventory_level(
            conn, shop, InventoryLevelRecord(102, 111, 2, 1, T0 + timedelta(minutes=1))
        )
        cur = await conn.execute("SELECT inventory_quantity FROM variants WHERE shopify_id = 11")
        assert await cur.fetchone() == (6,)
        await delete_product(conn, shop, 1, T0 + timedelta(hours=1))
        cur = await conn.execute("SELECT count(*) FROM inventory_levels")
        assert await cur.fetchone() == (0,)


async def test_a_product_payload_older_than_its_levels_keeps_their_sum(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)

    def version(quantity: int, at: datetime) -> ProductRecord:
        variant = VariantRecord(11, "S", "V", None, None, None, 1, quantity, 111, [], at, at)
        return ProductRecord(1, "h", "T", None, None, "ACTIVE", [], None, at, at, [variant])

    async with tenant_scope(app_pool, shop) as conn:
        assert await apply_product(conn, shop, version(3, T0))
        await apply_inventory_level(conn, shop, InventoryLevelRecord(101, 111, 1, 20, T0))
        # The products/update of an edit made before that stock change arrives late.
        assert await apply_product(conn, shop, version(3, T0 + timedelta(seconds=1)))
        cur = await conn.execute("SELECT inventory_quantity FROM variants WHERE shopify_id = 11")
        assert await cur.fetchone() == (20,)


async def test_two_locations_updated_at_once_both_count_in_the_variant(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await _product_with_item_111(conn, shop)
        for location in (1, 2):
            await apply_inventory_level(
                conn, shop, InventoryLevelRecord(100 + location, 111, location, 1, T0)
            )
    later = T0 + timedelta(minutes=1)
    second_started = asyncio.Event()
    pids: list[int] = []

    async def second_location() -> None:
        async with tenant_scope(app_pool, shop) as conn:
            info = await conn.execute("SELECT pg_backend_pid()")
            row = await info.fetchone()
            assert row is not None
            pids.append(row[0])
            second_started.set()
            await apply_inventory_level(conn, shop, InventoryLevelRecord(102, 111, 2, 30, later))

    async with tenant_scope(app_pool, shop) as first:
        await apply_inventory_level(first, shop, InventoryLevelRecord(101, 111, 1, 20, later))
        second = asyncio.create_task(second_location())
        await second_started.wait()
        # Commit the first only once the second is waiting on a lock the first holds.
        async with app_pool.connection() as watcher:
            for _ in range(500):
                cur = await watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pids[0],)
                )
                state = await cur.fetchone()
                if state is not None and state[0] == "Lock":
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the second delivery never waited for the first")
    await second
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT inventory_quantity FROM variants WHERE shopify_id = 11")
        assert await cur.fetchone() == (50,)
