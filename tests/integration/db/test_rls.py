"""Row-level security on the real server, connecting as the application role."""

from __future__ import annotations

import asyncio
import random
import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, PoolSizes, create_pool, global_scope, tenant_scope
from tests.databases import TestDatabase
from tests.factories import create_shop

TENANT_TABLES = (
    "products",
    "variants",
    "inventory_levels",
    "sync_runs",
    "sync_quarantine",
    "webhook_inbox",
    "owner_apps",
    "sync_run_attempts",
    "search_settings",
    "embeddings",
    "search_documents",
    "embedding_runs",
    "embedding_batches",
    "embedding_requests",
    "parity_checks",
)


async def _insert_product(conn: Conn, shop: uuid.UUID, shopify_id: int) -> None:
    await conn.execute(
        "INSERT INTO products (shop_id, shopify_id, title) VALUES (%s, %s, %s)",
        (shop, shopify_id, f"p{shopify_id}"),
    )


async def test_consecutive_transactions_on_one_pooled_connection_never_leak(
    database: TestDatabase,
) -> None:
    pool = create_pool(database.app_url, PoolSizes(1, 1), name="rls-one")
    await pool.open(wait=True)
    try:
        shop_a, shop_b = await create_shop(pool), await create_shop(pool)
        async with tenant_scope(pool, shop_a) as conn:
            await _insert_product(conn, shop_a, 1)
            pid_a = conn.info.backend_pid
        async with tenant_scope(pool, shop_b) as conn:
            assert conn.info.backend_pid == pid_a, "the pool must hand back the same connection"
            await _insert_product(conn, shop_b, 2)
            cur = await conn.execute("SELECT shopify_id FROM products")
            assert await cur.fetchall() == [(2,)]
        # After a scope ends the next user of the connection sees nothing until it sets a tenant.
        async with global_scope(pool) as conn:
            cur = await conn.execute("SELECT count(*) FROM products")
            assert await cur.fetchone() == (0,)
        async with tenant_scope(pool, shop_a) as conn:
            cur = await conn.execute("SELECT shopify_id FROM products")
            assert await cur.fetchall() == [(1,)]
    finally:
        await pool.close()


async def test_randomized_interleaved_operations_across_shops_never_leak(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shops = [await create_shop(app_pool) for _ in range(5)]
    rng = random.Random(20261128)
    expected: dict[uuid.UUID, set[int]] = {s: set() for s in shops}
    next_id = iter(range(1, 10_000_000))
    operations = 0

    async def worker(seed: int) -> None:
        nonlocal operations
        local = random.Random(seed)
        for _ in range(220):
            shop = local.choice(shops)
            async with tenant_scope(app_pool, shop) as conn:
                if local.random() < 0.6:
                    sid = next(next_id)
                    await _insert_product(conn, shop, sid)
                    expected[shop].add(sid)
                elif local.random() < 0.5:
                    await conn.execute(
                        "UPDATE products SET title = title || '+' WHERE shopify_id = "
                        "(SELECT min(shopify_id) FROM products)"
                    )
                # Every read inside the scope must see this shop's rows only.
                cur = await conn.execute("SELECT DISTINCT shop_id FROM products")
                seen = {r[0] for r in await cur.fetchall()}
                assert seen <= {shop}, f"shop {shop} saw rows of {seen - {shop}}"
                # Yield inside the transaction so other scopes interleave on other connections.
                await asyncio.sleep(0)
            operations += 1

    await asyncio.gather(*(worker(rng.randrange(1 << 30)) for _ in range(6)))
    assert operations >= 1000
    for shop in shops:
        async with tenant_scope(app_pool, shop) as conn:
            cur = await conn.execute("SELECT shopify_id FROM products")
            assert {r[0] for r in await cur.fetchall()} == expected[shop]


async def test_app_role_without_setting_sees_nothing(app_pool: AsyncConnectionPool[Conn]) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await _insert_product(conn, shop, 7)
    async with global_scope(app_pool) as conn:
        for table in TENANT_TABLES:
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            assert await cur.fetchone() == (0,), table


async def test_app_role_cannot_write_another_shops_row(app_pool: AsyncConnectionPool[Conn]) -> None:
    shop_a, shop_b = await create_shop(app_pool), await create_shop(app_pool)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        async with tenant_scope(app_pool, shop_a) as conn:
            await _insert_product(conn, shop_b, 1)
    async with tenant_scope(app_pool, shop_b) as conn:
        await _insert_product(conn, shop_b, 2)
    async with tenant_scope(app_pool, shop_a) as conn:
        cur = await conn.execute("UPDATE products SET title = 'stolen' WHERE shopify_id = 2")
        assert cur.rowcount == 0
        cur = await conn.execute("DELETE FROM products")
        assert cur.rowcount == 0
    # Moving one's own row to another shop is refused by WITH CHECK.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(app_pool, shop_b) as conn:
            await conn.execute("UPDATE products SET shop_id = %s", (shop_a,))
    async with tenant_scope(app_pool, shop_b) as conn:
        cur = await conn.execute("SELECT title, shop_id FROM products")
        assert await cur.fetchall() == [("p2", shop_b)]


async def test_app_role_cannot_disable_rls_and_owns_nothing(database: TestDatabase) -> None:
    async with await psycopg.AsyncConnection.connect(database.app_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert await cur.fetchone() == (False, False)
        cur = await conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
        )
        assert await cur.fetchone() == (0,)
        for table in TENANT_TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f"DROP POLICY tenant_isolation ON {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("SET row_security = off; SELECT 1 FROM products")
    async with await psycopg.AsyncConnection.connect(database.owner_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname = ANY(%s) ORDER BY relname",
            (list(TENANT_TABLES),),
        )
        rows = await cur.fetchall()
        assert len(rows) == len(TENANT_TABLES)
        assert all(r[1] and r[2] for r in rows), rows
