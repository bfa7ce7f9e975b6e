"""A stateful property test of the queue scripts: thousands of random operations, workers that
crash and come back late, time moved forward by the clock offset. Whatever happens: no cap is
exceeded, no job is completed twice, a superseded lease changes nothing, and once everything has
drained every job ended exactly once (enqueued = completed + failed + dead)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from neanelu.queue import redis_keys
from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.jobs import EnqueueResult, FailResult, Job
from neanelu.queue.settings import QueueSettings

GROUPS = ("g0", "g1", "g2", "g3", "g4")
WORKERS = 3
GLOBAL_CAP = 4
DEFAULT_CAP = 2
LEASE_MS = 1000


class QueueMachine(RuleBasedStateMachine):
    redis_url: ClassVar[str] = ""
    steps: ClassVar[int] = 0  # operations run, over all examples

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = aioredis.Redis.from_url(self.redis_url)
        self.client = QueueClient(
            self.redis,
            {
                "sync": QueueSettings(
                    name="sync",
                    group_concurrency=DEFAULT_CAP,
                    global_concurrency=GLOBAL_CAP,
                    lease_ms=LEASE_MS,
                    max_attempts=3,
                    max_stalls=2,
                    backoff_base_s=0.05,
                    backoff_max_s=0.5,
                    events_maxlen=0,
                )
            },
            prefix=f"h{uuid.uuid4().hex[:10]}",
        )
        self.q = self.client.queue("sync")
        self.next_id = 0
        self.enqueued: list[str] = []
        self.caps = dict.fromkeys(GROUPS, DEFAULT_CAP)
        self.paused: set[str] = set()
        self.holds: list[list[Job]] = [[] for _ in range(WORKERS)]
        self.lost: list[Job] = []  # held by crashed workers; they may still ack, late
        self.latest_token: dict[str, str] = {}  # the token of each job's most recent reservation
        self.completed: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.drain_and_check()
        finally:
            self.run(self._cleanup())
            self.loop.close()

    async def _cleanup(self) -> None:
        async for key in self.redis.scan_iter(match=f"{self.client.prefix}:*", count=1000):
            await self.redis.delete(key)
        await self.redis.aclose()

    # -- rules ---------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        pass

    @rule(
        group=st.sampled_from(GROUPS),
        delay=st.sampled_from([0, 0, 0, 0.3, 2.0]),
        priority=st.integers(-2, 2),
        duplicate=st.booleans(),
    )
    def enqueue(self, group: str, delay: float, priority: int, duplicate: bool) -> None:
        if duplicate and self.enqueued:
            job_id = self.enqueued[len(self.enqueued) // 2]
        else:
            job_id = f"j{self.next_id}"
            self.next_id += 1
        spec = JobSpec(
            task="t", group=group, payload=b"{}", job_id=job_id, delay_s=delay, priority=priority
        )
        result = self.run(self.q.enqueue(spec))
        if job_id in self.enqueued:
            assert result is EnqueueResult.DUPLICATE
        else:
            assert result is EnqueueResult.ENQUEUED
            self.enqueued.append(job_id)

    @rule(worker=st.integers(0, WORKERS - 1), count=st.integers(1, 4))
    def reserve(self, worker: int, count: int) -> None:
        jobs = self.run(self.q.reserve(count)).jobs
        assert len(jobs) <= count
        for job in jobs:
            assert job.id in self.enqueued
            assert job.id not in self.completed, "a completed job was handed out again"
            assert job.group not in self.paused
            self.latest_token[job.id] = job.token
            self.holds[worker].append(job)
        self.check_caps({job.group for job in jobs})

    def pick(self, worker: int, index: int) -> Job | None:
        held = self.holds[worker]
        if not held:
            return None
        return held.pop(index % len(held))

    def superseded(self, job: Job) -> bool:
        return self.latest_token.get(job.id) != job.token

    @rule(worker=st.integers(0, WORKERS - 1), index=st.integers(0, 10))
    def complete(self, worker: int, index: int) -> None:
        job = self.pick(worker, index)
        if job is not None:
            self.ack(job)

    def ack(self, job: Job) -> None:
        stale = self.superseded(job)
        ok = self.run(self.q.complete(job))
        if stale:
            assert not ok, "a late ack from a superseded lease was accepted"
        if ok:
            assert job.id not in self.completed, "completed twice"
            self.completed.add(job.id)

    @rule(worker=st.integers(0, WORKERS - 1), index=st.integers(0, 10), fatal=st.booleans())
    def fail(self, worker: int, index: int, fatal: bool) -> None:
        job = self.pick(worker, index)
        if job is None:
            return
        stale = self.superseded(job)
        result = self.run(self.q.fail(job, "boom", fatal=fatal))
        if stale:
            assert result is FailResult.STALE

    @rule(
        worker=st.integers(0, WORKERS - 1),
        index=st.integers(0, 10),
        seconds=st.sampled_from([0.0, 0.5, 1.5]),
        block=st.booleans(),
    )
    def defer(self, worker: int, index: int, seconds: float, block: bool) -> None:
        job = self.pick(worker, index)
        if job is None:
            return
        stale = self.superseded(job)
        ok = self.run(self.q.defer(job, seconds, block_group=block))
        if stale:
            assert not ok

    @rule(worker=st.integers(0, WORKERS - 1))
    def renew(self, worker: int) -> None:
        held = self.holds[worker]
        kept = self.run(self.q.extend(held))
        for job, ok in zip(held, kept, strict=True):
            if self.superseded(job):
                assert not ok

    @rule(worker=st.integers(0, WORKERS - 1))
    def crash(self, worker: int) -> None:
        self.lost += self.holds[worker]
        self.holds[worker] = []

    @rule(index=st.integers(0, 50))
    def late_ack(self, index: int) -> None:
        if self.lost:
            self.ack(self.lost.pop(index % len(self.lost)))

    @rule(ms=st.sampled_from([50, 400, 1100, 3000]))
    def advance(self, ms: int) -> None:
        self.client.clock_offset_ms += ms

    @rule(group=st.sampled_from(GROUPS))
    def pause(self, group: str) -> None:
        self.run(self.q.pause_group(group))
        self.paused.add(group)

    @rule(group=st.sampled_from(GROUPS))
    def resume(self, group: str) -> None:
        self.run(self.q.resume_group(group))
        self.paused.discard(group)

    @rule(group=st.sampled_from(GROUPS), cap=st.integers(1, 3))
    def set_cap(self, group: str, cap: int) -> None:
        self.run(self.q.set_group_concurrency(group, cap))
        self.caps[group] = cap

    # -- invariants ----------------------------------------------------------------------------

    def check_caps(self, groups: set[str]) -> None:
        """Leases in Redis never exceed the caps when a job starts. (A cap lowered at run time
        lets running jobs finish, so groups are checked right after they were given a job.)"""
        assert self.run(self.redis.zcard(self.q.key(redis_keys.ACTIVE))) <= GLOBAL_CAP
        for group in groups:
            key = redis_keys.group_key(self.client.prefix, "sync", group, "active")
            assert self.run(self.redis.zcard(key)) <= self.caps[group]

    @invariant()
    def global_cap_holds(self) -> None:
        # Invariants run after every step, so this also counts the operations.
        QueueMachine.steps += 1
        assert self.run(self.redis.zcard(self.q.key(redis_keys.ACTIVE))) <= GLOBAL_CAP

    def drain_and_check(self) -> None:
        """Everything at rest: resume all, let time pass, run every job to an end."""
        for group in GROUPS:
            self.run(self.q.resume_group(group))
        for _ in range(2000):
            self.client.clock_offset_ms += 5000
            jobs = self.run(self.q.reserve(GLOBAL_CAP)).jobs
            if not jobs:
                counts = self.run(self.q.counts())
                if counts.active == 0 and counts.delayed == 0 and counts.ready_groups == 0:
                    break
            for job in jobs:
                self.latest_token[job.id] = job.token
                self.ack(job)
        counts = self.run(self.q.counts())
        assert counts.active == counts.delayed == counts.ready_groups == 0
        assert counts.enqueued == len(self.enqueued)
        assert counts.completed == len(self.completed)
        assert counts.enqueued == counts.completed + counts.failed + counts.dead
        dead = set(self.run(self.q.terminal_ids("dead", limit=100_000)))
        failed = set(self.run(self.q.terminal_ids("failed", limit=100_000)))
        assert not (dead & failed)
        assert not (dead & self.completed)
        assert not (failed & self.completed)
        assert dead | failed | self.completed == set(self.enqueued), "a job was lost"
        assert self.run(self.redis.hlen(self.q.key(redis_keys.GROUP_SIZE))) == 0


def test_queue_state_machine(redis_url: str) -> None:
    QueueMachine.redis_url = redis_url
    QueueMachine.steps = 0
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=500,  # up to 20,000 operations; asserted >= 10,000 below
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
    print(f"stateful operations: {QueueMachine.steps}")
    assert QueueMachine.steps >= 10_000, QueueMachine.steps
