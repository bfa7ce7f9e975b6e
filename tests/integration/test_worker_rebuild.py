"""An emptied Redis is refilled from PostgreSQL: unapplied deliveries, unfinished sync runs and
the periodic ticks are queued again, once per loss (found by the `redis_lost` drill: before, they
waited forever)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from neanelu.config import load_settings
from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.queue.client import QueueClient
from neanelu.queue.outbox import relay_once
from neanelu.queue.settings import BULK, WEBHOOK, default_queues
from neanelu.sync.service import request_full_sync
from neanelu.worker.rebuild import check_books, marker_key
from tests.factories import create_shop


async def _outbox(pool: AsyncConnectionPool[Conn]) -> list[tuple[str, str, dict[str, object]]]:
    async with global_scope(pool) as conn:
        cur = await conn.execute("SELECT queue, task, payload FROM outbox ORDER BY id")
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def test_an_empty_redis_gets_back_what_postgres_says_is_unfinished(
    app_pool: AsyncConnectionPool[Conn], redis_client: aioredis.Redis, key_prefix: str
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        for webhook_id, done in (("applied", True), ("waiting-1", False), ("waiting-2", False)):
            await conn.execute(
                "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, payload, processed_at)"
                " VALUES (%s, %s, 'products/update', '{}', CASE WHEN %s THEN now() END)",
                (shop, webhook_id, done),
            )
        run = await request_full_sync(conn, shop)
        cur = await conn.execute(
            "SELECT id FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id"
        )
        waiting = [r[0] for r in await cur.fetchall()]

    rebuilt = await check_books(redis_client, app_pool, key_prefix, sync_delay_s=0)
    assert rebuilt is not None
    assert (rebuilt.deliveries, rebuilt.runs) == (2, 1)
    jobs = await _outbox(app_pool)
    deliveries = [p for q, t, p in jobs if t == "webhooks.process"]
    syncs = [p for q, t, p in jobs if t == "sync.full"]
    assert deliveries == [{"shop_id": str(shop), "inbox_ids": waiting}]
    assert len(syncs) == 1
    assert syncs[0]["run_id"] == str(run.id)
    assert {t for _, t, _ in jobs} >= {"shops.reconcile", "shops.token_sweep"}

    # The same Redis again (restarted with its AOF): the marker is there, nothing is re-queued.
    assert await check_books(redis_client, app_pool, key_prefix, sync_delay_s=0) is None
    assert len(await _outbox(app_pool)) == len(jobs)

    # The relay pushes them; the queue holds the jobs again.
    queues = QueueClient(redis_client, default_queues(load_settings()), prefix=key_prefix)
    await relay_once(app_pool, queues)
    assert (await queues.queue(WEBHOOK).counts()).enqueued == 1
    assert (await queues.queue(BULK).counts()).enqueued == 1

    # Lost again: rebuilt again, under job ids of its own (the old tombstones went with Redis).
    await redis_client.delete(marker_key(key_prefix))
    again = await check_books(redis_client, app_pool, key_prefix, sync_delay_s=0)
    assert again is not None
    assert (again.deliveries, again.runs) == (2, 1)
    ids = [json.dumps(p) for _, t, p in await _outbox(app_pool) if t == "webhooks.process"]
    assert len(ids) == 1
