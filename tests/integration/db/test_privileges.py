"""What the application role may do, on the real server: only what each of its paths needs.

It reads no other shop's sealed tokens, writes no other shop's row, and inserts no catalog row
under a shop that does not exist, by any statement it can run; the tenant's own paths still work.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.shops import repository as shops
from neanelu.shops.service import hash_api_key
from neanelu.vault import Sealed
from tests.databases import TestDatabase
from tests.factories import create_shop

SECRET_COLUMNS = ("access_token_ct", "refresh_token_ct", "api_key_hash")
CATALOG = {
    "products": "(shop_id, shopify_id) VALUES (%s, 1)",
    "variants": "(shop_id, shopify_id, product_shopify_id) VALUES (%s, 1, 1)",
    "inventory_levels": "(shop_id, shopify_id, inventory_item_id, location_id) VALUES (%s, 1, 1, 1)",
}


async def shop_with_tokens(pool: AsyncConnectionPool[Conn], name: str) -> uuid.UUID:
    shop_id = await create_shop(pool, f"{name}.myshopify.com")
    async with tenant_scope(pool, shop_id) as conn:
        await shops.store_tokens(
            conn,
            shop_id,
            access=Sealed(f"sealed-access-{name}".encode(), "k1"),
            access_expires_at=None,
            refresh=Sealed(f"sealed-refresh-{name}".encode(), "k1"),
            refresh_expires_at=None,
        )
        await shops.set_api_key_hash(conn, shop_id, hash_api_key(f"nk_{name}"))
    return shop_id


def owner_row(database: TestDatabase, shop_id: uuid.UUID) -> tuple[object, ...] | None:
    with psycopg.connect(database.owner_url) as conn:
        return conn.execute(
            "SELECT status, access_token_ct, api_key_hash, domain FROM shops WHERE id = %s",
            (shop_id,),
        ).fetchone()


async def test_app_role_reads_no_other_shops_sealed_tokens(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    a = await shop_with_tokens(app_pool, "tok-a")
    b = await shop_with_tokens(app_pool, "tok-b")
    # The secret columns are not readable at all, in any scope.
    for scope in (None, a):
        for column in (*SECRET_COLUMNS, "*"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with (
                    global_scope(app_pool) if scope is None else tenant_scope(app_pool, scope)
                ) as conn:
                    await conn.execute(f"SELECT {column} FROM shops")
    # In shop A's scope: A's tokens, never B's, whichever way they are asked for.
    async with tenant_scope(app_pool, a) as conn:
        own, other = await shops.get(conn, a), await shops.get(conn, b)
        cur = await conn.execute("SELECT * FROM app_shop_sealed_tokens(%s)", (b,))
        assert await cur.fetchall() == []
    assert own is not None
    assert own.access_token is not None
    assert own.refresh_token is not None
    assert own.access_token.ciphertext == b"sealed-access-tok-a"
    assert other is not None
    assert other.access_token is None
    assert other.refresh_token is None
    # Without a tenant: nobody's.
    async with global_scope(app_pool) as conn:
        cur = await conn.execute("SELECT * FROM app_shop_sealed_tokens(%s)", (a,))
        assert await cur.fetchall() == []
        row = await shops.get(conn, a)
        assert row is not None
        assert row.access_token is None
        # API keys authenticate without the hashes being readable.
        assert await shops.find_by_api_key_hash(conn, hash_api_key("nk_tok-b")) == shops.KeyHolder(
            b,
            "tok-b.myshopify.com",
            "installed",
        )


async def test_app_role_writes_no_other_shops_row(
    app_pool: AsyncConnectionPool[Conn], database: TestDatabase
) -> None:
    a = await shop_with_tokens(app_pool, "row-a")
    b = await shop_with_tokens(app_pool, "row-b")
    before = owner_row(database, b)
    stolen = hash_api_key("nk_attacker")
    async with tenant_scope(app_pool, a) as conn:
        cur = await conn.execute(
            "UPDATE shops SET api_key_hash = %s, status = 'uninstalled' WHERE id = %s", (stolen, b)
        )
        assert cur.rowcount == 0
        cur = await conn.execute("UPDATE shops SET plan_name = 'x'")  # no WHERE: its own row only
        assert cur.rowcount == 1
        cur = await conn.execute("SELECT id FROM shops WHERE id = %s FOR UPDATE", (b,))
        assert await cur.fetchall() == []
        cur = await conn.execute("DELETE FROM shops WHERE id = %s", (b,))
        assert cur.rowcount == 0
        # Its own row is deleted only once uninstalled (the purge), never while installed.
        cur = await conn.execute("DELETE FROM shops WHERE id = %s", (a,))
        assert cur.rowcount == 0
        with pytest.raises(shops.ShopNotWritten):
            await shops.set_api_key_hash(conn, b, stolen)
    async with global_scope(app_pool) as conn:
        cur = await conn.execute("UPDATE shops SET api_key_hash = %s", (stolen,))
        assert cur.rowcount == 0
    for statement in (
        "UPDATE shops SET domain = 'evil.myshopify.com'",
        "UPDATE shops SET id = gen_random_uuid()",
        "INSERT INTO shops (domain) VALUES ('new.myshopify.com')",
        "TRUNCATE shops",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with tenant_scope(app_pool, a) as conn:
                await conn.execute(statement)
    assert owner_row(database, b) == before
    # Cross-shop writes exist only as the install's lookup by domain, which creates or finds.
    async with global_scope(app_pool) as conn:
        assert await shops.ensure(conn, "row-b.myshopify.com") == (b, False)
    assert owner_row(database, b) == before


async def test_app_role_inserts_no_catalog_row_for_a_missing_shop(
    app_pool: AsyncConnectionPool[Conn], database: TestDatabase
) -> None:
    real = await create_shop(app_pool)
    ghost = uuid.uuid4()
    # Foreign keys cannot be turned off.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with global_scope(app_pool) as conn:
            await conn.execute("SET LOCAL session_replication_role = replica")
    for table, values in CATALOG.items():
        # The tenant set to a shop that does not exist, as any caller may set it.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            async with tenant_scope(app_pool, ghost) as conn:
                await conn.execute(f"INSERT INTO {table} {values}", (ghost,))
        # The upsert the merges and webhooks use.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            async with tenant_scope(app_pool, ghost) as conn:
                await conn.execute(f"INSERT INTO {table} {values} ON CONFLICT DO NOTHING", (ghost,))
    # A batch of rows, one of them switching the tenant midway: every row's shop is checked.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        async with tenant_scope(app_pool, real) as conn:
            await conn.execute(
                "INSERT INTO products (shop_id, shopify_id) "
                "SELECT CASE WHEN n = 3 THEN %s::uuid ELSE %s::uuid END, n FROM generate_series(1, 5) n "
                "WHERE n < 3 OR set_config('app.current_shop_id', "
                "CASE WHEN n = 3 THEN %s ELSE %s END, true) IS NOT NULL",
                (ghost, real, str(ghost), str(real)),
            )
    # Moving its own row to a shop that does not exist, the same way.
    async with tenant_scope(app_pool, real) as conn:
        await conn.execute("INSERT INTO products (shop_id, shopify_id) VALUES (%s, 9)", (real,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        async with tenant_scope(app_pool, real) as conn:
            await conn.execute(
                "UPDATE products SET shop_id = %s::uuid, "
                "title = set_config('app.current_shop_id', %s, true)",
                (ghost, str(ghost)),
            )
    # COPY is refused under row-level security; the owner's rows are checked the same way.
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        async with tenant_scope(app_pool, ghost) as conn:
            async with conn.cursor().copy("COPY products (shop_id, shopify_id) FROM STDIN") as cp:
                await cp.write_row((ghost, 1))
    with psycopg.connect(database.owner_url) as conn:
        conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(ghost),))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO products (shop_id, shopify_id) VALUES (%s, 1)", (ghost,))
    with psycopg.connect(database.superuser_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM products p WHERE NOT EXISTS "
            "(SELECT 1 FROM shops s WHERE s.id = p.shop_id)"
        ).fetchone()
    assert left == (0,)


async def waiting_for_a_lock(database: TestDatabase, statement: str) -> None:
    """Until a session running `statement` waits for a lock (what a blocked purge does)."""
    async with await psycopg.AsyncConnection.connect(
        database.superuser_url, autocommit=True
    ) as conn:
        for _ in range(1000):
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                (statement + "%",),
            )
            if await cur.fetchone() == (1,):
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"no session running {statement!r} waited for a lock")


async def test_shop_deleted_with_its_catalog_and_never_under_a_batch(
    app_pool: AsyncConnectionPool[Conn], database: TestDatabase
) -> None:
    """What the foreign keys' cascade and lock did: a purge takes the catalog, waits for a batch
    that is writing it, and a batch after the purge fails instead of leaving orphans."""
    gone, kept = await create_shop(app_pool), await create_shop(app_pool)
    for shop_id in (gone, kept):
        async with tenant_scope(app_pool, shop_id) as conn:
            for table, values in CATALOG.items():
                await conn.execute(f"INSERT INTO {table} {values}", (shop_id,))
    async with tenant_scope(app_pool, gone) as conn:
        await shops.mark_uninstalled(conn, gone, datetime.now().astimezone())

    purged = asyncio.Event()
    async with tenant_scope(app_pool, gone) as batch:
        # A merge batch in flight: it wrote rows, and holds the shop until it commits.
        await batch.execute(
            "INSERT INTO products (shop_id, shopify_id) SELECT %s, n FROM generate_series(2, 50) n",
            (gone,),
        )

        async def purge() -> None:
            async with tenant_scope(app_pool, gone) as conn:
                assert await shops.delete(conn, gone)
                cur = await conn.execute("SELECT current_setting('app.current_shop_id')")
                assert await cur.fetchone() == (str(gone),)  # the caller's tenant, kept
            purged.set()

        purging = asyncio.create_task(purge())
        await waiting_for_a_lock(database, "DELETE FROM shops")
        assert not purged.is_set(), "the purge must wait for the batch that holds the shop"
    await purging
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        async with tenant_scope(app_pool, gone) as conn:
            await conn.execute(
                "INSERT INTO products (shop_id, shopify_id) VALUES (%s, 99)", (gone,)
            )
    with psycopg.connect(database.superuser_url) as admin:
        for table in CATALOG:
            by_shop: dict[Any, int] = dict(
                admin.execute(f"SELECT shop_id, count(*) FROM {table} GROUP BY 1").fetchall()
            )
            assert by_shop == {kept: 1}, table
