"""Test tasks, shared by in-process workers and worker subprocesses. Each run is recorded in a Redis
list as `<job id>:<attempt>:<event>` so tests can see starts, ends and their order."""

from __future__ import annotations

import asyncio

import msgspec
import redis.asyncio as aioredis

from neanelu.queue.context import JobContext, Resources
from neanelu.queue.errors import Fatal
from neanelu.queue.jobs import DeadJob
from neanelu.queue.registry import Registry, TaskHandle

registry = Registry()


class Recorder:
    redis: aioredis.Redis | None = None
    key = ""
    hang_key = ""  # while this key exists, "hang" jobs sleep forever

    @classmethod
    async def log(cls, ctx: JobContext, event: str) -> None:
        assert cls.redis is not None
        await cls.redis.rpush(cls.key, f"{ctx.job_id}:{ctx.attempt}:{event}")


class Work(msgspec.Struct, frozen=True):
    mode: str = "ok"  # ok | sleep | fail_once | fatal | defer_once | hang | stubborn
    sleep_s: float = 0.0


work: TaskHandle[Work] = TaskHandle(name="test.work", queue="sync", payload_type=Work)
# The same work on a queue of long jobs (QueueSettings.long_jobs).
long_work: TaskHandle[Work] = TaskHandle(name="test.long_work", queue="bulk", payload_type=Work)


async def run_work(ctx: JobContext, payload: Work) -> None:
    await Recorder.log(ctx, "start")
    if payload.mode == "sleep":
        await asyncio.sleep(payload.sleep_s)
    elif payload.mode == "fail_once" and ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    elif payload.mode == "fatal":
        raise Fatal("never works")
    elif payload.mode == "defer_once" and ctx.headers.get("deferred") is None:
        assert Recorder.redis is not None
        if await Recorder.redis.set(f"{Recorder.key}:d:{ctx.job_id}", 1, nx=True):
            ctx.defer(0.05)
    elif payload.mode == "hang":
        assert Recorder.redis is not None
        # The test releases the hang from another process, through Redis.
        while await Recorder.redis.exists(Recorder.hang_key):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    elif payload.mode == "stubborn":
        # Swallows the first cancel, as a library catching CancelledError would.
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await Recorder.log(ctx, "swallowed")
        await asyncio.sleep(3600)
    await Recorder.log(ctx, "end")


class Doomed(msgspec.Struct, frozen=True):
    fatal: bool = False


async def record_death(resources: Resources, payload: Doomed, dead: DeadJob) -> None:
    assert Recorder.redis is not None
    await Recorder.redis.rpush(
        Recorder.key, f"{dead.id}:{dead.state}:{dead.attempts}:{payload.fatal}:{dead.error}"
    )


doomed: TaskHandle[Doomed] = TaskHandle(name="test.doomed", queue="sync", payload_type=Doomed)


async def run_doomed(ctx: JobContext, payload: Doomed) -> None:
    """Never succeeds; its dead hook writes `<id>:<state>:<attempts>:<fatal>:<error>`."""
    await Recorder.log(ctx, "start")
    if payload.fatal:
        raise Fatal(f"refused at attempt {ctx.attempt}")
    raise RuntimeError(f"boom at attempt {ctx.attempt}")


registry.bind(work, run_work)
registry.bind(long_work, run_work)
registry.bind(doomed, run_doomed, on_dead=record_death)
