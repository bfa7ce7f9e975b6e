"""Live progress of a sync: a Redis hash per shop that `neanelu sync status` and dashboards read,
plus an optional in-process listener (the CLI's progress bars)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from redis.asyncio import Redis

PROGRESS_TTL_S = 7 * 24 * 3600


def progress_key(shop_id: UUID) -> str:
    return f"neanelu:sync:progress:{shop_id}"


@dataclass(slots=True)
class PhaseProgress:
    phase: str
    lines: int = 0
    rows: int = 0
    bytes: int = 0
    bad_lines: int = 0
    expected_lines: int = 0
    expected_bytes: int = 0
    seconds: float = 0.0
    done: bool = False


Listener = Callable[[PhaseProgress], Awaitable[None]]


@dataclass(slots=True)
class ProgressReporter:
    redis: Redis | None
    shop_id: UUID
    run_id: UUID
    listener: Listener | None = None
    _last_write: float = field(default=0.0)

    async def update(self, progress: PhaseProgress, *, force: bool = False) -> None:
        if self.listener is not None:
            await self.listener(progress)
        now = time.monotonic()
        if self.redis is None or (not force and now - self._last_write < 0.5):
            return
        self._last_write = now
        key = progress_key(self.shop_id)
        await self.redis.hset(
            key,
            mapping={
                "run_id": str(self.run_id),
                "phase": progress.phase,
                "lines": progress.lines,
                "rows": progress.rows,
                "bytes": progress.bytes,
                "bad_lines": progress.bad_lines,
                "expected_lines": progress.expected_lines,
                "done": int(progress.done),
                "updated": time.time(),
            },
        )
        await self.redis.expire(key, PROGRESS_TTL_S)
