"""Cost-budget benchmark: 20 concurrent workers call one emulated shop for 60 s through the shared
per-shop limiter (the sync queue's 90% share). Utilisation is the points the shop restored in the
window that the workers actually spent, net of the bucket they drained at the start:
    (sum of actualQueryCost - (available at start - available at end)) / (restoreRate * seconds).

Last line: `utilisation=... throttled_pct=...`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from neanelu.queue.errors import Defer
from neanelu.queue.ratelimit import CostLimiter, ThrottleStatus
from shopify_emulator import EmulatorConfig, ShopConfig, start_in_thread

SECONDS = float(os.environ.get("BENCH_RATELIMIT_SECONDS", "60"))
WORKERS = 20
SHARE = 0.9
QUERY = "{ products(first: 10) { edges { node { id title handle } } } }"
REQUESTED = 2 + 10 * 2


def redis_url() -> str:
    if url := os.environ.get("REDIS_URL"):
        return url
    from neanelu.db.embedded import start_redis

    return start_redis(Path(".data/bench"), persist=False).url


class Tally:
    calls = 0
    throttled = 0
    spent = 0.0
    first: ThrottleStatus | None = None
    last: ThrottleStatus | None = None


async def worker(
    http: httpx.AsyncClient, url: str, token: str, limiter: CostLimiter, shop: str, end: float
) -> None:
    headers = {"Host": f"{shop}.myshopify.com", "X-Shopify-Access-Token": token}
    while time.monotonic() < end:
        try:
            await limiter.acquire(shop, REQUESTED, SHARE, max_wait_s=30)
        except Defer:
            continue
        if time.monotonic() >= end:
            await limiter.refund(shop, REQUESTED)
            return
        response = await http.post(url, json={"query": QUERY}, headers=headers)
        Tally.calls += 1
        body = response.json() if response.status_code == 200 else {}
        status = ThrottleStatus.from_extensions(body.get("extensions"))
        if status is not None:
            Tally.first = Tally.first or status
            Tally.last = status
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        if response.status_code == 429 or "THROTTLED" in codes:
            Tally.throttled += 1
            await limiter.refund(shop, REQUESTED)
            if status is not None:
                await limiter.observe(shop, status)
            await limiter.block(shop, 1.0)
            continue
        actual = body["extensions"]["cost"]["actualQueryCost"]
        Tally.spent += actual
        await limiter.settle(shop, REQUESTED, actual, status)


async def main() -> None:
    shop = "budget"
    config = EmulatorConfig(shops=[ShopConfig(name=shop, products=50, plan="standard")])
    redis = aioredis.Redis.from_url(redis_url())
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    limiter = CostLimiter(redis, prefix=prefix)
    try:
        with start_in_thread(config, port=0) as emulator:
            limits = httpx.Limits(max_connections=WORKERS)
            async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                minted = await http.post(
                    f"{emulator.base_url}/_emulator/shops/{shop}/tokens", json={}
                )
                token = minted.json()["access_token"]
                url = f"{emulator.base_url}/admin/api/2026-01/graphql.json"
                start = time.monotonic()
                end = start + SECONDS
                await asyncio.gather(
                    *(worker(http, url, token, limiter, shop, end) for _ in range(WORKERS))
                )
                elapsed = time.monotonic() - start
    finally:
        await redis.delete(f"{prefix}:rl:{{{shop}}}")
        await redis.aclose()
    assert Tally.first is not None
    assert Tally.last is not None
    drained = Tally.first.currently_available + REQUESTED - Tally.last.currently_available
    restored = Tally.last.restore_rate * elapsed
    utilisation = (Tally.spent - drained) / restored
    throttled_pct = 100 * Tally.throttled / max(Tally.calls, 1)
    print(
        f"{WORKERS} workers, {elapsed:.1f} s, {Tally.calls} calls, {Tally.spent:.0f} points spent; "
        f"bucket {Tally.last.maximum_available:.0f} at {Tally.last.restore_rate:.0f}/s, "
        f"{Tally.first.currently_available:.0f} available at start, "
        f"{Tally.last.currently_available:.0f} at end",
        flush=True,
    )
    print(f"utilisation={utilisation:.3f} throttled_pct={throttled_pct:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
