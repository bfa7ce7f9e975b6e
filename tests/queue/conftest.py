"""Queue fixtures: a QueueClient over the session's Redis, under a key prefix of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from neanelu.queue.client import QueueClient
from neanelu.queue.settings import QueueSettings


def small_queues() -> dict[str, QueueSettings]:
    return {
        "sync": QueueSettings(
            name="sync", group_concurrency=2, global_concurrency=5, lease_ms=1000
        ),
        "webhook": QueueSettings(name="webhook", budget_share=1.0, lease_ms=1000),
    }


@pytest.fixture
async def queues(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[QueueClient]:
    yield QueueClient(redis_client, small_queues(), prefix=key_prefix)
