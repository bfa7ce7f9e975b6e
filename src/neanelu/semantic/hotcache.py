"""Loading a shop's vectors into the Redis hot cache (`neanelu search-warm`), from PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import numpy as np
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_all
from neanelu.search.hot import HotIndex
from neanelu.search.provider import EmbeddingProvider

PAGE = 1000


@dataclass(frozen=True, slots=True)
class _StoredVector:
    product_shopify_id: int
    embedding: list[float]


async def warm_shop(
    pool: AsyncConnectionPool[Conn], hot: HotIndex, shop_id: UUID, model: str
) -> int | None:
    """Copy the shop's vectors of `model` into Redis and mark it hot; the count (0: none to
    load, the shop stays cold), or None when this Redis could not take them all (no query
    engine, down, or failing midway: the shop stays cold)."""
    # Cold while loading (a search meanwhile asks PostgreSQL, never a half-loaded index), and
    # loaded into a fresh index: nothing deleted while the shop was cold survives there.
    if not await hot.reset(shop_id):
        return None
    after, loaded = -1, 0
    while True:
        async with tenant_scope(pool, shop_id) as conn:
            rows = await fetch_all(
                conn,
                _StoredVector,
                "SELECT product_shopify_id, embedding::real[] AS embedding FROM embeddings "
                "WHERE shop_id = %s AND model = %s AND product_shopify_id > %s "
                "ORDER BY product_shopify_id LIMIT %s",
                (shop_id, model, after, PAGE),
            )
        if not rows:
            break
        written = await hot.put(
            shop_id,
            [int(r.product_shopify_id) for r in rows],
            np.array([r.embedding for r in rows], np.float32),
        )
        if not written:
            return None  # the shop stays cold: never hot with part of its vectors
        loaded += len(rows)
        after = int(rows[-1].product_shopify_id)
    if not loaded:
        # Nothing embedded yet: cold (hot with no index, each search would find none).
        return 0
    # Hot once the query engine's graph holds them all (a search before would scan the rest).
    if not await hot.wait_indexed(shop_id):
        return None
    return loaded if await hot.mark_hot(shop_id) else None


_indexes: dict[tuple[int, str, int, int], HotIndex] = {}


def hot_index_for(redis: Redis, provider: EmbeddingProvider, idle_s: int = 0) -> HotIndex:
    """One HotIndex per Redis client, model and idle time in a process: it remembers that the
    indexes exist, or that this Redis has no query engine, instead of asking on every search.
    `idle_s`: SEARCH_HOT_IDLE_S (shops hot while searched; 0, only by hand)."""
    key = (id(redis), provider.model, provider.dimension, idle_s)
    found = _indexes.get(key)
    if found is None:
        found = _indexes[key] = HotIndex(redis, provider.model, provider.dimension, idle_s=idle_s)
    return found
