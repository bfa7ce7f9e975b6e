"""The Redis hot cache on a real Redis with the query engine: the same answers as PostgreSQL,
re-embeddings and deletions followed, shops kept apart by their TAG, and PostgreSQL answering
when Redis has no query engine or is down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.handles import SearchSweepTick, ShopRef, search_sweep, warm_shop_job
from neanelu.search.hot import HotIndex, forget_shop
from neanelu.search.local.model import LocalProvider
from neanelu.search.providers import provider_for
from neanelu.semantic.hotcache import hot_index_for, warm_shop
from neanelu.semantic.search import SearchFilter, SearchResult, embed_query, hybrid_search
from neanelu.semantic.service import embed_products
from shopify_emulator.server import free_port
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog
from tests.service.support import RunJob, build_runtime, close_runtime, make_settings


@pytest.fixture
async def hot(query_engine_redis: str, local_provider: LocalProvider) -> AsyncIterator[HotIndex]:
    client = Redis.from_url(query_engine_redis)
    # Its own prefix per test: indexes and keys of other tests stay out of the way.
    yield HotIndex(
        client, local_provider.model, local_provider.dimension, prefix=f"t{uuid.uuid4().hex[:8]}"
    )
    await client.aclose()


def _shape(result: SearchResult) -> list[tuple[int, list[str], int | None]]:
    return [(h.product_id, h.matched, h.vector.rank if h.vector else None) for h in result.hits]


async def _search(
    pool: AsyncConnectionPool[Conn],
    provider: LocalProvider,
    shop: uuid.UUID,
    q: str,
    hot: HotIndex | None,
    f: SearchFilter | None = None,
) -> SearchResult:
    query = await embed_query(provider, q)
    async with tenant_scope(pool, shop) as conn:
        return await hybrid_search(conn, query, shop, f or SearchFilter(), hot=hot)


async def test_hot_shop_answers_from_redis_like_postgres_and_follows_changes(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, hot: HotIndex
) -> None:
    shop_a, shop_b = await create_shop(app_pool), await create_shop(app_pool)
    ids = {}
    for shop, base in ((shop_a, 1000), (shop_b, 2000)):
        async with tenant_scope(app_pool, shop) as conn:
            ids[shop] = await insert_catalog(conn, shop, base=base)
        await embed_products(app_pool, local_provider, shop, source="manual", hot=hot)
    cold = await _search(app_pool, local_provider, shop_a, "warm winter coat", hot)
    assert cold.vector_store == "postgres", "a shop not loaded is answered by PostgreSQL"
    assert await warm_shop(app_pool, hot, shop_a, local_provider.model) == 6
    assert await warm_shop(app_pool, hot, shop_b, local_provider.model) == 6
    for query in ("warm winter coat", "kitchen knife", "something to read by"):
        from_redis = await _search(app_pool, local_provider, shop_a, query, hot)
        from_pg = await _search(app_pool, local_provider, shop_a, query, None)
        assert from_redis.vector_store == "redis"
        assert from_pg.vector_store == "postgres"
        assert _shape(from_redis) == _shape(from_pg), query
        for a, b in zip(from_redis.hits, from_pg.hits, strict=True):
            if a.vector and b.vector:
                assert a.vector.similarity == pytest.approx(b.vector.similarity, abs=1e-4)
        # Shop B's identical catalog never answers for shop A.
        assert {h.product_id for h in from_redis.hits} <= set(ids[shop_a])
    # A filtered search needs the catalog: PostgreSQL answers it.
    filtered = await _search(app_pool, local_provider, shop_a, "coat", hot, SearchFilter(tag="men"))
    assert filtered.vector_store == "postgres"

    # Re-embedding reaches Redis; so does a deletion.
    async with tenant_scope(app_pool, shop_a) as conn:
        await conn.execute("UPDATE products SET title = 'Glass teapot' WHERE shopify_id = 1003")
        await conn.execute("UPDATE products SET deleted_at = now() WHERE shopify_id = 1005")
    await embed_products(
        app_pool, local_provider, shop_a, source="webhook", product_ids=[1003, 1005], hot=hot
    )
    teapot = await _search(app_pool, local_provider, shop_a, "a pot to brew tea", hot)
    assert teapot.vector_store == "redis"
    assert teapot.hits[0].product_id == 1003
    assert teapot.hits[0].vector is not None
    assert teapot.hits[0].vector.rank == 1
    coat = await _search(app_pool, local_provider, shop_a, "warm winter coat", hot)
    assert 1005 not in [h.product_id for h in coat.hits]
    redis_client = hot._redis  # the test looks at the keys themselves
    assert not await redis_client.exists(hot._doc(shop_a, 1005))
    assert await redis_client.exists(hot._doc(shop_b, 2005)), "the other shop's copy stays"


async def test_postgres_answers_when_redis_lacks_the_query_engine_or_is_down(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, redis_url: str
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await insert_catalog(conn, shop)
    plain_client = Redis.from_url(redis_url)
    plain = HotIndex(
        plain_client,
        local_provider.model,
        local_provider.dimension,
        prefix=f"t{uuid.uuid4().hex[:8]}",
    )
    await embed_products(app_pool, local_provider, shop, source="manual", hot=plain)
    assert await warm_shop(app_pool, plain, shop, local_provider.model) is None
    # The project's plain Redis has no FT.*: PostgreSQL answers, the same shape.
    expected = _shape(await _search(app_pool, local_provider, shop, "boots", None))
    no_module = await _search(app_pool, local_provider, shop, "boots", plain)
    assert no_module.vector_store == "postgres"
    assert _shape(no_module) == expected
    # Nothing listens on this port: Redis is down.
    down_client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    down = HotIndex(
        down_client,
        local_provider.model,
        local_provider.dimension,
    )
    result = await _search(app_pool, local_provider, shop, "boots", down)
    assert result.vector_store == "postgres"
    assert _shape(result) == expected
    await plain_client.aclose()
    await down_client.aclose()


async def _warm_two_shops(
    pool: AsyncConnectionPool[Conn], provider: LocalProvider, hot: HotIndex
) -> tuple[uuid.UUID, uuid.UUID]:
    shops = await create_shop(pool), await create_shop(pool)
    for shop, base in zip(shops, (1000, 2000), strict=True):
        async with tenant_scope(pool, shop) as conn:
            await insert_catalog(conn, shop, base=base)
        await embed_products(pool, provider, shop, source="manual", hot=hot)
        assert await warm_shop(pool, hot, shop, provider.model) == 6
    return shops


async def _ft(redis_client: Redis, *args: object) -> Any:
    return await redis_client.execute_command(*args)  # type: ignore[no-untyped-call]


async def _info(redis_client: Redis, index: str, field: bytes) -> object:
    info = await _ft(redis_client, "FT.INFO", index)
    return (info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=True)))[
        field
    ]


async def _keys(redis_client: Redis, pattern: str) -> list[bytes]:
    return [k async for k in redis_client.scan_iter(match=pattern)]


async def test_each_shop_has_its_own_index_and_a_purged_shop_is_forgotten(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, hot: HotIndex
) -> None:
    shop_a, shop_b = await _warm_two_shops(app_pool, local_provider, hot)
    redis_client = hot._redis
    for shop in (shop_a, shop_b):
        num_docs = await _info(redis_client, hot.index(shop), b"num_docs")
        assert int(str(num_docs)) == 6, "a shop's index holds its own products only"
    prefix = hot.index(shop_a).split(":idx:")[0]
    assert await forget_shop(redis_client, shop_a, prefix=prefix) == 1  # its hot mark
    assert await _keys(redis_client, f"{prefix}:*{shop_a.hex}*") == []
    names = {n.decode() for n in await _ft(redis_client, "FT._LIST")}
    assert hot.index(shop_a) not in names
    assert hot.index(shop_b) in names
    # The purged shop is cold; the other still answers from Redis, with its own products.
    assert (await _search(app_pool, local_provider, shop_a, "kitchen knife", hot)).vector_store == (
        "postgres"
    )
    kept = await _search(app_pool, local_provider, shop_b, "kitchen knife", hot)
    assert kept.vector_store == "redis"
    assert {h.product_id for h in kept.hits} <= set(range(2000, 2010))


async def test_warming_again_leaves_nothing_deleted_while_cold(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, hot: HotIndex
) -> None:
    shop, _ = await _warm_two_shops(app_pool, local_provider, hot)
    redis_client = hot._redis
    # A document Redis kept of a product gone since (the shop cold, so no removal reached it).
    await hot.cool(shop)
    stale = hot._doc(shop, 1999)
    vector = np.full(local_provider.dimension, 1 / np.sqrt(local_provider.dimension), np.float32)
    await redis_client.hset(
        stale, mapping={"shop": shop.hex, "product": 1999, "embedding": vector.tobytes()}
    )
    assert await warm_shop(app_pool, hot, shop, local_provider.model) == 6
    assert not await redis_client.exists(stale)
    assert int(str(await _info(redis_client, hot.index(shop), b"num_docs"))) == 6


async def test_a_hot_shop_whose_index_is_lost_goes_cold(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, hot: HotIndex
) -> None:
    shop, other = await _warm_two_shops(app_pool, local_provider, hot)
    redis_client = hot._redis
    await _ft(redis_client, "FT.DROPINDEX", hot.index(shop))
    result = await _search(app_pool, local_provider, shop, "warm winter coat", hot)
    assert result.vector_store == "postgres"
    assert not await hot.is_hot(shop), "marked hot with no index: cold until loaded again"
    assert await hot.is_hot(other)


async def test_the_shared_index_of_earlier_versions_is_retired(
    app_pool: AsyncConnectionPool[Conn],
    local_provider: LocalProvider,
    query_engine_redis: str,
) -> None:
    client = Redis.from_url(query_engine_redis)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    first = HotIndex(client, local_provider.model, local_provider.dimension, prefix=prefix)
    shop, _ = await _warm_two_shops(app_pool, local_provider, first)
    shared = first.index(shop).rsplit(":", 1)[0]
    doc_prefix = first._doc(shop, 0).rsplit(":", 2)[0] + ":"
    # What an earlier version left: one index over every shop's documents, shops marked hot.
    await _ft(
        client,
        "FT.CREATE",
        shared,
        "ON",
        "HASH",
        "PREFIX",
        "1",
        doc_prefix,
        "SCHEMA",
        "shop",
        "TAG",
    )
    for _ in range(200):  # an index over existing keys fills in the background
        if await _info(client, shared, b"indexing") in (b"0", 0, "0"):
            break
        await asyncio.sleep(0.05)
    upgraded = HotIndex(client, local_provider.model, local_provider.dimension, prefix=prefix)
    assert await upgraded.ensure()
    names = {n.decode() for n in await _ft(client, "FT._LIST")}
    assert shared not in names
    assert not await upgraded.is_hot(shop), "every shop waits to be loaded into its own index"
    assert await _keys(client, f"{doc_prefix}*") == [], "the shared index's documents are gone"
    result = await _search(app_pool, local_provider, shop, "warm winter coat", upgraded)
    assert result.vector_store == "postgres"
    await client.aclose()


async def test_a_searched_cold_shop_is_loaded_and_one_not_searched_is_dropped(
    database: TestDatabase, query_engine_redis: str, key_prefix: str, run_job: RunJob
) -> None:
    """SEARCH_HOT_IDLE_S > 0: the worker's jobs, on a Redis with the query engine."""
    rt = await build_runtime(
        make_settings(SEARCH_HOT_IDLE_S=2), database, query_engine_redis, key_prefix
    )
    try:
        provider = provider_for(rt.settings)
        assert isinstance(provider, LocalProvider)
        hot = hot_index_for(rt.redis, provider, rt.settings.search_hot_idle_s)
        shop = await create_shop(rt.pool)
        async with tenant_scope(rt.pool, shop) as conn:
            await insert_catalog(conn, shop)
        await embed_products(rt.pool, provider, shop, source="manual", hot=hot)

        async def warm_jobs() -> int:
            async with tenant_scope(rt.pool, shop) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM outbox WHERE task = 'search.warm' "
                    "AND payload->>'shop_id' = %s",
                    (str(shop),),
                )
                row = await cur.fetchone()
            return int(row[0]) if row else 0

        first = await _search(rt.pool, provider, shop, "warm winter coat", hot)
        assert first.vector_store == "postgres"
        assert await warm_jobs() == 1, "a search of a cold shop asks for its loading"
        await _search(rt.pool, provider, shop, "kitchen knife", hot)
        assert await warm_jobs() == 1, "and asks once"
        await run_job(rt, warm_shop_job, ShopRef(shop_id=str(shop)))
        warm = await _search(rt.pool, provider, shop, "warm winter coat", hot)
        assert warm.vector_store == "redis"
        assert _shape(warm) == _shape(first)
        # Searched within its idle time: the sweep keeps it.
        await run_job(rt, search_sweep, SearchSweepTick(period=1))
        assert await hot.is_hot(shop)
        await asyncio.sleep(2.5)  # SEARCH_HOT_IDLE_S without a search
        await run_job(rt, search_sweep, SearchSweepTick(period=2))
        assert not await hot.is_hot(shop)
        names = {n.decode() for n in await _ft(rt.redis, "FT._LIST")}
        assert hot.index(shop) not in names, "an idle shop's vectors leave Redis"
        assert (await _search(rt.pool, provider, shop, "kitchen knife", hot)).vector_store == (
            "postgres"
        )
    finally:
        await close_runtime(rt)


async def test_a_shop_with_nothing_embedded_stays_cold(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider, hot: HotIndex
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await insert_catalog(conn, shop)  # products, but no embedding run yet
    assert await warm_shop(app_pool, hot, shop, local_provider.model) == 0
    assert not await hot.is_hot(shop)
    result = await _search(app_pool, local_provider, shop, "warm winter coat", hot)
    assert result.vector_store == "postgres"
