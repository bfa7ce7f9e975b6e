"""A shop's own partition is built with its indexes checked for reach: stored vectors searched by
themselves, and an index that reaches too little built again."""

from __future__ import annotations

import uuid

import psycopg
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.semantic.reach import build_own_partition, measure_reach
from tests.databases import TestDatabase
from tests.factories import create_shop

HASH = bytes(32)


async def _vectors(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID, model: str, rows: list[str]
) -> None:
    async with tenant_scope(pool, shop) as conn:
        for pid, vec in enumerate(rows, start=1):
            await conn.execute(
                "INSERT INTO embeddings (shop_id, model, product_shopify_id, dimension, "
                "content_hash, embedding) VALUES (%s, %s, %s, %s, %s, %s::vector)",
                (shop, model, pid, vec.count(",") + 1, HASH, vec),
            )


async def _index_oids(owner: psycopg.AsyncConnection, part: str) -> dict[str, int]:
    cur = await owner.execute(
        "SELECT i.indexrelid::regclass::text, i.indexrelid::int, pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i WHERE i.indrelid = %s::regclass",
        (part,),
    )
    return {
        ("m2" if "'m2'" in d else "m1"): oid for _, oid, d in await cur.fetchall() if "hnsw" in d
    }


async def test_a_healthy_build_reaches_every_sampled_vector(
    database: TestDatabase, app_pool: AsyncConnectionPool[Conn]
) -> None:
    shop, other = await create_shop(app_pool), await create_shop(app_pool)
    await _vectors(app_pool, shop, "m1", [f"[{i},1,0]" for i in range(1, 41)])
    await _vectors(app_pool, shop, "m2", [f"[{i},1,0,{i % 3}]" for i in range(1, 31)])
    # Another shop's identical vectors are never what a vector of this shop finds.
    await _vectors(app_pool, other, "m1", [f"[{i},1,0]" for i in range(1, 41)])
    async with await psycopg.AsyncConnection.connect(database.owner_url, autocommit=True) as owner:
        built = await build_own_partition(owner, shop, "64MB")
        assert built.partition == f"embeddings_{shop.hex}"
        assert built.rebuilds == 0
        by_model = {r.model: r for r in built.reach}
        assert (by_model["m1"].sampled, by_model["m1"].reached) == (40, 40)
        assert (by_model["m2"].sampled, by_model["m2"].reached, by_model["m2"].dimension) == (
            30,
            30,
            4,
        )
        assert built.short(0.995) == []
        # A sample smaller than the shop is what is searched.
        assert (await measure_reach(owner, shop, "m1", 3, sample=7)).sampled == 7


async def test_duplicates_count_as_reached(
    database: TestDatabase, app_pool: AsyncConnectionPool[Conn]
) -> None:
    # Fifteen products with one vector: a top 10 cannot hold all of them, but each finds its twin.
    shop = await create_shop(app_pool)
    await _vectors(app_pool, shop, "m1", ["[1,2,3]"] * 15 + [f"[{i},0,1]" for i in range(1, 11)])
    async with await psycopg.AsyncConnection.connect(database.owner_url, autocommit=True) as owner:
        built = await build_own_partition(owner, shop, "64MB")
        assert [(r.sampled, r.reached) for r in built.reach] == [(25, 25)]


async def test_an_index_below_the_floor_is_built_again_within_the_allowance(
    database: TestDatabase, app_pool: AsyncConnectionPool[Conn]
) -> None:
    shop = await create_shop(app_pool)
    await _vectors(app_pool, shop, "m1", [f"[{i},1,0]" for i in range(1, 21)])
    await _vectors(app_pool, shop, "m2", [f"[{i},1,0,1]" for i in range(1, 21)])
    async with await psycopg.AsyncConnection.connect(database.owner_url, autocommit=True) as owner:
        first = await build_own_partition(owner, shop, "64MB")
        before = await _index_oids(owner, first.partition)
        assert set(before) == {"m1", "m2"}
        # No index reaches more than all: every one falls short, and one rebuild is allowed.
        again = await build_own_partition(owner, shop, "64MB", min_reach=1.01, rebuilds=1)
        after = await _index_oids(owner, again.partition)
        assert again.rebuilds == 1
        assert after["m1"] != before["m1"], "the first model's index was built anew"
        assert after["m2"] == before["m2"], "the allowance was spent: the second stays"
        assert [r.model for r in again.short(1.01)] == ["m1", "m2"]
        # The rebuilt index serves the search as the first did.
        assert (await measure_reach(owner, shop, "m1", 3)).reached == 20
