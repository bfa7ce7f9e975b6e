"""Typed task handles, and the one registry that binds them to their handlers.

A handle (name, queue, payload type, options) is declared apart from its handler, in
`neanelu.handles`, so any service can enqueue a task without importing the code that runs it
(`await full_sync.enqueue_in_tx(conn, FullSyncJob(...), group=shop_id)`): a task name never
appears as a bare string outside its declaration and mypy checks the payload type at every call.
The worker's composition root binds each handle to its handler, once: `registry.bind(handle,
handler, on_dead=...)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from neanelu.db.pool import Conn
from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.context import JobContext, Resources
from neanelu.queue.jobs import DeadJob, EnqueueResult
from neanelu.queue.observe import job_headers
from neanelu.queue.outbox import OutboxJob, OutboxOptions, options_json, write_outbox

P = TypeVar("P", bound=msgspec.Struct)
Handler = Callable[[JobContext, P], Awaitable[None]]
# Called once when the queue gives up on a job of the task (dead-lettered or failed for good),
# so the domain can record what the job was doing as failed; the queue knows nothing of it.
DeadHook = Callable[[Resources, P, DeadJob], Awaitable[None]]


class TaskHandle(Generic[P]):
    """What callers know of a task: enough to enqueue it, nothing of the code that runs it."""

    def __init__(
        self,
        *,
        name: str,
        queue: str,
        payload_type: type[P],
        max_attempts: int = 0,
    ) -> None:
        self.name = name
        self.queue = queue
        self.payload_type = payload_type
        self.max_attempts = max_attempts
        self._decoder = msgspec.json.Decoder(payload_type)

    def decode(self, raw: bytes) -> P:
        return self._decoder.decode(raw)

    def spec(
        self,
        payload: P,
        *,
        group: str | uuid.UUID,
        job_id: str = "",
        delay_s: float = 0.0,
        priority: int = 0,
        headers: dict[str, str] | None = None,
    ) -> JobSpec:
        if not isinstance(payload, self.payload_type):
            raise TypeError(f"task {self.name} takes {self.payload_type.__name__}")
        return JobSpec(
            task=self.name,
            group=str(group),
            payload=msgspec.json.encode(payload),
            job_id=job_id or uuid.uuid4().hex,
            delay_s=delay_s,
            priority=priority,
            headers=job_headers(headers, delay_s),
            max_attempts=self.max_attempts,
        )

    def outbox_job(self, *, headers: dict[str, str] | None = None) -> OutboxJob:
        """The handle's part of an outbox row built in SQL (see `OutboxJob`), with the options
        `enqueue_in_tx` gives a job due now (the current trace context unless `headers`)."""
        options = OutboxOptions(headers=job_headers(headers, 0.0), max_attempts=self.max_attempts)
        return OutboxJob(queue=self.queue, task=self.name, options=options_json(options))

    async def enqueue(
        self,
        client: QueueClient,
        payload: P,
        *,
        group: str | uuid.UUID,
        job_id: str = "",
        delay_s: float = 0.0,
        priority: int = 0,
        headers: dict[str, str] | None = None,
    ) -> EnqueueResult:
        """Straight to Redis; for jobs that depend on no database write (else `enqueue_in_tx`).
        Raises GroupFull when the group is at its maximum size."""
        spec = self.spec(
            payload, group=group, job_id=job_id, delay_s=delay_s, priority=priority, headers=headers
        )
        return await client.queue(self.queue).enqueue(spec)

    async def enqueue_in_tx(
        self,
        conn: Conn,
        payload: P,
        *,
        group: str | uuid.UUID,
        job_id: str = "",
        delay_s: float = 0.0,
        priority: int = 0,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Write an outbox row in the caller's open transaction: the job exists exactly when the
        transaction commits. Returns the job id."""
        spec = self.spec(
            payload, group=group, job_id=job_id, delay_s=delay_s, priority=priority, headers=headers
        )
        await write_outbox(conn, self.queue, spec)
        return spec.job_id


@dataclass(frozen=True, slots=True)
class BoundTask(Generic[P]):
    """A handle with the handler (and dead hook) the worker runs for it."""

    handle: TaskHandle[P]
    handler: Handler[P]
    on_dead: DeadHook[P] | None = None

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def queue(self) -> str:
        return self.handle.queue

    def decode(self, raw: bytes) -> P:
        return self.handle.decode(raw)


class Registry:
    def __init__(self) -> None:
        self._tasks: dict[str, BoundTask[Any]] = {}

    def bind(
        self, handle: TaskHandle[P], handler: Handler[P], *, on_dead: DeadHook[P] | None = None
    ) -> BoundTask[P]:
        """Run `handler` for the jobs of `handle` (and `on_dead` when the queue gives one up)."""
        if handle.name in self._tasks:
            raise ValueError(f"task {handle.name!r} is registered twice")
        bound = BoundTask(handle, handler, on_dead)
        self._tasks[handle.name] = bound
        return bound

    def get(self, name: str) -> BoundTask[Any] | None:
        return self._tasks.get(name)

    def tasks(self) -> list[BoundTask[Any]]:
        return list(self._tasks.values())

    def queues(self) -> set[str]:
        return {t.queue for t in self._tasks.values()}
