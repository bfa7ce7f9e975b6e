"""The Batch API path's own cost: PRODUCTS (default 20,000) products embedded through the OpenAI
stand-in (a process of its own, over HTTP, with the real SDK) as a batch run (submit, dispatch, poll
until done), against the same catalog on another shop embedded through synchronous embeddings
calls (the baseline, one call per page of 256). The stand-in answers at once, so this measures
neanelu's side: request rows, JSONL, uploads, result files, joins, vector writes. `peak_rss_mb` is
this process's (the stand-in's own memory is not in it).

Last line: `products=... batch_products_per_s=... sync_products_per_s=... ratio_to_sync=...
batches=... requests=... peak_rss_mb=...`.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from pydantic import SecretStr

from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres
from neanelu.db.pool import PoolSizes, create_pool, tenant_scope
from neanelu.search.openai_provider import OpenAIOptions, OpenAIProvider
from neanelu.semantic.batches import BatchOptions, run_batch_job
from neanelu.semantic.service import embed_products

ROOT = Path(__file__).resolve().parent.parent
DB = "bench_embed_batch"
PRODUCTS = int(os.environ.get("PRODUCTS", "20000"))
KEY = f"sk-bench-{uuid.uuid4().hex}"


def load(pg: EmbeddedPostgres, shops: list[uuid.UUID]) -> None:
    # The superuser writes the catalog (RLS binds every other role to one shop per transaction).
    with psycopg.connect(pg.url(database=DB), autocommit=True) as su:
        for shop in shops:
            su.execute(
                "INSERT INTO shops (id, domain) VALUES (%s, %s)",
                (shop, f"b{shop.hex[:12]}.myshopify.com"),
            )
            su.execute(
                "INSERT INTO products (shop_id, shopify_id, title, vendor, product_type, status, "
                "tags, description) SELECT %s, g, 'Product ' || g || ' in colour ' || (g %% 17), "
                "'Vendor ' || (g %% 50), 'Type ' || (g %% 30), 'ACTIVE', ARRAY['t' || (g %% 7)], "
                "'<p>A description of product ' || g || ' with a few more words for weight.</p>' "
                "FROM generate_series(1, %s) AS g",
                (shop, PRODUCTS),
            )


async def measure(pg: EmbeddedPostgres, shops: list[uuid.UUID], base_url: str) -> None:
    pool = create_pool(pg.url(APP_ROLE, DB), PoolSizes(1, 4), name="bench-embed-batch")
    await pool.open(wait=True)
    provider = OpenAIProvider(
        OpenAIOptions(
            api_key=SecretStr(KEY),
            model="text-embedding-3-small",
            dimension=1536,
            base_url=base_url,
        )
    )
    batch_shop, sync_shop = shops
    try:
        started = time.perf_counter()
        steps = 0
        while True:
            steps += 1
            progress = await run_batch_job(
                pool, provider, batch_shop, "bench", source="manual", options=BatchOptions()
            )
            if progress.done:
                break
        batch_s = time.perf_counter() - started
        started = time.perf_counter()
        figures = await embed_products(pool, provider, sync_shop, source="manual")
        sync_s = time.perf_counter() - started
        async with tenant_scope(pool, batch_shop) as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM embedding_batches), "
                "(SELECT count(*) FROM embedding_requests), (SELECT count(*) FROM embeddings)"
            )
            row = await cur.fetchone()
        assert row is not None
        batches, requests, stored = row
        assert stored == PRODUCTS, f"{stored} vectors stored for {PRODUCTS} products"
        assert figures.embedded == PRODUCTS
        print(f"batch run: {steps} steps, {batch_s:.1f}s; synchronous calls: {sync_s:.1f}s")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"products={PRODUCTS} batch_products_per_s={PRODUCTS / batch_s:.0f} "
            f"sync_products_per_s={PRODUCTS / sync_s:.0f} ratio_to_sync={sync_s / batch_s:.3f} "
            f"batches={batches} requests={requests} peak_rss_mb={rss_mb:.1f}"
        )
    finally:
        await provider.aclose()
        await pool.close()


def main() -> None:
    pg = start_postgres(ROOT / ".data")
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB} OWNER {OWNER_ROLE}")
    migrate.upgrade(pg.url(OWNER_ROLE, DB), APP_ROLE)
    shops = [uuid.uuid4(), uuid.uuid4()]
    load(pg, shops)
    port = _free_port()
    standin = subprocess.Popen(
        [sys.executable, "-m", "neanelu.search.openai_standin", "--port", str(port)],
        env={**os.environ, "OPENAI_API_KEY": KEY},
    )
    try:
        _wait_for(port)
        asyncio.run(measure(pg, shops, f"http://127.0.0.1:{port}/v1"))
    finally:
        standin.terminate()
        standin.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the OpenAI stand-in did not start") from None
            time.sleep(0.1)


if __name__ == "__main__":
    main()
