"""The worker runtime: in-process workers for job outcomes and shutdown, real processes for SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from neanelu.config import Settings
from neanelu.probe import check_worker
from neanelu.queue.client import Queue, QueueClient
from neanelu.queue.settings import QueueSettings
from neanelu.queue.worker import Worker, run_worker
from tests.queue.tasks import Doomed, Recorder, Work, doomed, long_work, registry, work

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[QueueClient]:
    Recorder.redis = redis_client
    Recorder.key = f"{key_prefix}:log"
    Recorder.hang_key = f"{key_prefix}:hang"
    yield QueueClient(
        redis_client,
        {
            "sync": QueueSettings(
                name="sync",
                lease_ms=600,
                group_concurrency=2,
                global_concurrency=4,
                backoff_base_s=0.05,
                max_attempts=3,
            )
        },
        prefix=key_prefix,
    )


async def log(redis_client: aioredis.Redis) -> list[str]:
    return [
        x.decode() if isinstance(x, bytes) else x
        for x in await redis_client.lrange(Recorder.key, 0, -1)
    ]


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    async def poll() -> None:
        # Polling is the point: the condition lives in Redis, written by other processes.
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def start_worker(client: QueueClient, **kw: Any) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    worker = Worker(client, registry, ["sync"], concurrency=4, **kw)
    return stop, asyncio.create_task(worker.run(stop))


async def test_outcomes(client: QueueClient, redis_client: aioredis.Redis) -> None:
    q = client.queue("sync")
    for mode in ("ok", "fail_once", "fatal", "defer_once"):
        await work.enqueue(client, Work(mode=mode), group="shop-a", job_id=mode)
    stop, task = await start_worker(client)

    async def settled() -> bool:
        c = await q.counts()
        return c.completed + c.failed + c.dead == 4

    await wait_for(settled)
    stop.set()
    await task
    entries = await log(redis_client)
    assert "ok:1:end" in entries
    assert "fail_once:1:start" in entries
    assert "fail_once:2:end" in entries
    # A deferral gives the job back without using an attempt.
    assert entries.count("defer_once:1:start") == 2
    assert "defer_once:1:end" in entries
    c = await q.counts()
    assert (c.completed, c.failed, c.dead) == (3, 1, 0)


async def test_lease_is_renewed_for_long_jobs(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    q = client.queue("sync")  # lease 600 ms; the job runs 2 s
    await work.enqueue(client, Work(mode="sleep", sleep_s=2.0), group="shop-a", job_id="long")
    stop, task = await start_worker(client)
    await wait_for(lambda: _completed(q, 1))
    stop.set()
    await task
    assert await log(redis_client) == ["long:1:start", "long:1:end"]
    info = await q.job_info("long")
    assert info is not None
    assert info.state == "completed"


async def _completed(q: Queue, n: int) -> bool:
    return (await q.counts()).completed >= n


async def test_shutdown_hands_back_unfinished_jobs(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    q = client.queue("sync")
    await redis_client.set(Recorder.hang_key, 1)
    await work.enqueue(client, Work(mode="hang"), group="shop-a", job_id="stuck")
    stop, task = await start_worker(client, shutdown_grace_s=0.2)
    await wait_for(lambda: _started(redis_client, "stuck:1:start"))
    stop.set()
    await task
    # Released at once, attempt unchanged: the next worker starts it as attempt 1 again.
    info = await q.job_info("stuck")
    assert info is not None
    assert (info.state, info.attempts) == ("waiting", 0)
    assert (await q.counts()).active == 0


async def test_shutdown_cancels_again_a_job_that_swallowed_its_cancel(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    await work.enqueue(client, Work(mode="stubborn"), group="shop-a", job_id="stubborn")
    stop, task = await start_worker(client, shutdown_grace_s=0.1)
    await wait_for(lambda: _started(redis_client, "stubborn:1:start"))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "stubborn:1:swallowed" in await log(redis_client)
    info = await client.queue("sync").job_info("stubborn")
    assert info is not None
    assert (info.state, info.attempts) == ("waiting", 0)


async def _started(redis_client: aioredis.Redis, entry: str) -> bool:
    return entry in await log(redis_client)


async def test_quiet_shop_is_not_stuck_behind_noisy_one(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    q = client.queue("sync")  # the worker runs 4 at a time, the queue's global cap is 4
    await q.set_group_concurrency("noisy", 100)
    specs = [work.spec(Work(mode="sleep", sleep_s=0.02), group="noisy") for _ in range(3000)]
    await q.enqueue_many(specs)
    stop, task = await start_worker(client)

    async def noisy_started() -> bool:
        return int(await redis_client.llen(Recorder.key)) >= 40

    await wait_for(noisy_started)
    await work.enqueue(client, Work(), group="quiet", job_id="quiet")
    mark = int(await redis_client.llen(Recorder.key))
    await wait_for(lambda: _started(redis_client, "quiet:1:start"))
    stop.set()
    await task
    after = (await log(redis_client))[mark:]
    starts_before = [e for e in after[: after.index("quiet:1:start")] if e.endswith(":start")]
    # At most the reservation already in flight when it was enqueued goes first.
    assert len(starts_before) <= 1, starts_before


async def test_a_trickle_is_fetched_once_per_ack_delay(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    """A reserve that came back short but not empty (work trickles in): the worker asks again
    once the acks of what it took may have gathered, `ack_delay_s` later, not at once, so a
    steady feed is taken several jobs per round trip."""
    loop = asyncio.get_running_loop()
    stop, task = await start_worker(client, ack_delay_s=1.0)
    await work.enqueue(client, Work(), group="shop-a", job_id="first")
    await wait_for(lambda: _started(redis_client, "first:1:start"))
    sent = loop.time()
    await work.enqueue(client, Work(), group="shop-b", job_id="second")
    await wait_for(lambda: _started(redis_client, "second:1:start"))
    waited = loop.time() - sent
    stop.set()
    await task
    # "first" was reserved before it started, so at most the time to see its start is gone.
    assert 0.5 < waited < 5.0, waited


async def test_long_jobs_leave_a_slot_for_short_ones(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Long jobs (bulk ingests, embedding runs) that fill every slot of a worker would keep its
    short jobs (webhook deliveries, ticks) waiting for minutes: they may hold all slots but one."""
    Recorder.redis = redis_client
    Recorder.key = f"{key_prefix}:log"
    Recorder.hang_key = f"{key_prefix}:hang"
    client = QueueClient(
        redis_client,
        {
            "sync": QueueSettings(name="sync", lease_ms=5000),
            "bulk": QueueSettings(name="bulk", lease_ms=5000, long_jobs=True),
        },
        prefix=key_prefix,
    )
    await redis_client.set(Recorder.hang_key, 1)
    for i in range(3):
        await long_work.enqueue(client, Work(mode="hang"), group=f"shop-{i}", job_id=f"long-{i}")
    stop = asyncio.Event()
    worker = Worker(client, registry, ["bulk", "sync"], concurrency=3, idle_max_s=0.05)
    task = asyncio.create_task(worker.run(stop))
    try:

        async def two_long_started() -> bool:
            return sum(e.endswith(":start") for e in await log(redis_client)) >= 2

        await wait_for(two_long_started)
        await work.enqueue(client, Work(), group="shop-0", job_id="short")
        # The long jobs still hang: only the kept slot can run it.
        await wait_for(lambda: _started(redis_client, "short:1:end"), timeout=10)
        starts = [e for e in await log(redis_client) if e.endswith(":start")]
        assert sorted(starts) == ["long-0:1:start", "long-1:1:start", "short:1:start"], starts
        await redis_client.delete(Recorder.hang_key)

        async def all_long_done() -> bool:
            return (await client.queue("bulk").counts()).completed == 3

        # Released, the third long job gets a slot of the two the first ones gave back.
        await wait_for(all_long_done)
    finally:
        await redis_client.delete(Recorder.hang_key)
        stop.set()
        await task


async def test_sigkilled_workers_jobs_run_again(
    client: QueueClient, redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    q = client.queue("sync")
    await redis_client.set(Recorder.hang_key, 1)
    for i in range(4):
        await work.enqueue(client, Work(mode="hang"), group=f"shop-{i % 2}", job_id=f"j{i}")

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.queue.worker_proc", redis_url, key_prefix],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    first = [spawn(), spawn()]
    try:

        async def all_started() -> bool:
            return sum(e.endswith(":start") for e in await log(redis_client)) >= 4

        await wait_for(all_started, timeout=30)
        for proc in first:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        await redis_client.delete(Recorder.hang_key)
        second = spawn()
        try:
            await wait_for(lambda: _completed(q, 4), timeout=30)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        for proc in first:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    entries = await log(redis_client)
    for i in range(4):
        # Started twice, both as attempt 1 (a stall is not an attempt), finished once.
        assert entries.count(f"j{i}:1:start") == 2
        assert entries.count(f"j{i}:1:end") == 1
    info = await q.job_info("j0")
    assert info is not None
    assert info.state == "completed"


async def test_run_worker_and_health_check(
    redis_url: str, key_prefix: str, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    Recorder.redis = redis_client
    Recorder.key = f"{key_prefix}:log"
    settings = Settings(REDIS_URL=redis_url, NEANELU_DATA_DIR=tmp_path)
    assert not await check_worker(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, registry, ["sync"], 2, stop, prefix=key_prefix))

    async def healthy() -> bool:
        return await check_worker(settings)

    await wait_for(healthy)
    client = QueueClient(redis_client, {"sync": QueueSettings(name="sync")}, prefix=key_prefix)
    await work.enqueue(client, Work(), group="shop-a", job_id="via-run-worker")
    await wait_for(lambda: _started(redis_client, "via-run-worker:1:end"))
    stop.set()
    await task
    assert not await check_worker(settings, max_age_s=-1)


async def test_retries_and_defers_are_logged_with_their_reason(
    client: QueueClient, caplog: pytest.LogCaptureFixture
) -> None:
    q = client.queue("sync")
    await work.enqueue(client, Work(mode="fail_once"), group="shop-a", job_id="flaky")
    await work.enqueue(client, Work(mode="defer_once"), group="shop-b", job_id="busy")
    caplog.set_level(logging.INFO, logger="neanelu.queue.worker")
    stop, task = await start_worker(client)
    await wait_for(lambda: _completed(q, 2))
    stop.set()
    await task
    retried = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.levelno for r in retried] == [logging.WARNING]
    assert "flaky" in retried[0].getMessage()
    assert "attempt 1/3" in retried[0].getMessage()
    assert "RuntimeError: first attempt fails" in retried[0].getMessage()
    deferred = [r for r in caplog.records if "deferred" in r.getMessage()]
    assert [r.levelno for r in deferred] == [logging.INFO]
    assert "busy" in deferred[0].getMessage()
    assert "0.1 s" in deferred[0].getMessage()


async def test_the_dead_hook_runs_once_when_attempts_run_out(
    client: QueueClient, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    q = client.queue("sync")  # max_attempts 3
    await doomed.enqueue(client, Doomed(), group="shop-a", job_id="doomed")
    await doomed.enqueue(client, Doomed(fatal=True), group="shop-b", job_id="refused")
    stop, task = await start_worker(client)

    async def both_told() -> bool:
        return sum(":dead:" in e or ":failed:" in e for e in await log(redis_client)) >= 2

    await wait_for(both_told)
    stop.set()
    await task
    entries = await log(redis_client)
    assert [e for e in entries if e.startswith("doomed:") and not e.endswith("start")] == [
        "doomed:dead:3:False:RuntimeError: boom at attempt 3"
    ]
    assert [e for e in entries if e.startswith("refused:") and not e.endswith("start")] == [
        "refused:failed:1:True:Fatal: refused at attempt 1"
    ]
    assert await q.terminal_ids("dead") == ["doomed"]
    dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert [r.levelno for r in dead] == [logging.ERROR]


async def test_the_dead_hook_runs_for_a_job_whose_workers_kept_dying(
    client: QueueClient, redis_client: aioredis.Redis
) -> None:
    q = client.queue("sync")  # lease 600 ms, max_stalls 3
    await doomed.enqueue(client, Doomed(), group="shop-a", job_id="killer")
    for _ in range(4):
        # A worker takes the job and dies with it: it never reports, its lease runs out.
        assert [j.id for j in (await q.reserve()).jobs] == ["killer"]
        client.clock_offset_ms += 601
    stop, task = await start_worker(client)

    async def told() -> bool:
        return any(e.startswith("killer:dead:") for e in await log(redis_client))

    await wait_for(told)
    stop.set()
    await task
    (entry,) = [e for e in await log(redis_client) if e.startswith("killer:")]
    assert entry.startswith("killer:dead:0:False:stalled 4 times")
    assert "stopped renewing its lease" in entry
    info = await q.job_info("killer")
    assert info is not None
    assert info.state == "dead"
    assert info.error == entry.split(":", 4)[4]


async def test_a_job_that_ends_while_redis_restarts_is_acked_once_redis_is_back(
    tmp_path: Path, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Found by the redis_restart drill: the ack of a job that finished while Redis was down
    raised, the job stayed leased, and once its lease ran out it ran again (a whole second full
    sync). The ack now waits for Redis, within the lease."""
    from neanelu.db.embedded import start_redis, stop_redis

    own = start_redis(tmp_path)  # AOF on: a restart keeps the queue
    redis = aioredis.Redis(unix_socket_path=str(own.socket_path))
    Recorder.redis = redis_client
    Recorder.key = f"{key_prefix}:log"
    client = QueueClient(
        redis,
        {"sync": QueueSettings(name="sync", lease_ms=20_000, max_attempts=3)},
        prefix=key_prefix,
    )
    q = client.queue("sync")
    try:
        await work.enqueue(client, Work(mode="sleep", sleep_s=5.0), group="g", job_id="j")
        stop, task = await start_worker(client)

        async def started() -> bool:
            return len(await log(redis_client)) == 1

        await wait_for(started)
        await asyncio.to_thread(stop_redis, tmp_path)

        async def ended() -> bool:
            return len(await log(redis_client)) == 2

        await wait_for(ended)  # the job ended while Redis is down: its ack finds no Redis
        await asyncio.sleep(8)  # longer than the client's own few quick retries
        await asyncio.to_thread(start_redis, tmp_path)

        async def completed() -> bool:
            try:
                return (await q.counts()).completed == 1
            except Exception:
                return False

        await wait_for(completed, timeout=30)
        # Past the lease: a job left leased is reclaimed by the next reserve and runs again.
        client.clock_offset_ms += 25_000
        await q.reserve(0)
        await asyncio.sleep(1)
        stop.set()
        await task
        assert [line.split(":")[-1] for line in await log(redis_client)] == ["start", "end"]
        audit = await q.audit()
        assert (audit.completed, audit.unfinished, audit.leased) == (1, 0, 0)
    finally:
        await redis.aclose()
        await asyncio.to_thread(stop_redis, tmp_path)
