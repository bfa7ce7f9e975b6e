"""The embeddings schema on the real server: forced RLS through the parent and every partition,
one vector per (shop, model, product), and a large shop moved to its own partition with HNSW."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope, tenant_scope
from tests.databases import TestDatabase
from tests.factories import create_shop

HASH = bytes(32)


async def _insert(conn: Conn, shop: uuid.UUID, pid: int, vec: str, model: str = "m1") -> None:
    dims = vec.count(",") + 1
    await conn.execute(
        "INSERT INTO embeddings (shop_id, model, product_shopify_id, dimension, content_hash, "
        "embedding) VALUES (%s, %s, %s, %s, %s, %s::vector)",
        (shop, model, pid, dims, HASH, vec),
    )


async def test_app_role_sees_and_writes_only_its_shops_vectors(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop_a, shop_b = await create_shop(app_pool), await create_shop(app_pool)
    async with tenant_scope(app_pool, shop_a) as conn:
        await _insert(conn, shop_a, 1, "[1,0,0]")
    async with tenant_scope(app_pool, shop_b) as conn:
        await _insert(conn, shop_b, 2, "[0,1,0]")
        cur = await conn.execute("SELECT product_shopify_id FROM embeddings")
        assert await cur.fetchall() == [(2,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        async with tenant_scope(app_pool, shop_a) as conn:
            await _insert(conn, shop_b, 3, "[0,0,1]")
    async with global_scope(app_pool) as conn:
        for table in ("embeddings", "search_documents", "search_settings", "embedding_runs"):
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            assert await cur.fetchone() == (0,), table
    # The app role reaches vectors only through the parent, never a partition directly.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with tenant_scope(app_pool, shop_a) as conn:
            await conn.execute("SELECT count(*) FROM embeddings_default")


async def test_a_vector_must_have_its_declared_dimension(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)
    with pytest.raises(psycopg.errors.CheckViolation):
        async with tenant_scope(app_pool, shop) as conn:
            await conn.execute(
                "INSERT INTO embeddings (shop_id, model, product_shopify_id, dimension, "
                "content_hash, embedding) VALUES (%s, 'm', 1, 4, %s, '[1,2,3]')",
                (shop, HASH),
            )


async def test_unknown_text_search_configuration_is_refused(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await conn.execute(
            "INSERT INTO search_settings (shop_id, text_config) VALUES (%s, 'romanian')", (shop,)
        )
    with pytest.raises(psycopg.errors.UndefinedObject, match="klingon"):
        async with tenant_scope(app_pool, shop) as conn:
            await conn.execute(
                "UPDATE search_settings SET text_config = 'klingon' WHERE shop_id = %s", (shop,)
            )


async def test_own_partition_moves_rows_keeps_isolation_and_uses_hnsw(
    database: TestDatabase, app_pool: AsyncConnectionPool[Conn]
) -> None:
    big, small = await create_shop(app_pool), await create_shop(app_pool)
    async with tenant_scope(app_pool, big) as conn:
        for i in range(1, 41):
            await _insert(conn, big, i, f"[{i},1,0]")
            await _insert(conn, big, i, f"[{i},1,0,0]", model="m2")
    async with tenant_scope(app_pool, small) as conn:
        await _insert(conn, small, 1, "[1,1,0]")

    with psycopg.connect(database.owner_url) as owner:
        part = owner.execute("SELECT app_embeddings_own_partition(%s, '64MB')", (big,)).fetchone()
        owner.commit()
        assert part == (f"embeddings_{big.hex}",)
        # Idempotent: a second run changes nothing.
        owner.execute("SELECT app_embeddings_own_partition(%s, '64MB')", (big,))
        owner.commit()
        indexes = owner.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
            (f"embeddings_{big.hex}",),
        ).fetchall()
        assert len(indexes) == 2, "one HNSW index per model"
        assert all("vector_cosine_ops" in i[0] for i in indexes)
        # The build chosen by measurement (migration 0018, docs/search.md).
        assert all("m='32'" in i[0] and "ef_construction='400'" in i[0] for i in indexes), indexes
        forced = owner.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s",
            (f"embeddings_{big.hex}",),
        ).fetchone()
        assert forced == (True, True)
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="no shop"):
            owner.execute("SELECT app_embeddings_own_partition(%s, '64MB')", (uuid.uuid4(),))

    async with tenant_scope(app_pool, big) as conn:
        cur = await conn.execute("SELECT count(*), min(tableoid::regclass::text) FROM embeddings")
        assert await cur.fetchone() == (80, f"embeddings_{big.hex}")
        # On 80 rows a sort is cheaper than the index; the question is whether the partial
        # HNSW index can serve the query at all (PostgreSQL 16 with pgvector 0.6 sorts a bitmap
        # scan unless told not to: `make test-pg16`).
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        await conn.execute("SET LOCAL enable_sort = off")
        cur = await conn.execute(
            "EXPLAIN SELECT product_shopify_id FROM embeddings WHERE shop_id = %s "
            "AND model = 'm1' AND dimension = 3 ORDER BY embedding::vector(3) <=> '[1,1,0]' LIMIT 5",
            (big,),
        )
        plan = "\n".join(r[0] for r in await cur.fetchall())
        assert "_hnsw" in plan, plan
    async with tenant_scope(app_pool, small) as conn:
        cur = await conn.execute("SELECT shop_id, tableoid::regclass::text FROM embeddings")
        assert await cur.fetchall() == [(small, "embeddings_default")]
