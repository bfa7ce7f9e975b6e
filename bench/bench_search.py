"""Benchmark: top-10 vector search per tenant, PostgreSQL (pgvector) and the Redis hot cache.

PRODUCTS (default 1,000,000) synthetic unit vectors of DIM 384 (clustered, like embeddings) over
TENANTS (20) shops with Zipf-distributed sizes. Shops with at least OWN_PARTITION_MIN vectors get
their own partition and HNSW index (`app_embeddings_own_partition`), the rest share the default
partition and are searched exactly. QUERIES per tenant are compared with numpy's exact top 10.
The same vectors go into the Redis stand-in (query engine) for the Redis figures; the end-to-end
figure adds embedding the query text with the local model. Last line:
`recall_at_10=<worst tenant> p95_ms_sql=... p95_ms_redis=... p95_ms_e2e=...`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from redis.asyncio import Redis

from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres
from neanelu.db.pool import PoolSizes, create_pool, tenant_scope
from neanelu.search.hot import HotIndex
from neanelu.search.local.model import LocalProvider
from neanelu.search.standin import start_query_engine_redis
from neanelu.search.store import vector_literal
from neanelu.semantic.search import EF_SEARCH

ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = int(os.environ.get("PRODUCTS", "1000000"))
TENANTS = int(os.environ.get("TENANTS", "20"))
QUERIES = int(os.environ.get("QUERIES", "50"))
OWN_PARTITION_MIN = int(os.environ.get("OWN_PARTITION_MIN", "20000"))
DIM = 384
MODEL = "bench/synthetic-384"
DB = "bench_search"


def zipf_sizes(total: int, tenants: int) -> list[int]:
    weights = 1.0 / np.arange(1, tenants + 1)
    sizes = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(int)
    sizes[0] += total - int(sizes.sum())
    return [int(s) for s in sizes]


def vectors(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    picks = centers[rng.integers(0, len(centers), n)]
    v = picks + rng.normal(0, 0.35, (n, DIM)).astype(np.float32)
    unit: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return unit


def copy_rows(shop: uuid.UUID, vecs: np.ndarray, first_id: int) -> bytes:
    """PostgreSQL's binary COPY rows: shop, model, product, dimension, hash, vector."""
    out = bytearray()
    model, digest = MODEL.encode(), hashlib.sha256(b"bench").digest()
    for i, v in enumerate(vecs, start=first_id):
        vec = struct.pack(">hh", DIM, 0) + v.astype(">f4").tobytes()
        out += struct.pack(">h", 6)
        for field in (shop.bytes, model, struct.pack(">q", i), struct.pack(">i", DIM), digest, vec):
            out += struct.pack(">i", len(field)) + field
    return bytes(out)


def load(pg: EmbeddedPostgres, data: dict[uuid.UUID, np.ndarray]) -> None:
    with psycopg.connect(pg.url(database=DB), autocommit=True) as su:
        for shop in data:
            su.execute(
                "INSERT INTO shops (id, domain) VALUES (%s, %s)",
                (shop, f"b{shop.hex[:12]}.myshopify.com"),
            )
    with psycopg.connect(pg.url(OWNER_ROLE, DB), autocommit=True) as owner:
        for shop, vecs in data.items():
            if len(vecs) >= OWN_PARTITION_MIN:
                owner.execute("SELECT app_embeddings_own_partition(%s, '64MB')", (shop,))
    # The superuser loads (COPY FROM is refused under row-level security for everyone else).
    with psycopg.connect(pg.url(database=DB), autocommit=True) as su:
        for shop, vecs in data.items():
            with su.cursor().copy(
                "COPY embeddings (shop_id, model, product_shopify_id, dimension, content_hash, "
                "embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                for start in range(0, len(vecs), 20_000):
                    copy.write(copy_rows(shop, vecs[start : start + 20_000], start + 1))
                copy.write(struct.pack(">h", -1))
        su.execute("ANALYZE embeddings")
    started = time.perf_counter()
    with psycopg.connect(pg.url(OWNER_ROLE, DB), autocommit=True) as owner:
        for shop, vecs in data.items():
            if len(vecs) >= OWN_PARTITION_MIN:
                owner.execute("SELECT app_embeddings_own_partition(%s, '1GB')", (shop,))
    print(f"HNSW indexes built in {time.perf_counter() - started:.1f}s")


def exact_top10(vecs: np.ndarray, q: np.ndarray) -> set[int]:
    scores = vecs @ q
    top = np.argpartition(-scores, min(10, len(scores) - 1))[:10]
    return {int(i) + 1 for i in top}


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


async def measure(
    pg: EmbeddedPostgres,
    data: dict[uuid.UUID, np.ndarray],
    redis_url: str,
    rng: np.random.Generator,
) -> None:
    pool = create_pool(pg.url(APP_ROLE, DB), PoolSizes(1, 2), name="bench-search")
    await pool.open(wait=True)
    redis = Redis.from_url(redis_url)
    hot = HotIndex(redis, MODEL, DIM, prefix="bench")
    assert await hot.ensure(), "the Redis stand-in has no query engine"
    for shop, vecs in data.items():
        for start in range(0, len(vecs), 5000):
            ids = list(range(start + 1, start + 1 + len(vecs[start : start + 5000])))
            await hot.put(shop, ids, vecs[start : start + 5000])
        await hot.mark_hot(shop)
    worst, sql_ms, redis_ms = 1.0, [], []
    # The model is a literal, as in the search itself: HNSW indexes are partial per model, and a
    # generic plan over a parameter could not prove the index's predicate.
    query_sql = (
        "SELECT product_shopify_id FROM embeddings WHERE shop_id = %s AND model = '"
        + MODEL
        + "' AND dimension = 384 ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 10"
    )
    for shop, vecs in data.items():
        hits = 0
        queries = vecs[rng.integers(0, len(vecs), QUERIES)] + rng.normal(0, 0.1, (QUERIES, DIM))
        for q in queries.astype(np.float32):
            q /= np.linalg.norm(q)
            truth = exact_top10(vecs, q)
            async with tenant_scope(pool, shop) as conn:
                await conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
                started = time.perf_counter()
                cur = await conn.execute(query_sql, (shop, vector_literal(q)))
                got = {int(r[0]) for r in await cur.fetchall()}
                sql_ms.append((time.perf_counter() - started) * 1000)
            hits += len(got & truth)
            started = time.perf_counter()
            await hot.knn(shop, q, 10)
            redis_ms.append((time.perf_counter() - started) * 1000)
        recall = hits / (10 * QUERIES)
        worst = min(worst, recall)
        print(f"tenant {shop.hex[:8]} size {len(vecs)} recall@10 {recall:.3f}")
    provider = LocalProvider()
    e2e_ms = []
    biggest = next(iter(data))
    for text in ("warm winter coat", "kitchen knife", "red summer dress", "desk lamp") * 10:
        started = time.perf_counter()
        q = provider.embed([text]).vectors[0]
        async with tenant_scope(pool, biggest) as conn:
            await conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
            await conn.execute(query_sql, (biggest, vector_literal(q)))
        e2e_ms.append((time.perf_counter() - started) * 1000)
    await redis.aclose()
    await pool.close()
    print(
        f"recall_at_10={worst:.3f} p95_ms_sql={p95(sql_ms):.2f} p95_ms_redis={p95(redis_ms):.2f} "
        f"p95_ms_e2e={p95(e2e_ms):.2f}"
    )


def main() -> None:
    rng = np.random.default_rng(20261201)
    pg = start_postgres(ROOT / ".data")
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB} OWNER {OWNER_ROLE}")
    migrate.upgrade(pg.url(OWNER_ROLE, DB), APP_ROLE)
    centers = rng.normal(0, 1, (256, DIM)).astype(np.float32)
    data = {uuid.uuid4(): vectors(rng, n, centers) for n in zipf_sizes(PRODUCTS, TENANTS)}
    print(f"{PRODUCTS} vectors over {TENANTS} tenants: sizes {[len(v) for v in data.values()]}")
    started = time.perf_counter()
    load(pg, data)
    print(f"loaded in {time.perf_counter() - started:.1f}s")
    server = start_query_engine_redis(ROOT / ".data" / "bench-search-redis")
    try:
        asyncio.run(measure(pg, data, server.url, rng))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
