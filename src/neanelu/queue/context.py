"""What a handler receives besides its payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

from neanelu.queue.errors import Defer
from neanelu.queue.jobs import Job
from neanelu.queue.ratelimit import ShopBudget

R = TypeVar("R")


class Resources:
    """Dependencies the worker's composition root provided (pools, clients), by type: handlers
    and hooks get what they need without globals and without the queue knowing any domain."""

    __slots__ = ("_resources",)

    def __init__(self, resources: Mapping[type, Any] | None = None) -> None:
        self._resources = resources or {}

    def resource(self, kind: type[R]) -> R:
        value = self._resources.get(kind)
        if not isinstance(value, kind):
            raise LookupError(f"the worker provides no {kind.__name__}")
        return value


class JobContext:
    """One run of one job. The worker renews the lease on its own while the handler runs; a
    handler calls `extend_lease` only to ask for a longer lease before a long blocking step."""

    __slots__ = ("_extend", "_resources", "job", "limiter", "worker_id")

    def __init__(
        self,
        job: Job,
        limiter: ShopBudget,
        extend: Callable[[float | None], Awaitable[bool]],
        resources: Mapping[type, Any] | None = None,
        *,
        worker_id: str = "",
    ) -> None:
        self.job = job
        # The worker running this job (host:pid:suffix), for records of who held what.
        self.worker_id = worker_id
        # The shop's Shopify cost budget, with the share this queue may spend.
        self.limiter = limiter
        self._extend = extend
        self._resources = Resources(resources)

    def resource(self, kind: type[R]) -> R:
        """A dependency the worker's composition root provided (pools, clients), by type."""
        return self._resources.resource(kind)

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def queue(self) -> str:
        return self.job.queue

    @property
    def group(self) -> str:
        """The shop's id as a string."""
        return self.job.group

    @property
    def attempt(self) -> int:
        return self.job.attempt

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts

    @property
    def headers(self) -> dict[str, str]:
        """Set at enqueue (trace context travels here from the enqueuing request)."""
        return self.job.headers

    def defer(self, seconds: float, *, block_group: bool = False) -> NoReturn:
        """Give the job back for `seconds` without using an attempt."""
        raise Defer(seconds, block_group=block_group)

    async def extend_lease(self, seconds: float | None = None) -> bool:
        """Renew now (for `seconds`, or the queue's lease); False when the lease was lost."""
        return await self._extend(seconds)
