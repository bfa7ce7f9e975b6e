"""The console's pages on a big deployment: 200 shops, one of them with 1,000,000 products.

    python bench/bench_console.py [--products 1000000] [--shops 200] [--requests 40]

Starts the embedded PostgreSQL and Redis, a fresh migrated database filled with SQL
(generate_series, as the owner in each shop's tenant scope: products, a variant and an inventory
level each, sync runs, quarantined lines, webhook deliveries), dead jobs and paused groups in
Redis, then `neanelu serve` in a subprocess and an operator signed in over HTTP. Each page is
requested `--requests` times one after another on a keep-alive connection (after two warm-ups);
the time is measured at the client on loopback, so it includes the HTTP round trip: an upper
bound on the server's time.

Last line: `worst_page_p95_ms=... worst_page=... pages=N`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIG = "bench-big.myshopify.com"
USER = "bench-ops"
PASSWORD = "bench console password 0123"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def prepare(data_dir: Path, products: int, shops: int) -> tuple[dict[str, str], str, Any, str]:
    import psycopg

    from neanelu.db import migrate
    from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, start_postgres, start_redis

    pg = start_postgres(data_dir)
    redis = start_redis(data_dir)
    name = f"bench_console_{os.getpid()}"
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    migrate.upgrade(pg.url(OWNER_ROLE, name), APP_ROLE)
    started = time.perf_counter()
    with psycopg.connect(pg.url(OWNER_ROLE, name), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO shops (domain, status, installed_at, plan_name, api_bucket_size,"
            " api_restore_rate) SELECT CASE WHEN i = 1 THEN %s ELSE 'bench-' || i ||"
            " '.myshopify.com' END, 'installed', now(), 'Shopify Plus', 20000, 1000"
            " FROM generate_series(1, %s) i",
            (BIG, shops),
        )
        ids = [r[0] for r in conn.execute("SELECT id, domain FROM shops ORDER BY domain")]
        big = conn.execute("SELECT id FROM shops WHERE domain = %s", (BIG,)).fetchone()
        assert big is not None
        for shop_id in ids:
            conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(shop_id),))
            n = products if shop_id == big[0] else 100
            conn.execute(
                "INSERT INTO sync_runs (shop_id, kind, status, phase, counts, bytes, created_at,"
                " finished_at) SELECT %s, 'full', 'completed', 'done', %s, 1000000,"
                " now() - make_interval(days => d), now() - make_interval(days => d)"
                " FROM generate_series(1, 30) d",
                (shop_id, json.dumps({"products": n, "variants": n, "inventory_levels": n})),
            )
            conn.execute(
                "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, payload, processed_at)"
                " SELECT %s, 'wh-' || i, 'products/update', '{}', now()"
                " FROM generate_series(1, 200) i",
                (shop_id,),
            )
            conn.execute(
                "INSERT INTO products (shop_id, shopify_id, title, vendor, status, product_type,"
                " tags, metafields) SELECT %s, i, 'Product ' || i, 'Vendor ' || (i %% 50),"
                " CASE WHEN i %% 10 = 0 THEN 'DRAFT' ELSE 'ACTIVE' END, 'Type ' || (i %% 7),"
                ' ARRAY[\'tag\' || (i %% 13)], \'{"custom.x": {"type": "number_integer",'
                ' "value": "1"}}\' FROM generate_series(1, %s) i',
                (shop_id, n),
            )
            conn.execute(
                "INSERT INTO variants (shop_id, shopify_id, product_shopify_id, sku, title, price,"
                " inventory_item_id, position) SELECT %s, 10000000 + i, i, 'SKU-' || i,"
                " 'Default', 10 + i %% 90, 20000000 + i, 1 FROM generate_series(1, %s) i",
                (shop_id, n),
            )
            conn.execute(
                "INSERT INTO inventory_levels (shop_id, shopify_id, inventory_item_id, location_id,"
                " available) SELECT %s, 30000000 + i, 20000000 + i, 1, i %% 100"
                " FROM generate_series(1, %s) i",
                (shop_id, n),
            )
        conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(big[0]),))
        run = conn.execute("SELECT id FROM sync_runs ORDER BY created_at DESC LIMIT 1").fetchone()
        assert run is not None
        conn.execute(
            "INSERT INTO sync_quarantine (shop_id, run_id, phase, line_no, byte_offset, reason,"
            " line) SELECT %s, %s, 'products', i, i * 100, 'bad json', repeat('x', 300)"
            " FROM generate_series(1, 5000) i",
            (big[0], run[0]),
        )
        conn.execute("ANALYZE")
    print(
        f"seeded {shops} shops, {products:,} products in the big one, in {time.perf_counter() - started:.0f} s"
    )
    env = {
        **os.environ,
        "NEANELU_MODE": "local",
        "POSTGRES_URL": pg.url(APP_ROLE, name),
        "POSTGRES_OWNER_URL": pg.url(OWNER_ROLE, name),
        "REDIS_URL": redis.url,
        "API_METRICS_PORT": "0",
        "OTEL_SDK_DISABLED": "true",
        "NEANELU_DATA_DIR": str(data_dir),
    }
    return env, name, pg, str(big[0]) + "|" + str(run[0])


def seed_redis(env: dict[str, str], shop_ids: list[str]) -> None:
    """Dead jobs on every queue and a few paused shops, as a busy deployment has."""
    import asyncio

    from redis.asyncio import Redis

    from neanelu.config import load_settings
    from neanelu.queue.client import JobSpec, QueueClient
    from neanelu.queue.settings import default_queues

    async def go() -> None:
        redis = Redis.from_url(env["REDIS_URL"])
        client = QueueClient(redis, default_queues(load_settings()))
        for name in client.names:
            q = client.queue(name)
            for i, shop in enumerate(shop_ids[:50]):
                await q.enqueue(
                    JobSpec(
                        task="bench.fails",
                        group=shop,
                        payload=b'{"access_token": "x"}',
                        job_id=f"bench-{name}-{i}-{os.getpid()}",
                        max_attempts=1,
                    )
                )
            while (reserved := await q.reserve(50)).jobs:
                for job in reserved.jobs:
                    await q.fail(job, "bench failure")
        for shop in shop_ids[:10]:
            for name in client.names:
                await client.queue(name).pause_group(shop)
        await redis.aclose()

    asyncio.run(go())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--shops", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data")
    args = parser.parse_args()

    import httpx
    import psycopg

    env, name, pg, ids = prepare(args.data_dir, args.products, args.shops)
    big, run = ids.split("|")
    with psycopg.connect(env["POSTGRES_URL"]) as conn:
        shop_ids = [str(r[0]) for r in conn.execute("SELECT id FROM shops ORDER BY domain")]
    seed_redis(env, shop_ids)
    created = subprocess.run(
        [sys.executable, "-m", "neanelu", "admin", "create-user", "-u", USER],
        env={**env, "NEANELU_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode:
        raise SystemExit(created.stdout + created.stderr)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "neanelu", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    pages = {
        "shops": "/admin/shops",
        "shop": f"/admin/shops/{big}",
        "shop_live": f"/admin/shops/{big}/live",
        "run": f"/admin/shops/{big}/runs/{run}",
        "catalog": f"/admin/shops/{big}/products",
        "catalog_deep": f"/admin/shops/{big}/products?after=900000",
        "catalog_vendor": f"/admin/shops/{big}/products?vendor=Vendor+7&status=DRAFT",
        "catalog_title_sparse": f"/admin/shops/{big}/products?title=Product+99999",
        "product": f"/admin/shops/{big}/products/500000",
        "queues": "/admin/queues",
        "dead_jobs": "/admin/queues/bulk/dead",
        "job": f"/admin/queues/bulk/jobs/bench-bulk-0-{os.getpid()}",
        "audit": "/admin/audit",
    }
    results: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/admin/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("neanelu serve did not start")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as http:
            form = http.get("/admin/login")
            token = CSRF.search(form.text)
            assert token
            signed = http.post(
                "/admin/login",
                data={"csrf_token": token.group(1), "username": USER, "password": PASSWORD},
            )
            if signed.status_code != 303:
                raise SystemExit(f"sign-in answered {signed.status_code}")
            for label, path in pages.items():
                times = []
                for i in range(args.requests + 2):
                    started = time.perf_counter()
                    response = http.get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise SystemExit(
                            f"{label}: HTTP {response.status_code} {response.text[:200]}"
                        )
                    if i >= 2:
                        times.append(elapsed)
                results[label] = percentile(times, 95)
                print(
                    f"{label:22s} p50 {percentile(times, 50):7.1f} ms  p95 {results[label]:7.1f} ms"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    worst = max(results, key=lambda k: results[k])
    print(f"worst_page_p95_ms={results[worst]:.1f} worst_page={worst} pages={len(results)}")


if __name__ == "__main__":
    main()
