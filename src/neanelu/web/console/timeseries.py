"""Figures sampled in the background by every API process and while an operator looks (the queue
totals, a shop's cost budget), kept in a capped Redis list so the console can chart the last hour
without a metrics store."""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

CLAIM_MS = 1000


class Point(msgspec.Struct, array_like=True):
    at: float
    values: dict[str, float]


async def record(
    redis: Redis, key: str, values: dict[str, float], *, every_s: float, keep: int
) -> list[Point]:
    """Append `values` unless the last point is younger than `every_s`; return every point kept."""
    now = time.time()
    last = await redis.lindex(key, -1)
    due = last is None or now - msgspec.json.decode(last, type=Point).at >= every_s
    # Several processes sample the same list: a claim keeps two points from landing within a
    # second of each other (their difference over a millisecond would chart as a huge rate).
    if due and await redis.set(f"{key}:claim", b"1", nx=True, px=CLAIM_MS):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, msgspec.json.encode(Point(now, values)))
            pipe.ltrim(key, -keep, -1)
            pipe.expire(key, 7 * 86400)
            await pipe.execute()
    raw = await redis.lrange(key, 0, -1)
    return [msgspec.json.decode(r, type=Point) for r in raw]
