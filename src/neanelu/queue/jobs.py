"""The job as the worker receives it, and the results of queue operations."""

from __future__ import annotations

from enum import IntEnum

import msgspec


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A reserved job: the spec given at enqueue plus the lease that makes this worker its owner."""

    id: str
    queue: str
    group: str
    task: str
    payload: bytes  # msgspec JSON of the task's payload struct
    headers: dict[str, str]
    attempt: int  # 1 for the first run; deferrals and stalls do not count
    max_attempts: int
    token: str  # fencing token: ack, fail, defer and renew are refused without the current one
    lease_deadline_ms: int


class DeadJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job the queue gave up on, as its task's dead hook hears of it: dead-lettered (attempts or
    stalls exhausted) or failed for good (the handler raised Fatal)."""

    id: str
    queue: str
    group: str
    task: str
    payload: bytes
    attempts: int
    error: str
    state: str = "dead"  # `dead` (the dead-letter set) or `failed` (the failed set)


class EnqueueResult(IntEnum):
    ENQUEUED = 1
    DUPLICATE = 0  # a job with this id exists (or completed recently): nothing changed
    GROUP_FULL = -1


class FailResult(IntEnum):
    STALE = 0  # the lease was lost; the job belongs to someone else now
    RETRY = 1
    FAILED = 2
    DEAD = 3


class JobInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A job as stored, for inspection (dead-letter listings, admin pages)."""

    id: str
    group: str
    task: str
    state: str
    attempts: int
    max_attempts: int
    stalls: int
    payload: bytes
    headers: dict[str, str]
    error: str | None
    created_ms: int
    ended_ms: int | None


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    enqueued: int
    completed: int
    failed: int
    dead: int
    active: int
    delayed: int
    ready_groups: int
    dead_letter: int  # jobs in the dead-letter set now (dead minus purged)
    failed_set: int


class QueueAudit(msgspec.Struct, frozen=True, kw_only=True):
    """One consistent read of a queue's books (taken in one MULTI): every job ever enqueued is
    completed, failed, dead or still unfinished (waiting, delayed or leased), and no lease is
    past its deadline by more than the grace a reserve needs to reclaim it."""

    enqueued: int
    completed: int
    failed: int
    dead: int
    unfinished: int  # the per-group sizes summed: waiting + delayed + leased
    leased: int
    overdue_leases: list[str]  # ids of jobs leased past deadline + grace

    @property
    def balanced(self) -> bool:
        return self.enqueued == self.completed + self.failed + self.dead + self.unfinished

    @property
    def holds(self) -> bool:
        return self.balanced and not self.overdue_leases

    def describe(self) -> str:
        return (
            f"enqueued={self.enqueued} completed={self.completed} failed={self.failed} "
            f"dead={self.dead} unfinished={self.unfinished} leased={self.leased} "
            f"overdue_leases={len(self.overdue_leases)}"
        )


headers_encoder = msgspec.json.Encoder()
headers_decoder = msgspec.json.Decoder(dict[str, str])
