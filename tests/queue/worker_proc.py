"""A real worker process for the crash test: `python -m tests.queue.worker_proc URL PREFIX`."""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from neanelu.queue.client import QueueClient
from neanelu.queue.settings import QueueSettings
from neanelu.queue.worker import Worker
from tests.queue.tasks import Recorder, registry


async def main(url: str, prefix: str) -> None:
    redis = aioredis.Redis.from_url(url)
    Recorder.redis = redis
    Recorder.key = f"{prefix}:log"
    Recorder.hang_key = f"{prefix}:hang"
    client = QueueClient(
        redis,
        {"sync": QueueSettings(name="sync", lease_ms=1000, group_concurrency=2)},
        prefix=prefix,
    )
    await Worker(client, registry, ["sync"], concurrency=2).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
