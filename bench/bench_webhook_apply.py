"""Applying recorded deliveries: one `webhooks.process` job for a batch, against one job per delivery.

    python bench/bench_webhook_apply.py [--deliveries 200] [--rounds 5] [--variants 3]

Starts the embedded PostgreSQL, a fresh migrated database with one installed shop, and records
`--deliveries` products/update deliveries of as many products (`--variants` variants each) in the
inbox, fresh ones each round (a newer updated_at, so every delivery writes). Each round applies
one set twice over, in turn: as one batch (`process_batch_now`, what a job of the whole batch
does) and one delivery at a time (a batch of one per delivery, what the same deliveries cost
when each comes in a job of its own). Both run in the same process, a second apart, under the
same load from whatever else shares the machine; `ratio_to_single` is the median of the rounds'
ratios.

Last line: `apply_per_s=... single_per_s=... ratio_to_single=... load=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from redis.asyncio import Redis

from neanelu.config import load_settings
from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres
from neanelu.db.pool import PoolSizes, create_pool, global_scope, tenant_scope
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import default_queues
from neanelu.runtime import Runtime
from neanelu.shops import repository as shops
from neanelu.vault import TokenVault
from neanelu.webhooks.tasks import process_batch_now

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench-apply.myshopify.com"
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def product(n: int, variants: int, updated: datetime) -> dict[str, Any]:
    return {
        "id": 8_000_000_000_000 + n,
        "title": f"Bench product {n}",
        "handle": f"bench-{n}",
        "vendor": "Bench",
        "product_type": "Shirt",
        "status": "active",
        "tags": "bench, load",
        "body_html": "<p>A product the bench writes again each round.</p>",
        "created_at": T0.isoformat(),
        "updated_at": updated.isoformat(),
        "options": [{"name": "Size", "position": 1}],
        "variants": [
            {
                "id": 9_000_000_000_000 + n * 10 + v,
                "sku": f"B-{n}-{v}",
                "title": f"Size {v}",
                "price": "10.00",
                "position": v + 1,
                "inventory_item_id": 7_000_000_000_000 + n * 10 + v,
                "inventory_quantity": 5,
                "created_at": T0.isoformat(),
                "updated_at": updated.isoformat(),
                "option1": f"S{v}",
            }
            for v in range(variants)
        ],
    }


async def record(rt: Runtime, shop_id: uuid.UUID, payloads: list[dict[str, Any]]) -> list[int]:
    """The deliveries as ingress records them (triggered just now: none is stale)."""
    async with tenant_scope(rt.pool, shop_id) as conn:
        cur = await conn.execute(
            "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, triggered_at, payload) "
            "SELECT %s, gen_random_uuid()::text, 'products/update', now(), p "
            "FROM jsonb_array_elements(%s::jsonb) AS p RETURNING id",
            (shop_id, msgspec.json.encode(payloads).decode()),
        )
        return sorted(row[0] for row in await cur.fetchall())


async def timed(label: str, run: Any, count: int) -> float:
    started = time.perf_counter()
    await run
    elapsed = time.perf_counter() - started
    print(f"  {label}: {count} in {elapsed:.3f}s ({count / elapsed:.0f}/s)")
    return count / elapsed


async def bench(pg: EmbeddedPostgres, database: str, args: argparse.Namespace) -> None:
    settings = load_settings(
        SHOPIFY_API_KEY="bench-client", SHOPIFY_API_SECRET="bench-webhook-secret-0123456789abcdef"
    )
    pool = create_pool(pg.url(APP_ROLE, database), PoolSizes(1, 4), name="bench-apply")
    await pool.open(wait=True)
    redis = Redis.from_url("redis://127.0.0.1:1")  # never reached: catalog topics use no Redis
    rt = Runtime(
        settings=settings,
        pool=pool,
        redis=redis,
        http=httpx.AsyncClient(),
        vault=TokenVault.from_settings(settings),
        queues=QueueClient(redis, default_queues(settings)),
    )
    try:
        async with global_scope(pool) as conn:
            shop_id, _ = await shops.ensure(conn, SHOP)
        n = args.deliveries
        batch_rates, single_rates, ratios = [], [], []
        for round_ in range(args.rounds + 1):  # round 0 creates the products and warms up
            at = T0 + timedelta(minutes=2 * round_)
            batch = await record(rt, shop_id, [product(i, args.variants, at) for i in range(n)])
            later = at + timedelta(minutes=1)
            single = await record(rt, shop_id, [product(i, args.variants, later) for i in range(n)])
            print(f"round {round_} (load average {os.getloadavg()[0]:.1f}):")
            rate = await timed("one batch", process_batch_now(rt, shop_id, batch), n)

            async def one_by_one(ids: list[int] = single) -> None:
                for inbox_id in ids:
                    await process_batch_now(rt, shop_id, [inbox_id])

            single_rate = await timed("one at a time", one_by_one(), n)
            if round_:
                batch_rates.append(rate)
                single_rates.append(single_rate)
                ratios.append(rate / single_rate)
        async with tenant_scope(pool, shop_id) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL"
            )
            left = await cur.fetchone()
        assert left == (0,), f"unprocessed deliveries left: {left}"
        print(
            f"apply_per_s={statistics.median(batch_rates):.0f} "
            f"single_per_s={statistics.median(single_rates):.0f} "
            f"ratio_to_single={statistics.median(ratios):.2f} load={os.getloadavg()[0]:.1f}"
        )
    finally:
        await rt.http.aclose()
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", type=int, default=3)
    args = parser.parse_args()
    pg = start_postgres(ROOT / ".data")
    database = f"bench_apply_{os.getpid()}"
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database} OWNER {OWNER_ROLE}")
    try:
        migrate.upgrade(pg.url(OWNER_ROLE, database), APP_ROLE)
        asyncio.run(bench(pg, database, args))
    finally:
        with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
