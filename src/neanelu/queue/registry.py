"""Typed task handles, registered in one explicit registry.

Call sites enqueue through the handle (`await sync_full.enqueue(client, SyncFull(...), group=...)`),
so a task name never appears as a bare string outside its definition and the payload type is checked
by mypy at every call.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, get_type_hints

import msgspec

from neanelu.db.pool import Conn
from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.context import JobContext, Resources
from neanelu.queue.jobs import DeadJob, EnqueueResult
from neanelu.queue.observe import job_headers
from neanelu.queue.outbox import write_outbox

P = TypeVar("P", bound=msgspec.Struct)
Handler = Callable[[JobContext, P], Awaitable[None]]
# Called once when the queue gives up on a job of the task (dead-lettered or failed for good),
# so the domain can record what the job was doing as failed; the queue knows nothing of it.
DeadHook = Callable[[Resources, P, DeadJob], Awaitable[None]]


class TaskHandle(Generic[P]):
    def __init__(
        self,
        *,
        name: str,
        queue: str,
        payload_type: type[P],
        handler: Handler[P],
        max_attempts: int = 0,
        on_dead: DeadHook[P] | None = None,
    ) -> None:
        self.name = name
        self.queue = queue
        self.payload_type = payload_type
        self.handler = handler
        self.max_attempts = max_attempts
        self.on_dead = on_dead
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


class Registry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskHandle[Any]] = {}

    def task(
        self,
        *,
        queue: str,
        name: str,
        max_attempts: int = 0,
        on_dead: DeadHook[Any] | None = None,
    ) -> Callable[[Handler[P]], TaskHandle[P]]:
        """Register `async def handler(ctx: JobContext, payload: SomeStruct) -> None`; the payload
        type is read from the annotation."""

        def register(handler: Handler[P]) -> TaskHandle[P]:
            if name in self._tasks:
                raise ValueError(f"task {name!r} is registered twice")
            handle = TaskHandle(
                name=name,
                queue=queue,
                payload_type=_payload_type(handler),
                handler=handler,
                max_attempts=max_attempts,
                on_dead=on_dead,
            )
            self._tasks[name] = handle
            return handle

        return register

    def add(self, handle: TaskHandle[Any]) -> TaskHandle[Any]:
        """Register a handle a domain defined (the composition root lists them all here)."""
        if handle.name in self._tasks:
            raise ValueError(f"task {handle.name!r} is registered twice")
        self._tasks[handle.name] = handle
        return handle

    def get(self, name: str) -> TaskHandle[Any] | None:
        return self._tasks.get(name)

    def tasks(self) -> list[TaskHandle[Any]]:
        return list(self._tasks.values())

    def queues(self) -> set[str]:
        return {t.queue for t in self._tasks.values()}


def _payload_type(handler: Callable[..., Any]) -> Any:
    params = list(inspect.signature(handler).parameters)
    if len(params) != 2:
        raise TypeError(f"{handler.__qualname__} must take (ctx, payload)")
    hint = get_type_hints(handler).get(params[1])
    if not (isinstance(hint, type) and issubclass(hint, msgspec.Struct)):
        raise TypeError(f"{handler.__qualname__}: annotate the payload with a msgspec.Struct")
    return hint
