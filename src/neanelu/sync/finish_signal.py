"""`bulk_operations/finish` as a wake-up for the sync waiting on that operation, across processes.

The webhook is applied by whichever worker takes the delivery; the sync that waits may run in
another process. `announce_finished` writes a key for the operation and publishes its id on one
channel; each process holds a single subscription (`RedisFinishSignal`) that wakes its local
waiters. A waiter subscribes before it looks at the key, so an announcement that lands between
its poll and its wait is seen either way. Losing Redis costs only the shortcut: waits then end at
their poll interval, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis
from redis.exceptions import RedisError

from neanelu.cancellation import raise_if_cancelling
from neanelu.queue.redis_keys import DEFAULT_PREFIX

log = logging.getLogger(__name__)

# Long enough for a waiter to come back from a retry backoff and still find the announcement.
ANNOUNCE_TTL_S = 24 * 3600
_RECONNECT_FIRST_S, _RECONNECT_MAX_S = 1.0, 30.0


def channel(prefix: str) -> str:
    return f"{prefix}:bulk-finished"


def finished_key(prefix: str, operation_id: str) -> str:
    return f"{prefix}:bulk-finished:{operation_id}"


async def announce_finished(
    redis: Redis, operation_id: str, status: str, *, prefix: str = DEFAULT_PREFIX
) -> None:
    """Tell every process that the operation ended (`status` as the webhook gave it). Best
    effort: without Redis the waiting sync still sees the end at its next poll."""
    try:
        # In order, not MULTI: PUBLISH names no key, which a cluster's transaction would refuse.
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(finished_key(prefix, operation_id), status, ex=ANNOUNCE_TTL_S)
            pipe.publish(channel(prefix), operation_id)
            await pipe.execute()
    except RedisError as exc:
        log.warning(
            "bulk operation %s finished, not announced (%s): its sync sees it at the next poll",
            operation_id,
            type(exc).__name__,
        )


class RedisFinishSignal:
    """The process's one subscription to announcements, fanned out to the operations it waits
    for (`neanelu.shopify.bulk.FinishSignal`). Started on first use, closed by its owner."""

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def wait(self, operation_id: str, timeout: float) -> bool:
        self._start()
        event = asyncio.Event()
        self._waiters[operation_id].add(event)
        try:
            with contextlib.suppress(TimeoutError):
                # Bounded: a subscription that cannot be made leaves the key check and the poll.
                await asyncio.wait_for(self._subscribed.wait(), min(timeout, 1.0))
            try:
                if await self._redis.getdel(finished_key(self._prefix, operation_id)):
                    return True  # announced before this wait began
            except RedisError as exc:
                log.warning("bulk finish signal: %s; polling only", type(exc).__name__)
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return False
            # Consumed, so the next wait (should Shopify still say RUNNING) waits for real.
            with contextlib.suppress(RedisError):
                await self._redis.delete(finished_key(self._prefix, operation_id))
            return True
        finally:
            waiters = self._waiters.get(operation_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[operation_id]

    def _start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="bulk-finish-signal")

    async def _listen(self) -> None:
        pause = _RECONNECT_FIRST_S
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(channel(self._prefix))
                while True:
                    # A cancel a read swallowed (Python 3.11): close() awaits this loop.
                    raise_if_cancelling()
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        self._subscribed.set()
                        pause = _RECONNECT_FIRST_S
                    elif message.get("type") == "message":
                        self._wake(message.get("data"))
            except RedisError as exc:
                self._subscribed.clear()
                log.warning(
                    "bulk finish signal: subscription lost (%s); polling until it is back",
                    type(exc).__name__,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RECONNECT_MAX_S)
            finally:
                with contextlib.suppress(RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _wake(self, data: object) -> None:
        operation_id = data.decode() if isinstance(data, bytes) else str(data)
        for event in self._waiters.get(operation_id, ()):
            event.set()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._subscribed.clear()
