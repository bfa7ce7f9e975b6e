"""The asyncio worker: reserve, run, ack; renew leases; stop gracefully on SIGTERM.

One process runs `concurrency` jobs at a time across its queues. Fairness, caps and crash recovery
live in Redis (the scripts), so scaling out is starting more processes: nothing here coordinates
with other workers except through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from neanelu.config import Settings
from neanelu.db.embedded import start_redis
from neanelu.db.pool import Conn
from neanelu.probe import health_path
from neanelu.queue import redis_keys
from neanelu.queue.client import Queue, QueueClient
from neanelu.queue.context import JobContext, Resources
from neanelu.queue.errors import Defer, Fatal, Retry
from neanelu.queue.jobs import DeadJob, FailResult, Job
from neanelu.queue.observe import QueueSampler, job_run
from neanelu.queue.outbox import run_outbox_relay
from neanelu.queue.ratelimit import CostLimiter, ShopBudget
from neanelu.queue.registry import BoundTask, Registry
from neanelu.queue.settings import default_queues

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0


class _Running:
    __slots__ = ("acked", "cancelled_at", "job", "lost", "queue", "settling", "task")

    def __init__(self, queue: Queue, job: Job) -> None:
        self.queue = queue
        self.job = job
        self.task: asyncio.Task[None] | None = None
        self.lost = False
        # The handler has returned and its outcome is being written: renewal leaves it alone (a
        # refused renewal then only means the ack got there first).
        self.settling = False
        # Its ack went out with a reserve that already tried to fill its slot: its end need not
        # trigger another reserve.
        self.acked = False
        # Loop time of the last cancel sent at shutdown (None: not cancelled).
        self.cancelled_at: float | None = None


# A handler that swallows the shutdown cancel (a library catching CancelledError) is cancelled
# again this often, so the worker still exits.
RECANCEL_S = 1.0


class Worker:
    def __init__(
        self,
        client: QueueClient,
        registry: Registry,
        queues: Sequence[str],
        *,
        concurrency: int,
        limiter: CostLimiter | None = None,
        shutdown_grace_s: float = 25.0,
        idle_max_s: float = 0.2,
        ack_delay_s: float = 0.002,
        health_path: Path | None = None,
        worker_id: str | None = None,
        resources: Mapping[type, Any] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.registry = registry
        self.queues = [client.queue(q) for q in queues]
        self.concurrency = concurrency
        # Slots long jobs may hold together: all but one when short jobs share the worker (a
        # worker of one slot, or of long queues only, keeps none back).
        shares = any(not q.settings.long_jobs for q in self.queues)
        self.long_slots = concurrency - 1 if shares and concurrency > 1 else concurrency
        self.limiter = limiter or CostLimiter(client.redis, prefix=client.prefix)
        self.shutdown_grace_s = shutdown_grace_s
        self.idle_max_s = idle_max_s
        # While the queues are dry, how long an ack may wait to share a round trip with others.
        self.ack_delay_s = ack_delay_s
        self.health_path = health_path
        self.resources = dict(resources or {})
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._running: dict[tuple[str, str], _Running] = {}
        # Set when there is something for the settle loop to do: an ack waits, a slot freed up,
        # or the worker is stopping.
        self._wake = asyncio.Event()
        # A slot freed up outside the ack path (a failure, a deferral): reserve again at once.
        self._poll_now = False
        self._acks: list[tuple[_Running, asyncio.Future[bool]]] = []
        self._acks_since = 0.0  # loop time of the oldest ack waiting
        self._turn = 0
        self._hooks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        side = [
            asyncio.create_task(self._renew_loop(stop), name="lease-renewal"),
            asyncio.create_task(self._heartbeat_loop(stop), name="heartbeat"),
            asyncio.create_task(_relay(stop, self._wake), name="stop-relay"),
        ]
        try:
            await self._settle_loop(stop)
            if self._hooks:
                await asyncio.gather(*self._hooks, return_exceptions=True)
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.client.redis.zrem(
                    redis_keys.workers_key(self.client.prefix), self.worker_id
                )

    # -- acking and fetching -------------------------------------------------------------------

    async def _settle_loop(self, stop: asyncio.Event) -> None:
        """The one loop that talks to Redis for acks and reserves. Acks gathered while the last
        call was out go in the next one, together with a reserve for the slots they free: with
        many short jobs the round trips, not the scripts, limit throughput. While the queues are
        dry (the last reserve came back short) acks wait up to `ack_delay_s` for the next poll,
        so a trickle of jobs is acked and replaced a few at a time. With nothing to ack it polls,
        backing off while the queues stay empty. After stop it only acks, lets running jobs
        finish within the grace period, then hands back the rest."""
        loop = asyncio.get_running_loop()
        idle = 0.001
        next_poll = 0.0
        dry = False
        grace_end: float | None = None
        while True:
            self._wake.clear()
            now = loop.time()
            stopping = stop.is_set()
            if stopping:
                if not self._running and not self._acks:
                    return
                grace_end = self._wind_down(now, grace_end)
            if self._poll_now:
                self._poll_now = False
                next_poll = 0.0
            pending = len(self._acks)
            free = 0 if stopping else self.concurrency - len(self._running) + pending
            ack_due = self._acks_since + self.ack_delay_s
            flush = pending > 0 and (stopping or not dry or now >= ack_due or now >= next_poll)
            if not flush and (free <= 0 or now < next_poll):
                deadlines = []
                if pending:
                    deadlines.append(min(ack_due, next_poll))
                if grace_end is not None:
                    # Until the grace period ends; past it, until the cancelled jobs end (looking
                    # again now and then for one that swallowed its cancel).
                    deadlines.append(grace_end + 0.001 if now < grace_end else now + RECANCEL_S)
                elif free > 0:
                    deadlines.append(next_poll)
                await self._sleep(min(deadlines) - now if deadlines else None)
                continue
            acks, self._acks = self._acks, []
            try:
                got, wake = await self._settle(acks, free)
            except Exception:
                # Redis unreachable: running jobs continue, fetching retries with backoff, acks
                # retry on their own (see _ack_patiently).
                log.exception("reserve failed")
                idle = self.idle_max_s
                next_poll = loop.time() + idle
                continue
            dry = got < free
            if not dry:
                # Everything asked for came: there may be more.
                idle = 0.001
                next_poll = 0.0
            elif got:
                # Work is flowing but this worker has drained what was there: ask again once the
                # acks of what it just took may have gathered (each call has a fixed cost in
                # Redis and here, and a call every millisecond took ~4 jobs under a steady feed).
                idle = 0.001
                next_poll = loop.time() + self.ack_delay_s
            else:
                timeout = min(idle, wake) if wake is not None else idle
                next_poll = loop.time() + max(timeout, 0.001)
                idle = min(idle * 2, self.idle_max_s)

    def _wind_down(self, now: float, grace_end: float | None) -> float:
        """Stopping: start the grace period, or once it is over cancel the jobs still running
        (each hands its job back). Returns the end of the grace period."""
        if grace_end is None:
            log.info(
                "waiting up to %.0fs for %d running jobs", self.shutdown_grace_s, len(self._running)
            )
            return now + self.shutdown_grace_s
        if now >= grace_end:
            for running in self._running.values():
                task, sent = running.task, running.cancelled_at
                if task is None or task.done() or (sent is not None and now - sent < RECANCEL_S):
                    continue
                running.cancelled_at = now
                task.cancel()
        return grace_end

    async def _sleep(self, timeout: float | None) -> None:
        """Until something wakes the settle loop, or `timeout` seconds."""
        if timeout is None:
            await self._wake.wait()
            return
        timer = asyncio.get_running_loop().call_later(max(timeout, 0.0), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def _settle(
        self, acks: list[tuple[_Running, asyncio.Future[bool]]], free: int
    ) -> tuple[int, float | None]:
        got = 0
        wake: float | None = None
        by_queue: dict[str, list[tuple[_Running, asyncio.Future[bool]]]] = {}
        for item in acks:
            by_queue.setdefault(item[0].queue.name, []).append(item)
        # Start from a different queue each time so one busy queue cannot starve the others.
        order = self.queues[self._turn :] + self.queues[: self._turn]
        self._turn = (self._turn + 1) % len(self.queues)
        long_free = self._long_slots_free(acks)
        error: Exception | None = None
        for queue in order:
            items = by_queue.pop(queue.name, [])
            long = queue.settings.long_jobs
            if not items and (free <= 0 or error is not None or (long and long_free <= 0)):
                continue
            want = max(free, 0) if error is None else 0
            if long:
                want = min(want, max(long_free, 0))
            try:
                reservation = await queue.reserve(want, ack=[r.job for r, _ in items])
            except Exception as exc:
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                error = exc
                continue
            for (running, future), ok in zip(items, reservation.acked, strict=True):
                running.acked = True
                if not future.done():
                    future.set_result(ok)
            for dead in reservation.dead:
                log.error(
                    "job %s (%s) of group %s dead-lettered: %s",
                    dead.id,
                    dead.task,
                    dead.group,
                    dead.error,
                )
                self._spawn_dead_hook(dead)
            for job in reservation.jobs:
                self._start(queue, job)
            got += len(reservation.jobs)
            free -= len(reservation.jobs)
            if long:
                long_free -= len(reservation.jobs)
            if reservation.wake_s is not None:
                wake = reservation.wake_s if wake is None else min(wake, reservation.wake_s)
        if error is not None:
            raise error
        return got, wake

    def _long_slots_free(self, acks: list[tuple[_Running, asyncio.Future[bool]]]) -> int:
        """Slots long jobs may still take: their cap, less those running, plus those being acked
        now (still in `_running` until the ack returns)."""
        held = sum(1 for r in self._running.values() if r.queue.settings.long_jobs)
        ending = sum(1 for r, _ in acks if r.queue.settings.long_jobs)
        return self.long_slots - held + ending

    async def _complete(self, running: _Running) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._acks:
            self._acks_since = loop.time()
        self._acks.append((running, future))
        self._wake.set()
        return await future

    def _start(self, queue: Queue, job: Job) -> None:
        running = _Running(queue, job)
        self._running[(queue.name, job.id)] = running
        running.task = asyncio.create_task(self._execute(running), name=f"job:{job.id}")

    # -- running one job -----------------------------------------------------------------------

    async def _execute(self, running: _Running) -> None:
        queue, job = running.queue, running.job
        try:
            await self._run_handler(running)
        except asyncio.CancelledError:
            if not running.lost:
                # Shutdown ran out of time: hand the job back at once, attempt unchanged, so it
                # does not wait for the lease to expire. Shielded: the cancel must not stop it.
                log.info(
                    "job %s (%s) attempt %d handed back unfinished: the worker is stopping",
                    job.id,
                    job.task,
                    job.attempt,
                )
                with contextlib.suppress(Exception):
                    await asyncio.shield(queue.defer(job, 0.0))
            raise
        finally:
            self._running.pop((queue.name, job.id), None)
            if not running.acked:
                self._poll_now = True
            self._wake.set()

    async def _run_handler(self, running: _Running) -> None:
        queue, job = running.queue, running.job
        handle = self.registry.get(job.task)
        if handle is None:
            await queue.fail(job, f"no handler registered for task {job.task!r}", fatal=True)
            return
        try:
            payload = handle.decode(job.payload)
        except msgspec.DecodeError as exc:
            await queue.fail(job, f"payload does not decode: {exc}", fatal=True)
            return
        budget = ShopBudget(self.limiter, job.group, queue.settings.budget_share)

        async def extend(seconds: float | None) -> bool:
            lease_ms = round(seconds * 1000) if seconds is not None else None
            (ok,) = await queue.extend([job], lease_ms)
            return ok

        ctx = JobContext(job, budget, extend, self.resources, worker_id=self.worker_id)
        # The job's span continues the trace of whoever enqueued it; logs inside carry its ids.
        with job_run(job) as run:
            try:
                await handle.handler(ctx, payload)
            except Defer as d:
                running.settling = True
                run.deferred(throttled=d.block_group)
                log.info(
                    "job %s (%s) attempt %d deferred %.1f s%s: %s",
                    job.id,
                    job.task,
                    job.attempt,
                    d.seconds,
                    " with its whole group" if d.block_group else "",
                    d.reason or "no reason given",
                )
                await queue.defer(job, d.seconds, block_group=d.block_group)
            except Retry as r:
                running.settling = True
                run.failed(await self._fail(handle, payload, job, str(r), delay_s=r.seconds), r)
            except Fatal as f:
                running.settling = True
                run.failed(await self._fail(handle, payload, job, f"Fatal: {f}", fatal=True), f)
            except Exception as exc:
                running.settling = True
                log.exception("job %s (%s) attempt %d raised", job.id, job.task, job.attempt)
                error = f"{type(exc).__name__}: {exc}"
                run.failed(await self._fail(handle, payload, job, error), exc)
            else:
                running.settling = True
                acked = await self._ack_patiently(running)
                run.completed(acked)
                if not acked:
                    log.warning(
                        "job %s finished after its lease was lost; it may run again", job.id
                    )

    async def _ack_patiently(self, running: _Running) -> bool:
        """The job's work is done: its ack waits out a Redis restart (within the lease), since an
        ack lost there leaves the job leased, and once the lease runs out it runs again, whole."""
        queue, job = running.queue, running.job
        deadline = time.monotonic() + queue.settings.lease_ms / 1000
        delay = 0.1
        while True:
            try:
                return await self._complete(running)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("job %s done; ack waits for Redis (%s)", job.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _fail(
        self,
        handle: BoundTask[Any],
        payload: Any,
        job: Job,
        error: str,
        *,
        fatal: bool = False,
        delay_s: float | None = None,
    ) -> FailResult:
        """Fail the attempt, say what happens next (every retry is logged with its reason), and
        run the task's dead hook when the queue gives up on the job."""
        queue = self.client.queue(job.queue)
        delay = queue.backoff_s(job.attempt) if delay_s is None else delay_s
        result = await queue.fail(job, error, fatal=fatal, delay_s=delay)
        where = f"job {job.id} ({job.task}) of group {job.group}"
        if result is FailResult.RETRY:
            log.warning(
                "%s attempt %d/%d failed, retrying in %.1f s: %s",
                where,
                job.attempt,
                job.max_attempts,
                delay,
                error,
            )
        elif result is FailResult.DEAD:
            log.error(
                "%s dead-lettered after attempt %d/%d: %s",
                where,
                job.attempt,
                job.max_attempts,
                error,
            )
        elif result is FailResult.FAILED:
            log.warning("%s failed for good at attempt %d: %s", where, job.attempt, error)
        else:
            log.warning(
                "%s attempt %d failed after its lease was lost: %s", where, job.attempt, error
            )
        if result in (FailResult.DEAD, FailResult.FAILED) and handle.on_dead is not None:
            dead = DeadJob(
                id=job.id,
                queue=job.queue,
                group=job.group,
                task=job.task,
                payload=job.payload,
                attempts=job.attempt,
                error=error,
                state="dead" if result is FailResult.DEAD else "failed",
            )
            await self._dead_hook(handle, payload, dead)
        return result

    def _spawn_dead_hook(self, dead: DeadJob) -> None:
        """A job reserve dead-lettered for stalling: its hook runs beside the fetch loop."""
        handle = self.registry.get(dead.task)
        if handle is None or handle.on_dead is None:
            return
        try:
            payload = handle.decode(dead.payload)
        except msgspec.DecodeError:
            return
        task = asyncio.create_task(self._dead_hook(handle, payload, dead), name=f"dead:{dead.id}")
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _dead_hook(self, handle: BoundTask[Any], payload: Any, dead: DeadJob) -> None:
        assert handle.on_dead is not None
        try:
            await handle.on_dead(Resources(self.resources), payload, dead)
        except Exception:
            # The job is in the dead-letter set either way; the hook's failure is only logged.
            log.exception("dead hook of job %s (%s) failed", dead.id, dead.task)

    # -- leases and liveness -------------------------------------------------------------------

    async def _renew_loop(self, stop: asyncio.Event) -> None:
        period = min(q.settings.lease_ms for q in self.queues) / 3000
        while not stop.is_set() or self._running:
            await asyncio.sleep(period)
            by_queue: dict[str, list[_Running]] = {}
            for running in list(self._running.values()):
                by_queue.setdefault(running.queue.name, []).append(running)
            for items in by_queue.values():
                try:
                    kept = await items[0].queue.extend([r.job for r in items])
                except Exception:
                    log.exception("lease renewal failed")
                    continue
                for running, ok in zip(items, kept, strict=True):
                    if not ok and not running.lost and not running.settling and running.task:
                        # Someone else owns the job now; stop rather than do the work twice.
                        log.warning("lease lost for job %s; cancelling it", running.job.id)
                        running.lost = True
                        running.task.cancel()

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                now_s, _ = await self.client.redis.time()
                await self.client.redis.zadd(
                    redis_keys.workers_key(self.client.prefix), {self.worker_id: int(now_s) * 1000}
                )
                if self.health_path is not None:
                    await asyncio.to_thread(_touch, self.health_path, self.worker_id)
            except Exception:
                log.exception("heartbeat failed")
            await _wait_either(stop, None, HEARTBEAT_S)


async def _relay(stop: asyncio.Event, wake: asyncio.Event) -> None:
    """Stopping is one more reason for the settle loop to wake."""
    await stop.wait()
    wake.set()


async def _wait_either(
    stop: asyncio.Event, other: asyncio.Event | None, timeout: float | None
) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waiters.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _touch(path: Path, worker_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(f"{worker_id} {time.time():.0f}\n", encoding="utf-8")
    tmp.replace(path)


async def connect_redis(settings: Settings) -> Redis:
    """REDIS_URL, or the embedded Redis in the data dir for local runs."""
    url = settings.redis_url
    if url is None:
        url = (await asyncio.to_thread(start_redis, settings.data_dir)).url
    return Redis.from_url(url, max_connections=settings.redis_pool_max)


async def run_worker(
    settings: Settings,
    registry: Registry,
    queues: Sequence[str],
    concurrency: int,
    stop_event: asyncio.Event,
    *,
    pool: AsyncConnectionPool[Conn] | None = None,
    prefix: str = redis_keys.DEFAULT_PREFIX,
    resources: Mapping[type, Any] | None = None,
    redis: Redis | None = None,
) -> None:
    """`neanelu worker`: run the queues until `stop_event` (also set on SIGTERM/SIGINT).

    With a PostgreSQL pool the process also relays the outbox; several processes may do so.
    """
    own_redis = redis is None
    redis = redis if redis is not None else await connect_redis(settings)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop_event.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): the caller sets stop_event itself
    try:
        client = QueueClient(redis, default_queues(settings), prefix=prefix)
        worker = Worker(
            client,
            registry,
            queues or client.names,
            concurrency=concurrency,
            health_path=health_path(settings),
            resources=resources,
        )
        relay = (
            asyncio.create_task(run_outbox_relay(pool, client, stop_event), name="outbox-relay")
            if pool is not None
            else None
        )
        sampler = asyncio.create_task(QueueSampler(client).run(stop_event), name="queue-sampler")
        try:
            await worker.run(stop_event)
        finally:
            stop_event.set()
            await sampler
            if relay is not None:
                await relay
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if own_redis:
            await redis.aclose()
