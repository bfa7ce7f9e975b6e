"""The Redis hot cache on a real Redis with the query engine: the same answers as PostgreSQL,
re-embeddings and deletions followed, shops kept apart by their TAG, and PostgreSQL answering
when Redis has no query engine or is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.search.hot import HotIndex
from neanelu.search.local.model import LocalProvider
from neanelu.semantic.hotcache import warm_shop
from neanelu.semantic.search import SearchFilter, SearchResult, embed_query, hybrid_search
from neanelu.semantic.service import embed_products
from shopify_emulator.server import free_port
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog


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
