"""The queue as callers and workers see it: one `Queue` per queue name, sharing one Redis client.

Every state change is one Lua script (atomic); this module only builds arguments and reads
results. Ack, fail, defer and renew carry the lease token, so a worker that lost its lease (it
stalled, the job ran elsewhere) changes nothing.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from neanelu.queue import redis_keys
from neanelu.queue.errors import GroupFull
from neanelu.queue.jobs import (
    DeadJob,
    EnqueueResult,
    FailResult,
    Job,
    JobInfo,
    QueueAudit,
    QueueCounts,
    headers_decoder,
    headers_encoder,
)
from neanelu.queue.scripts import QueueScripts
from neanelu.queue.settings import QueueSettings

MAX_PRIORITY = 1000


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What enqueue needs; the outbox stores the same fields."""

    task: str
    group: str
    payload: bytes
    job_id: str = ""
    delay_s: float = 0.0
    priority: int = 0  # higher runs sooner within its group; groups themselves take turns
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    max_attempts: int = 0  # 0: the queue's default


class Reservation(msgspec.Struct, frozen=True):
    jobs: list[Job]
    # When nothing was taken: seconds until the next delayed job, unblock or lease end (None: no
    # timed work). A worker sleeps at most this long before asking again.
    wake_s: float | None
    # Jobs this reserve dead-lettered because they stalled too often (their worker kept dying):
    # the reserving worker runs their tasks' dead hooks, as it does for jobs it fails itself.
    dead: list[DeadJob] = msgspec.field(default_factory=list)
    # One result per job acked by this call (`reserve(ack=...)`), as `complete` returns them.
    acked: list[bool] = msgspec.field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _unpack(packed: Any) -> list[bytes]:
    """The fields of a reply packed as "<length>:<field>" one after the other (reserve.lua)."""
    blob = _bytes(packed)
    fields = []
    at = 0
    while at < len(blob):
        colon = blob.index(b":", at)
        end = colon + 1 + int(blob[at:colon])
        fields.append(blob[colon + 1 : end])
        at = end
    return fields


class QueueClient:
    """The queues of one deployment over one Redis client (built once per process)."""

    def __init__(
        self,
        redis: Redis,
        queues: Mapping[str, QueueSettings],
        *,
        prefix: str = redis_keys.DEFAULT_PREFIX,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.scripts = QueueScripts(redis)
        # Added to Redis' clock inside every script. Always 0 in production; tests move time
        # forward with it instead of sleeping through leases and delays.
        self.clock_offset_ms = 0
        self._queues = {name: Queue(self, s) for name, s in queues.items()}

    def queue(self, name: str) -> Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"no queue named {name!r}; known: {sorted(self._queues)}") from None

    @property
    def names(self) -> list[str]:
        return list(self._queues)


class Queue:
    def __init__(self, client: QueueClient, settings: QueueSettings) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.name
        self._base = redis_keys.queue_base(client.prefix, settings.name)

    @property
    def _redis(self) -> Redis:
        return self.client.redis

    @property
    def _offset(self) -> int:
        return self.client.clock_offset_ms

    def key(self, suffix: str) -> str:
        return redis_keys.queue_key(self.client.prefix, self.name, suffix)

    # -- enqueue -------------------------------------------------------------------------------

    def _enqueue_args(self, spec: JobSpec) -> list[str | bytes | int]:
        if not -MAX_PRIORITY <= spec.priority <= MAX_PRIORITY:
            raise ValueError(f"priority must be within ±{MAX_PRIORITY}")
        if not spec.group or ":" in spec.group or "{" in spec.group or "}" in spec.group:
            # The group is part of key names; braces would change the cluster hash tag.
            raise ValueError(f"invalid group {spec.group!r}")
        return [
            self._offset,
            spec.job_id or uuid.uuid4().hex,
            spec.group,
            spec.task,
            spec.payload,
            headers_encoder.encode(spec.headers),
            spec.priority,
            spec.max_attempts or self.settings.max_attempts,
            round(spec.delay_s * 1000),
            self.settings.max_group_size,
            self.settings.group_concurrency,
            self.settings.events_maxlen,
        ]

    async def enqueue(self, spec: JobSpec, *, raise_when_full: bool = True) -> EnqueueResult:
        """Idempotent by job id: enqueueing an id that exists (or recently completed) does nothing."""
        raw = await self.client.scripts.enqueue([self._base], self._enqueue_args(spec))
        result = EnqueueResult(int(raw))
        if result is EnqueueResult.GROUP_FULL and raise_when_full:
            raise GroupFull(self.name, spec.group)
        return result

    async def enqueue_many(self, specs: Sequence[JobSpec]) -> list[EnqueueResult]:
        """Many jobs in one round trip; a full group is reported per job, not raised."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for spec in specs:
                await self.client.scripts.enqueue(
                    [self._base], self._enqueue_args(spec), client=pipe
                )
            raw = await pipe.execute()
        return [EnqueueResult(int(r)) for r in raw]

    # -- worker side ---------------------------------------------------------------------------

    async def reserve(self, count: int = 1, *, ack: Sequence[Job] = ()) -> Reservation:
        """Lease up to `count` jobs. Jobs in `ack` are completed first, in the same script (as
        `complete_many` would), so a worker fills the slots its acks free in one round trip."""
        s = self.settings
        args: list[str | int] = [
            self._offset,
            count,
            s.global_concurrency,
            s.group_concurrency,
            s.lease_ms,
            s.max_stalls,
            s.events_maxlen,
            s.keep_completed_ms,
        ]
        for job in ack:
            args += [job.id, job.token]
        raw = _unpack(await self.client.scripts.reserve([self._base], args))
        wake_ms, n = int(raw[0]), int(raw[1])
        jobs = []
        for i in range(n):
            f = raw[2 + 9 * i : 11 + 9 * i]
            jobs.append(
                Job(
                    id=_text(f[0]),
                    queue=self.name,
                    group=_text(f[1]),
                    task=_text(f[2]),
                    payload=_bytes(f[3]),
                    headers=headers_decoder.decode(_bytes(f[4])),
                    attempt=int(f[5]),
                    max_attempts=int(f[6]),
                    token=_text(f[7]),
                    lease_deadline_ms=int(f[8]),
                )
            )
        wake = None if n or wake_ms < 0 else wake_ms / 1000
        at = 2 + 9 * n
        dead = []
        for i in range(int(raw[at])):
            f = raw[at + 1 + 6 * i : at + 7 + 6 * i]
            dead.append(
                DeadJob(
                    id=_text(f[0]),
                    queue=self.name,
                    group=_text(f[1]),
                    task=_text(f[2]),
                    payload=_bytes(f[3]),
                    attempts=int(f[4]),
                    error=_text(f[5]),
                )
            )
        at += 1 + 6 * len(dead)
        acked = [bool(int(r)) for r in raw[at : at + len(ack)]]
        return Reservation(jobs, wake, dead, acked)

    async def complete(self, job: Job) -> bool:
        """False when the lease was lost: the job was (or will be) run by someone else."""
        (ok,) = await self.complete_many([job])
        return ok

    async def complete_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Several acks in one script call (each stands alone: a stale token fails only its own)."""
        if not jobs:
            return []
        s = self.settings
        args: list[str | int] = [
            self._offset,
            s.group_concurrency,
            s.events_maxlen,
            s.keep_completed_ms,
        ]
        for job in jobs:
            args += [job.id, job.token]
        raw = await self.client.scripts.complete([self._base], args)
        return [bool(int(r)) for r in raw]

    def backoff_s(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_max_s, s.backoff_base_s * 2.0 ** max(0, attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)

    async def fail(
        self, job: Job, error: str, *, fatal: bool = False, delay_s: float | None = None
    ) -> FailResult:
        s = self.settings
        delay = self.backoff_s(job.attempt) if delay_s is None else delay_s
        raw = await self.client.scripts.fail(
            [self._base],
            [
                self._offset,
                job.id,
                job.token,
                "fatal" if fatal else "retry",
                round(delay * 1000),
                s.group_concurrency,
                s.events_maxlen,
                error[:2000],
            ],
        )
        return FailResult(int(raw))

    async def defer(self, job: Job, seconds: float, *, block_group: bool = False) -> bool:
        s = self.settings
        raw = await self.client.scripts.defer(
            [self._base],
            [
                self._offset,
                job.id,
                job.token,
                round(seconds * 1000),
                1 if block_group else 0,
                s.group_concurrency,
                s.events_maxlen,
            ],
        )
        return bool(int(raw))

    async def extend(self, jobs: Sequence[Job], lease_ms: int | None = None) -> list[bool]:
        """Renew leases; False for each job whose lease is gone (stop working on it)."""
        if not jobs:
            return []
        args: list[str | int] = [self._offset, lease_ms or self.settings.lease_ms]
        for job in jobs:
            args += [job.id, job.token]
        raw = await self.client.scripts.extend([self._base], args)
        return [bool(int(r)) for r in raw]

    # -- groups --------------------------------------------------------------------------------

    async def _group_op(self, op: str, group: str, value: int = 0) -> None:
        await self.client.scripts.group(
            [self._base], [self._offset, op, group, self.settings.group_concurrency, value]
        )

    async def pause_group(self, group: str) -> None:
        """No new job of the group starts (running ones finish); enqueue still accepts jobs."""
        await self._group_op("pause", group)

    async def resume_group(self, group: str) -> None:
        await self._group_op("resume", group)

    async def set_group_concurrency(self, group: str, limit: int | None) -> None:
        """Override the group's cap at run time; None returns it to the queue default."""
        if limit is not None and limit < 1:
            raise ValueError("group concurrency must be at least 1")
        await self._group_op("concurrency", group, limit or 0)

    async def group_state(self, group: str) -> dict[str, int | bool]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(redis_keys.group_key(self.client.prefix, self.name, group, "wait"))
            pipe.zcard(redis_keys.group_key(self.client.prefix, self.name, group, "active"))
            pipe.sismember(self.key(redis_keys.PAUSED), group)
            pipe.hget(self.key(redis_keys.GROUP_CONCURRENCY), group)
            pipe.hget(self.key(redis_keys.GROUP_SIZE), group)
            waiting, active, paused, cap, size = await pipe.execute()
        return {
            "waiting": int(waiting),
            "active": int(active),
            "paused": bool(paused),
            "concurrency": int(cap) if cap is not None else self.settings.group_concurrency,
            "size": int(size or 0),
        }

    # -- inspection and the dead-letter set ----------------------------------------------------

    async def counts(self) -> QueueCounts:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(redis_keys.STATS))
            pipe.zcard(self.key(redis_keys.ACTIVE))
            pipe.zcard(self.key(redis_keys.DELAYED))
            pipe.zcard(self.key(redis_keys.READY))
            pipe.zcard(self.key(redis_keys.DEAD))
            pipe.zcard(self.key(redis_keys.FAILED))
            stats, active, delayed, ready, dead_n, failed_n = await pipe.execute()
        totals = {_text(k): int(v) for k, v in stats.items()}
        return QueueCounts(
            enqueued=totals.get("enqueued", 0),
            completed=totals.get("completed", 0),
            failed=totals.get("failed", 0),
            dead=totals.get("dead", 0),
            active=int(active),
            delayed=int(delayed),
            ready_groups=int(ready),
            dead_letter=int(dead_n),
            failed_set=int(failed_n),
        )

    async def audit(self, grace_ms: int = 0) -> QueueAudit:
        """The queue's books in one MULTI (all its keys share one slot), with Redis' own clock
        (moved by the client's offset, as the scripts see it) for the lease deadlines."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.hgetall(self.key(redis_keys.STATS))
            pipe.hvals(self.key(redis_keys.GROUP_SIZE))
            pipe.zrange(self.key(redis_keys.ACTIVE), 0, -1, withscores=True)
            (seconds, micros), stats, sizes, leases = await pipe.execute()
        now = int(seconds) * 1000 + int(micros) // 1000 + self._offset
        totals = {_text(k): int(v) for k, v in stats.items()}
        return QueueAudit(
            enqueued=totals.get("enqueued", 0),
            completed=totals.get("completed", 0),
            failed=totals.get("failed", 0),
            dead=totals.get("dead", 0),
            unfinished=sum(int(v) for v in sizes),
            leased=len(leases),
            overdue_leases=[_text(j) for j, deadline in leases if deadline + grace_ms < now],
        )

    async def job_info(self, job_id: str) -> JobInfo | None:
        raw = await self._redis.hgetall(redis_keys.job_key(self.client.prefix, self.name, job_id))
        if not raw:
            return None
        f = {_text(k): v for k, v in raw.items()}

        def opt_int(name: str) -> int | None:
            return int(f[name]) if name in f else None

        return JobInfo(
            id=job_id,
            group=_text(f.get("g", b"")),
            task=_text(f.get("task", b"")),
            state=_text(f.get("state", b"")),
            attempts=int(f.get("att", 0)),
            max_attempts=int(f.get("max", 0)),
            stalls=int(f.get("st", 0)),
            payload=_bytes(f.get("p", b"")),
            headers=headers_decoder.decode(_bytes(f["h"])) if "h" in f else {},
            error=_text(f["err"]) if "err" in f else None,
            created_ms=opt_int("ct") or 0,
            ended_ms=opt_int("ended"),
        )

    async def terminal_ids(
        self, which: str = "dead", *, limit: int = 100, offset: int = 0
    ) -> list[str]:
        """Oldest first; `which` is `dead` (dead-letter set) or `failed` (Fatal jobs)."""
        raw = await self._redis.zrange(self._terminal_key(which), offset, offset + limit - 1)
        return [_text(r) for r in raw]

    async def retry_terminal(self, job_ids: Iterable[str], which: str = "dead") -> int:
        return await self._terminal_op("retry", which, job_ids)

    async def purge_terminal(self, job_ids: Iterable[str], which: str = "dead") -> int:
        return await self._terminal_op("purge", which, job_ids)

    def _terminal_key(self, which: str) -> str:
        if which not in ("dead", "failed"):
            raise ValueError("which must be 'dead' or 'failed'")
        return self.key(redis_keys.DEAD if which == "dead" else redis_keys.FAILED)

    async def _terminal_op(self, op: str, which: str, job_ids: Iterable[str]) -> int:
        self._terminal_key(which)
        ids = list(job_ids)
        if not ids:
            return 0
        s = self.settings
        raw = await self.client.scripts.terminal(
            [self._base], [self._offset, op, which, s.group_concurrency, s.events_maxlen, *ids]
        )
        return int(raw)
