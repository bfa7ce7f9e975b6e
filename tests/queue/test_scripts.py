"""The Lua scripts through the Queue API, one behaviour per test, time moved by the clock offset."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from neanelu.queue import redis_keys
from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.errors import GroupFull
from neanelu.queue.jobs import EnqueueResult, FailResult
from neanelu.queue.scripts import script_source


def spec(group: str, job_id: str, **kw: Any) -> JobSpec:
    return JobSpec(task="t", group=group, payload=b"{}", job_id=job_id, **kw)


async def test_enqueue_is_idempotent_by_job_id(queues: QueueClient) -> None:
    q = queues.queue("sync")
    assert await q.enqueue(spec("a", "j1")) is EnqueueResult.ENQUEUED
    assert await q.enqueue(spec("a", "j1")) is EnqueueResult.DUPLICATE
    job = (await q.reserve()).jobs[0]
    assert await q.complete(job)
    # A relay pushing the same outbox row again after completion still changes nothing.
    assert await q.enqueue(spec("a", "j1")) is EnqueueResult.DUPLICATE
    counts = await q.counts()
    assert (counts.enqueued, counts.completed) == (1, 1)


async def test_a_new_job_reads_back_with_no_attempts_or_stalls(queues: QueueClient) -> None:
    """enqueue stores only what is read later (attempts and stalls start as absent fields): the
    job reads back whole, and counting from absent starts at 0."""
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j", priority=7, headers={"k": "v"}, max_attempts=4))
    info = await q.job_info("j")
    assert info is not None
    assert (info.group, info.task, info.state, info.payload, info.headers) == (
        "a",
        "t",
        "waiting",
        b"{}",
        {"k": "v"},
    )
    assert (info.attempts, info.max_attempts, info.stalls, info.error) == (0, 4, 0, None)
    assert info.created_ms > 0
    (job,) = (await q.reserve()).jobs
    assert (job.attempt, job.max_attempts) == (1, 4)
    assert await q.defer(job, 0.0)
    info = await q.job_info("j")
    assert info is not None
    assert (info.state, info.attempts) == ("waiting", 0)


async def test_reserve_hands_back_every_byte_of_its_jobs(queues: QueueClient) -> None:
    """reserve.lua packs its answer as length-prefixed fields in one string: payloads that
    hold the separator, digits, NUL or bytes that are not UTF-8 come back exactly, and so do
    the jobs around them and the acks that rode along."""
    q = queues.queue("sync")
    odd = [b"", b"12:34:", b'{"a": "b:c"}\x00', b"\xff\xfe:\n:9"]
    for n, payload in enumerate(odd):
        await q.enqueue(
            JobSpec(
                task="t:odd",
                group=f"g{n}",
                payload=payload,
                job_id=f"odd:{n}",
                headers={"k:1": "v:2"},
            )
        )
    first = await q.reserve(2)
    rest = await q.reserve(2, ack=first.jobs)
    assert rest.acked == [True, True]
    jobs = sorted(first.jobs + rest.jobs, key=lambda job: job.id)
    assert [job.id for job in jobs] == [f"odd:{n}" for n in range(4)]
    assert [job.payload for job in jobs] == odd
    assert {job.task for job in jobs} == {"t:odd"}
    assert all(job.headers == {"k:1": "v:2"} for job in jobs)
    assert all(job.attempt == 1 and job.token for job in jobs)


async def test_groups_take_turns(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.set_group_concurrency("noisy", 100)
    for i in range(10):
        await q.enqueue(spec("noisy", f"n{i}"))
    await q.enqueue(spec("b", "b0"))
    await q.enqueue(spec("c", "c0"))
    order = []
    for _ in range(6):
        (job,) = (await q.reserve()).jobs
        order.append(job.id)
        await q.complete(job)
    assert order[:3] == ["n0", "b0", "c0"]
    assert order[3:] == ["n1", "n2", "n3"]


async def test_group_and_global_caps(queues: QueueClient) -> None:
    q = queues.queue("sync")  # group cap 2, global cap 5
    for g in "abcd":
        for i in range(3):
            await q.enqueue(spec(g, f"{g}{i}"))
    jobs = (await q.reserve(20)).jobs
    assert len(jobs) == 5
    per_group: dict[str, int] = {}
    for job in jobs:
        per_group[job.group] = per_group.get(job.group, 0) + 1
    assert max(per_group.values()) <= 2
    assert (await q.reserve(5)).jobs == []
    await q.complete(jobs[0])
    assert len((await q.reserve(5)).jobs) == 1


async def test_group_concurrency_override_at_run_time(queues: QueueClient) -> None:
    q = queues.queue("sync")
    for i in range(4):
        await q.enqueue(spec("a", f"a{i}"))
    await q.set_group_concurrency("a", 1)
    assert len((await q.reserve(4)).jobs) == 1
    await q.set_group_concurrency("a", 3)
    assert len((await q.reserve(4)).jobs) == 2
    assert (await q.group_state("a"))["concurrency"] == 3


async def test_reserve_rechecks_groups_the_ready_line_should_not_hold(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    """reserve trusts no group's place in the ready line: a paused group, a blocked one and one
    at its own cap, put back in line by hand as if some script had left the line out of step,
    start nothing, while a group that may run does."""
    q = queues.queue("sync")
    for g in ("paused", "blocked", "capped", "free"):
        await q.enqueue(spec(g, f"{g}0"))
        await q.enqueue(spec(g, f"{g}1"))
    await q.set_group_concurrency("capped", 1)
    started = [j.group for j in (await q.reserve(4)).jobs]  # one of each: "capped" is full
    assert sorted(started) == ["blocked", "capped", "free", "paused"]
    await redis_client.delete(q.key(redis_keys.READY))
    await q.pause_group("paused")
    await redis_client.zadd(q.key(redis_keys.BLOCKED), {"blocked": 10**15})
    line = {g: n for n, g in enumerate(("paused", "blocked", "capped", "free"))}
    await redis_client.zadd(q.key(redis_keys.READY), line)
    jobs = (await q.reserve(4)).jobs
    assert [j.group for j in jobs] == ["free"]


async def test_enqueue_leaves_out_of_line_a_group_that_may_not_start(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    """enqueue puts a group in the ready line only when it could start a job now: not while it
    is paused, blocked, or at its own cap; a group with no rules at all goes in."""
    q = queues.queue("sync")
    ready = q.key(redis_keys.READY)
    await q.pause_group("paused")
    await q.enqueue(spec("paused", "p0"))
    await q.enqueue(spec("blocked", "b0"))
    (b0,) = (await q.reserve(1)).jobs
    assert await q.defer(b0, 60.0, block_group=True)
    await q.enqueue(spec("blocked", "b1"))
    await q.set_group_concurrency("capped", 1)
    await q.enqueue(spec("capped", "c0"))
    (c0,) = (await q.reserve(1)).jobs
    assert c0.id == "c0"
    await q.enqueue(spec("capped", "c1"))
    assert await redis_client.zrange(ready, 0, -1) == []
    await q.resume_group("paused")
    await q.set_group_concurrency("capped", None)
    await redis_client.delete(q.key(redis_keys.PAUSED), q.key(redis_keys.BLOCKED))
    await redis_client.zrem(ready, "paused", "capped")
    await q.enqueue(spec("free", "f0"))
    assert await redis_client.zrange(ready, 0, -1) in ([b"free"], ["free"])


async def test_priority_within_group(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.set_group_concurrency("a", 1)
    await q.enqueue(spec("a", "low", priority=-5))
    await q.enqueue(spec("a", "mid"))
    await q.enqueue(spec("a", "high", priority=7))
    seen = []
    for _ in range(3):
        (job,) = (await q.reserve()).jobs
        seen.append(job.id)
        await q.complete(job)
    assert seen == ["high", "mid", "low"]


async def test_delayed_job_waits_for_its_time(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "later", delay_s=30))
    reservation = await q.reserve()
    assert reservation.jobs == []
    assert reservation.wake_s is not None
    assert 29 < reservation.wake_s <= 30
    queues.clock_offset_ms = 30_001
    assert [j.id for j in (await q.reserve()).jobs] == ["later"]


async def test_retries_back_off_then_dead_letter(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j", max_attempts=3))
    for attempt in (1, 2, 3):
        queues.clock_offset_ms += 10_000_000
        (job,) = (await q.reserve()).jobs
        assert job.attempt == attempt
        result = await q.fail(job, "boom")
        assert result is (FailResult.DEAD if attempt == 3 else FailResult.RETRY)
        if attempt == 1:
            # The backoff holds the job back until its time.
            assert (await q.reserve()).jobs == []
    counts = await q.counts()
    assert (counts.dead, counts.dead_letter) == (1, 1)
    info = await q.job_info("j")
    assert info is not None
    assert info.state == "dead"
    assert info.error == "boom"


async def test_fatal_goes_to_failed_set(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j"))
    (job,) = (await q.reserve()).jobs
    assert await q.fail(job, "bad payload", fatal=True) is FailResult.FAILED
    assert await q.terminal_ids("failed") == ["j"]
    assert (await q.counts()).failed == 1


async def test_defer_keeps_the_attempt_count(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j"))
    for _ in range(5):
        (job,) = (await q.reserve()).jobs
        assert job.attempt == 1
        assert await q.defer(job, 1.0)
        queues.clock_offset_ms += 1001


async def test_group_block_holds_every_job_of_the_group(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("shop", "first"))
    await q.enqueue(spec("shop", "second"))
    await q.enqueue(spec("other", "o1"))
    await q.set_group_concurrency("shop", 1)
    jobs = {j.id: j for j in (await q.reserve(5)).jobs}
    assert set(jobs) == {"first", "o1"}
    assert await q.defer(jobs["first"], 5.0, block_group=True)
    assert await q.complete(jobs["o1"])
    assert (await q.reserve(5)).jobs == []  # "second" must not start while the shop is blocked
    queues.clock_offset_ms += 5001
    (job,) = (await q.reserve(5)).jobs
    assert (job.id, job.attempt) == ("first", 1)


async def test_pause_and_resume_group(queues: QueueClient) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "a0"))
    await q.pause_group("a")
    await q.enqueue(spec("a", "a1"))
    assert (await q.reserve(5)).jobs == []
    await q.resume_group("a")
    assert len((await q.reserve(5)).jobs) == 2


async def test_max_group_size_refuses_more(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    from neanelu.queue.settings import QueueSettings

    client = QueueClient(
        redis_client,
        {"sync": QueueSettings(name="sync", max_group_size=2)},
        prefix=queues.prefix,
    )
    q = client.queue("sync")
    await q.enqueue(spec("a", "1"))
    await q.enqueue(spec("a", "2"))
    try:
        await q.enqueue(spec("a", "3"))
        raise AssertionError("expected GroupFull")
    except GroupFull:
        pass
    assert await q.enqueue(spec("b", "b1")) is EnqueueResult.ENQUEUED
    job = next(j for j in (await q.reserve(5)).jobs if j.group == "a")
    await q.complete(job)
    assert await q.enqueue(spec("a", "3")) is EnqueueResult.ENQUEUED


async def test_late_ack_from_stalled_worker_changes_nothing(queues: QueueClient) -> None:
    q = queues.queue("sync")  # lease 1 s
    await q.enqueue(spec("a", "j"))
    (stale,) = (await q.reserve()).jobs
    queues.clock_offset_ms += 1001
    (fresh,) = (await q.reserve()).jobs
    assert fresh.id == "j"
    assert fresh.token != stale.token
    assert fresh.attempt == 1
    assert not await q.complete(stale)
    assert await q.fail(stale, "late") is FailResult.STALE
    assert not await q.defer(stale, 1)
    assert await q.extend([stale, fresh]) == [False, True]
    assert await q.complete(fresh)
    assert (await q.counts()).completed == 1


async def test_stalls_then_dead_letter(queues: QueueClient) -> None:
    q = queues.queue("sync")  # max_stalls 3
    await q.enqueue(spec("a", "j"))
    for _ in range(4):
        assert [j.id for j in (await q.reserve()).jobs] == ["j"]
        queues.clock_offset_ms += 1001
    assert (await q.reserve()).jobs == []
    assert await q.terminal_ids("dead") == ["j"]
    info = await q.job_info("j")
    assert info is not None
    assert info.stalls == 4


async def test_dead_letter_retry_and_purge(queues: QueueClient) -> None:
    from neanelu.queue import admin

    q = queues.queue("sync")
    for i in range(3):
        await q.enqueue(spec("a", f"j{i}", max_attempts=1))
        (job,) = (await q.reserve()).jobs
        await q.fail(job, "x")
    assert [j.id for j in await admin.list_dead(queues, "sync")] == ["j0", "j1", "j2"]
    assert await admin.retry_dead(queues, "sync", ["j1"]) == 1
    (job,) = (await q.reserve()).jobs
    assert (job.id, job.attempt) == ("j1", 1)
    await q.complete(job)
    assert await admin.purge_dead(queues, "sync") == 2
    counts = await q.counts()
    assert counts.dead_letter == 0
    assert counts.enqueued == counts.completed + counts.failed + counts.dead


async def test_events_stream_records_state_changes(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j"))
    (job,) = (await q.reserve()).jobs
    await q.complete(job)
    entries = await _events(redis_client, q.key(redis_keys.EVENTS))
    assert [e[b"e"] for e in entries] == [b"waiting", b"active", b"completed"]
    assert entries[0][b"id"] == b"j"
    assert entries[0][b"g"] == b"a"
    for fields in entries[1:]:
        assert (fields[b"n"], json.loads(fields[b"ids"]), json.loads(fields[b"gs"])) == (
            b"1",
            ["j"],
            ["a"],
        )


async def _events(redis_client: aioredis.Redis, key: str) -> list[dict[bytes, bytes]]:
    """The event stream's entries' fields, oldest first."""
    found = await redis_client.xrange(key)
    assert found is not None
    return [
        {_raw(k): _raw(v) for k, v in fields.items()} for _, fields in found if fields is not None
    ]


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def test_starts_and_completions_are_one_event_per_call(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    """A reserve of three jobs and an ack of three write one entry each, naming every job."""
    q = queues.queue("sync")
    for group, job_id in (("a", "x1"), ("b", "x2"), ("c", "x3")):
        await q.enqueue(spec(group, job_id))
    jobs = (await q.reserve(3)).jobs
    assert sorted(j.id for j in jobs) == ["x1", "x2", "x3"]
    assert await q.complete_many(jobs) == [True, True, True]
    entries = await _events(redis_client, q.key(redis_keys.EVENTS))
    assert [e[b"e"] for e in entries] == [b"waiting"] * 3 + [b"active", b"completed"]
    for batch in entries[3:]:
        ids, groups = json.loads(batch[b"ids"]), json.loads(batch[b"gs"])
        assert batch[b"n"] == b"3"
        assert sorted(ids) == ["x1", "x2", "x3"]
        assert {i: g for i, g in zip(ids, groups, strict=True)} == {"x1": "a", "x2": "b", "x3": "c"}


async def test_keys_share_one_hash_tag(queues: QueueClient, redis_client: aioredis.Redis) -> None:
    q = queues.queue("sync")
    await q.enqueue(spec("a", "j"))
    assert len((await q.reserve()).jobs) == 1
    found = [k.decode() async for k in redis_client.scan_iter(match=f"{queues.prefix}:*")]
    assert found
    assert all("{sync}" in k for k in found)


async def test_quiet_shop_starts_on_next_free_slot(queues: QueueClient) -> None:
    """100,000 jobs of a noisy shop hold every slot; a quiet shop's one job takes the next one."""
    q = queues.queue("sync")  # global cap 5
    await q.set_group_concurrency("noisy", 1000)
    batch = 5000
    for start in range(0, 100_000, batch):
        results = await q.enqueue_many(
            [spec("noisy", f"n{i}") for i in range(start, start + batch)]
        )
        assert all(r is EnqueueResult.ENQUEUED for r in results)
    running = (await q.reserve(5)).jobs
    assert len(running) == 5
    assert {j.group for j in running} == {"noisy"}
    await q.enqueue(spec("quiet", "q1"))
    await q.complete(running[0])
    (nxt,) = (await q.reserve(5)).jobs
    assert nxt.id == "q1"


async def test_audit_balances_the_books_and_names_overdue_leases(queues: QueueClient) -> None:
    q = queues.queue("sync")  # lease 1 s
    for i in range(5):
        await q.enqueue(spec(f"g{i}", f"j{i}", max_attempts=1))
    await q.enqueue(spec("g0", "later", delay_s=60))
    jobs = {j.id: j for j in (await q.reserve(5)).jobs}
    assert await q.complete(jobs["j0"])
    assert await q.fail(jobs["j1"], "bad", fatal=True) is FailResult.FAILED
    assert await q.fail(jobs["j2"], "boom") is FailResult.DEAD
    audit = await q.audit()
    # j3 and j4 leased, "later" delayed: five settled or not, six enqueued.
    assert (audit.enqueued, audit.completed, audit.failed, audit.dead) == (6, 1, 1, 1)
    assert (audit.unfinished, audit.leased) == (3, 2)
    assert audit.balanced
    assert audit.holds
    # Their workers stop renewing: past deadline, the leases are named until a reserve reclaims them.
    queues.clock_offset_ms += 1500
    audit = await q.audit(grace_ms=200)
    assert sorted(audit.overdue_leases) == ["j3", "j4"]
    assert audit.balanced
    assert not audit.holds
    assert (await q.audit(grace_ms=5000)).holds
    await q.reserve(0)
    reclaimed = await q.audit()
    assert reclaimed.overdue_leases == []
    assert reclaimed.unfinished == 3
    assert reclaimed.holds
    assert "unfinished=3" in reclaimed.describe()


async def test_acks_ride_on_reserve_and_free_their_slots_in_the_same_call(
    queues: QueueClient,
) -> None:
    q = queues.queue("sync")  # group cap 2
    for i in range(3):
        await q.enqueue(spec("a", f"a{i}"))
    first, second = (await q.reserve(5)).jobs
    assert (await q.reserve(5)).jobs == []  # the group is at its cap
    reservation = await q.reserve(5, ack=[first])
    assert reservation.acked == [True]
    assert [j.id for j in reservation.jobs] == ["a2"]  # the ack's slot, filled at once
    # A repeated (stale) ack changes nothing and is reported per job, beside a good one.
    again = await q.reserve(5, ack=[first, second])
    assert again.acked == [False, True]
    assert again.jobs == []
    assert await q.complete_many([second, reservation.jobs[0]]) == [False, True]
    counts = await q.counts()
    assert (counts.completed, counts.active, counts.ready_groups) == (3, 0, 0)


def test_each_script_carries_only_the_helpers_it_uses() -> None:
    enqueue = script_source("enqueue")
    assert "local function maybe_ready(" in enqueue  # through ready_after_enqueue
    assert "local function housekeeping(" not in enqueue
    reserve = script_source("reserve")
    for helper in ("housekeeping", "to_terminal", "complete_one", "events_flush", "next_wake"):
        assert f"local function {helper}(" in reserve


async def test_scripts_reload_after_redis_forgot_them(
    queues: QueueClient, redis_client: aioredis.Redis
) -> None:
    """Scripts go out as bare EVALSHA: a Redis that lost them (restarted, SCRIPT FLUSH) gets each
    loaded again on its first NOSCRIPT, and the call it refused is made again, once."""
    q = queues.queue("sync")
    await q.enqueue(spec("a", "before"))
    await redis_client.script_flush()
    assert await q.enqueue(spec("a", "after")) is EnqueueResult.ENQUEUED
    await redis_client.script_flush()
    jobs = (await q.reserve(5)).jobs
    assert sorted(j.id for j in jobs) == ["after", "before"]
    counts = await q.counts()
    assert (counts.enqueued, counts.active) == (2, 2)
