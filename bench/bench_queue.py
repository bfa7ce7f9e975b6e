"""Queue benchmark: throughput against a raw LPUSH/BRPOP loop on the same Redis in the same run,
Jain's fairness index over 200 backlogged shops, and reserve latency with 10,000 shops ready.

Last line: `throughput_vs_brpop=... jain=... reserve_p99_ms=...` (the throughput ratio: the median
of BENCH_QUEUE_PAIRS alternating raw/queue pairs, 5 by default).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.context import JobContext
from neanelu.queue.registry import Registry, TaskHandle
from neanelu.queue.settings import QueueSettings
from neanelu.queue.worker import Worker

JOBS = int(os.environ.get("BENCH_QUEUE_JOBS", "20000"))
SHOPS_FAIR = 200
SHOPS_READY = 10_000
PAIRS = int(os.environ.get("BENCH_QUEUE_PAIRS", "5"))


class NoOp(msgspec.Struct, frozen=True):
    n: int = 0


registry = Registry()
completions: list[str] = []


class Target:
    count = 0
    reached = asyncio.Event()


noop: TaskHandle[NoOp] = TaskHandle(name="bench.noop", queue="sync", payload_type=NoOp)


async def run_noop(ctx: JobContext, payload: NoOp) -> None:
    completions.append(ctx.group)
    if len(completions) >= Target.count:
        Target.reached.set()


registry.bind(noop, run_noop)


def expect(count: int) -> asyncio.Event:
    completions.clear()
    Target.count = count
    Target.reached = asyncio.Event()
    return Target.reached


def redis_url() -> str:
    if url := os.environ.get("REDIS_URL"):
        return url
    from neanelu.db.embedded import start_redis

    return start_redis(Path(".data/bench"), persist=False).url


async def raw_brpop(redis: aioredis.Redis, prefix: str, n: int) -> float:
    key = f"{prefix}:raw"

    async def produce() -> None:
        for i in range(n):
            await redis.lpush(key, i)

    async def consume() -> None:
        for _ in range(n):
            await redis.brpop([key], timeout=5)

    start = time.perf_counter()
    await asyncio.gather(produce(), consume())
    return n / (time.perf_counter() - start)


def client_for(redis: aioredis.Redis, prefix: str) -> QueueClient:
    # The production defaults: group cap 2, global cap 50, events stream on.
    return QueueClient(redis, {"sync": QueueSettings(name="sync")}, prefix=prefix)


async def run_until(worker: Worker, done: asyncio.Event) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await done.wait()
    stop.set()
    await task


async def script_calls(redis: aioredis.Redis) -> int:
    """Scripts run by this Redis so far: the queue's round trips (each call is one EVALSHA)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def queue_throughput(redis: aioredis.Redis, prefix: str, n: int) -> tuple[float, float]:
    """Jobs per second, and script calls per job (enqueue, reserve with its acks, renewals)."""
    client = client_for(redis, prefix)
    q = client.queue("sync")
    done = expect(n)

    async def produce() -> None:
        # One enqueue per round trip, as the raw loop pushes one LPUSH at a time.
        for i in range(n):
            await noop.enqueue(client, NoOp(i), group=f"shop-{i % 100}")

    worker = Worker(client, registry, ["sync"], concurrency=50)
    calls = await script_calls(redis)
    start = time.perf_counter()
    await asyncio.gather(produce(), run_until(worker, done))
    elapsed = time.perf_counter() - start
    calls = await script_calls(redis) - calls
    counts = await q.counts()
    assert counts.completed == n, counts
    return n / elapsed, calls / n


async def fairness(redis: aioredis.Redis, prefix: str) -> float:
    """200 shops with backlogs of different sizes; Jain's index over the first completions, all
    taken while every shop still had work waiting."""
    client = client_for(redis, prefix)
    q = client.queue("sync")
    specs = []
    for s in range(SHOPS_FAIR):
        backlog = 40 + (s % 10) * 30
        specs += [noop.spec(NoOp(i), group=f"shop-{s}") for i in range(backlog)]
    for i in range(0, len(specs), 5000):
        await q.enqueue_many(specs[i : i + 5000])
    window = SHOPS_FAIR * 30  # below the smallest backlog (40) for every shop
    done = expect(window)
    worker = Worker(client, registry, ["sync"], concurrency=50)
    await run_until(worker, done)
    per_shop = Counter(completions[:window])
    xs = [per_shop.get(f"shop-{s}", 0) for s in range(SHOPS_FAIR)]
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


async def reserve_latency(redis: aioredis.Redis, prefix: str) -> tuple[float, float]:
    client = client_for(redis, prefix)
    q = client.queue("sync")
    specs = [
        JobSpec(task="bench.noop", group=f"shop-{s}", payload=b"{}") for s in range(SHOPS_READY)
    ]
    for i in range(0, len(specs), 5000):
        await q.enqueue_many(specs[i : i + 5000])
    samples = []
    for _ in range(3000):
        t0 = time.perf_counter()
        reservation = await q.reserve(1)
        samples.append((time.perf_counter() - t0) * 1000)
        await q.complete(reservation.jobs[0])
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


async def cleanup(redis: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=5000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


async def main() -> None:
    url = redis_url()
    redis = aioredis.Redis.from_url(url, max_connections=200)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    try:
        info = await redis.info("server")
        print(f"redis {info['redis_version']} at {url}; {JOBS} no-op jobs", flush=True)
        # Raw and queue runs alternate, PAIRS times: the ratio is the median of the pairs' (each
        # pair ran seconds apart, under the same load from whatever shares the machine; a single
        # pair read 0.43-0.57 on the same idle machine and code).
        ratios = []
        for pair in range(PAIRS):
            raw = await raw_brpop(redis, f"{prefix}a{pair}", JOBS)
            ours, calls = await queue_throughput(redis, f"{prefix}b{pair}", JOBS)
            ratios.append(ours / raw)
            print(
                f"pair {pair + 1}: raw LPUSH/BRPOP {raw:,.0f} jobs/s; queue (enqueue + reserve +"
                f" ack, 100 shops) {ours:,.0f} jobs/s, {calls:.2f} script calls per job",
                flush=True,
            )
        ratio = statistics.median(ratios)
        jain = await fairness(redis, f"{prefix}c")
        print(f"Jain's index, {SHOPS_FAIR} backlogged shops: {jain:.4f}", flush=True)
        p50, p99 = await reserve_latency(redis, f"{prefix}d")
        print(
            f"reserve with {SHOPS_READY} shops ready: p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            flush=True,
        )
    finally:
        for suffix in "abcd":
            await cleanup(redis, f"{prefix}{suffix}")
        await redis.aclose()
    print(
        f"throughput_vs_brpop={ratio:.3f} jain={jain:.4f} reserve_p99_ms={p99:.3f}"
        f" script_calls_per_job={calls:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
