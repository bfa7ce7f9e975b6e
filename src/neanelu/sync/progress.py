"""Live progress of a sync: a Redis hash per shop that `neanelu sync status` and dashboards read,
plus an optional in-process listener (the CLI's progress bars).

The Redis write is best effort: a Redis that restarts or stops answering costs the live figures
for a while, never the sync (the run's own record is in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

PROGRESS_TTL_S = 7 * 24 * 3600
# A progress write waits at most this long: a Redis that hangs must not hold the sync.
WRITE_TIMEOUT_S = 2.0


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
    # Writes lost in the current Redis outage (0: the last write landed).
    failed_writes: int = field(default=0)

    async def update(self, progress: PhaseProgress, *, force: bool = False) -> None:
        if self.listener is not None:
            await self.listener(progress)
        now = time.monotonic()
        if self.redis is None or (not force and now - self._last_write < 0.5):
            return
        self._last_write = now
        # Imported only once there is a client (whoever made it imported redis): a reporter
        # without one, as in the inventory's child process, never loads redis, and with it the
        # OpenTelemetry SDK its observability module imports (about 15 MB resident).
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._write(self.redis, progress)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self.failed_writes:
                log.warning(
                    "sync %s of shop %s: live progress not written to Redis (%s: %s); the sync"
                    " goes on",
                    self.run_id,
                    self.shop_id,
                    type(exc).__name__,
                    exc,
                )
            self.failed_writes += 1
            return
        if self.failed_writes:
            log.info(
                "sync %s of shop %s: live progress written again after %d lost writes",
                self.run_id,
                self.shop_id,
                self.failed_writes,
            )
            self.failed_writes = 0

    async def _write(self, redis: Redis, progress: PhaseProgress) -> None:
        key = progress_key(self.shop_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(
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
            pipe.expire(key, PROGRESS_TTL_S)
            await pipe.execute()
