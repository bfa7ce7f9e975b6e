"""The queues as the console shows them: per queue and per shop, dead jobs, job details (payload
redacted), scheduled work, and throughput sampled over time. Reads are pipelined: a page with
200 shops and four queues costs one round trip per section, not one per shop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neanelu.queue import redis_keys
from neanelu.queue.admin import purge_dead, retry_dead
from neanelu.queue.client import QueueClient
from neanelu.queue.jobs import JobInfo, QueueCounts
from neanelu.telemetry.redact import redact
from neanelu.web.console import timeseries
from neanelu.web.console.timeseries import Point

SAMPLE_EVERY_S = 10
SAMPLES_KEPT = 360  # an hour at one sample per 10 s
TERMINAL = ("dead", "failed")
INFO_CONCURRENCY = 8

__all__ = ["GroupRow", "JobView", "purge_dead", "retry_dead"]


@dataclass(frozen=True, slots=True)
class GroupRow:
    queue: str
    group: str
    waiting: int
    active: int
    paused: bool


@dataclass(frozen=True, slots=True)
class JobView:
    queue: str
    id: str
    group: str
    task: str
    state: str
    attempts: int
    max_attempts: int
    stalls: int
    payload: str
    headers: dict[str, Any]
    error: str | None
    created_ms: int
    ended_ms: int | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def counts(client: QueueClient) -> dict[str, QueueCounts]:
    return {name: await client.queue(name).counts() for name in client.names}


async def busy_groups(client: QueueClient) -> set[str]:
    """Groups with unfinished jobs or paused on some queue: the only ones worth a row. Read
    from each queue's group-size hash and paused set, not by asking every shop."""
    prefix = client.prefix
    async with client.redis.pipeline(transaction=False) as pipe:
        for name in client.names:
            pipe.hgetall(redis_keys.queue_key(prefix, name, redis_keys.GROUP_SIZE))
            pipe.smembers(redis_keys.queue_key(prefix, name, redis_keys.PAUSED))
        raw = await pipe.execute()
    found: set[str] = set()
    for sizes, paused in zip(raw[::2], raw[1::2], strict=True):
        found.update(_text(g) for g, n in sizes.items() if int(n) > 0)
        found.update(_text(g) for g in paused)
    return found


async def groups(client: QueueClient, group_ids: Sequence[str]) -> dict[str, list[GroupRow]]:
    """Every queue's state for each group (shop), in one pipeline."""
    prefix = client.prefix
    async with client.redis.pipeline(transaction=False) as pipe:
        for name in client.names:
            paused_key = redis_keys.queue_key(prefix, name, redis_keys.PAUSED)
            for group in group_ids:
                pipe.zcard(redis_keys.group_key(prefix, name, group, "wait"))
                pipe.zcard(redis_keys.group_key(prefix, name, group, "active"))
                pipe.sismember(paused_key, group)
        raw = await pipe.execute()
    out: dict[str, list[GroupRow]] = {g: [] for g in group_ids}
    i = 0
    for name in client.names:
        for group in group_ids:
            waiting, active, paused = raw[i : i + 3]
            i += 3
            out[group].append(GroupRow(name, group, int(waiting), int(active), bool(paused)))
    return out


async def paused_groups(client: QueueClient) -> set[str]:
    """Groups paused on every queue (a shop the console paused)."""
    sets = [
        {
            _text(g)
            for g in await client.redis.smembers(
                redis_keys.queue_key(client.prefix, n, redis_keys.PAUSED)
            )
        }
        for n in client.names
    ]
    return set.intersection(*sets) if sets else set()


async def pause_shop(client: QueueClient, group: str) -> None:
    for name in client.names:
        await client.queue(name).pause_group(group)


async def resume_shop(client: QueueClient, group: str) -> None:
    for name in client.names:
        await client.queue(name).resume_group(group)


def view(queue: str, info: JobInfo) -> JobView:
    """A job with secrets masked in its payload, headers and error."""
    try:
        payload: Any = json.loads(info.payload)
    except ValueError:
        payload = info.payload.decode("utf-8", "replace")
    return JobView(
        queue=queue,
        id=info.id,
        group=info.group,
        task=info.task,
        state=info.state,
        attempts=info.attempts,
        max_attempts=info.max_attempts,
        stalls=info.stalls,
        payload=json.dumps(redact(payload), indent=2, sort_keys=True),
        headers=redact(dict(info.headers)),
        error=redact(info.error) if info.error else None,
        created_ms=info.created_ms,
        ended_ms=info.ended_ms,
    )


async def _infos(client: QueueClient, queue: str, ids: list[str]) -> list[JobInfo]:
    """Several jobs' hashes at once (concurrent reads, not one round trip after another)."""
    q = client.queue(queue)
    found: list[JobInfo | None] = []
    # A few at a time: the process's Redis pool is shared with every other request.
    for start in range(0, len(ids), INFO_CONCURRENCY):
        chunk = ids[start : start + INFO_CONCURRENCY]
        found += await asyncio.gather(*(q.job_info(i) for i in chunk))
    return [info for info in found if info is not None]


async def terminal_jobs(
    client: QueueClient, queue: str, which: str, limit: int, offset: int
) -> list[JobView]:
    """Oldest first, as the dead-letter set orders them."""
    ids = await client.queue(queue).terminal_ids(which, limit=limit, offset=offset)
    return [view(queue, info) for info in await _infos(client, queue, ids)]


async def job(client: QueueClient, queue: str, job_id: str) -> JobView | None:
    info = await client.queue(queue).job_info(job_id)
    return view(queue, info) if info is not None else None


async def scheduled(client: QueueClient, limit: int = 50) -> list[dict[str, Any]]:
    """The delayed jobs due soonest on every queue: periodic ticks, retries waiting out their
    backoff, deferrals. Scores are due times in Redis' clock (ms)."""
    found: list[dict[str, Any]] = []
    for name in client.names:
        q = client.queue(name)
        due: list[Any] = await client.redis.zrange(
            q.key(redis_keys.DELAYED), 0, limit - 1, withscores=True
        )
        when = {_text(raw_id): int(score) for raw_id, score in due}
        for info in await _infos(client, name, list(when)):
            found.append(
                {
                    "queue": name,
                    "id": info.id,
                    "task": info.task,
                    "group": info.group,
                    "attempts": info.attempts,
                    "due_ms": when[info.id],
                }
            )
    found.sort(key=lambda j: j["due_ms"])
    return found[:limit]


async def throughput(client: QueueClient, figures: dict[str, QueueCounts]) -> list[Point]:
    """The queues' running totals, sampled every SAMPLE_EVERY_S (in the background by every API
    process, and when the page is opened); the charts plot the differences between neighbouring
    points."""
    values: dict[str, float] = {}
    for name, c in figures.items():
        values[f"{name}:completed"] = c.completed
        values[f"{name}:failed"] = c.failed + c.dead
    return await timeseries.record(
        client.redis,
        f"{client.prefix}:console:queue-samples",
        values,
        every_s=SAMPLE_EVERY_S,
        keep=SAMPLES_KEPT,
    )
