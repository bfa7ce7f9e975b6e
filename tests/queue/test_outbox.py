"""Transactional enqueue: the job exists exactly when the caller's transaction commits."""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.queue.client import QueueClient
from neanelu.queue.outbox import relay_once
from tests.factories import create_shop
from tests.queue.tasks import Work, work


async def outbox_rows(pool: AsyncConnectionPool[Conn]) -> int:
    async with global_scope(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_commit_relays_and_rollback_drops(
    app_pool: AsyncConnectionPool[Conn], queues: QueueClient
) -> None:
    shop_id = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop_id) as conn:
        kept = await work.enqueue_in_tx(
            conn, Work(), group=shop_id, job_id="kept", headers={"traceparent": "00-abc-def-01"}
        )

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with tenant_scope(app_pool, shop_id) as conn:
            await work.enqueue_in_tx(conn, Work(), group=shop_id, job_id="dropped")
            raise Boom

    assert await outbox_rows(app_pool) == 1
    assert await relay_once(app_pool, queues) == 1
    assert await outbox_rows(app_pool) == 0
    (job,) = (await queues.queue("sync").reserve()).jobs
    assert (job.id, job.group, job.task) == (kept, str(shop_id), "test.work")
    assert job.headers == {"traceparent": "00-abc-def-01"}
    assert work.decode(job.payload) == Work()


async def test_relay_twice_duplicates_nothing(
    app_pool: AsyncConnectionPool[Conn], queues: QueueClient
) -> None:
    """A relay that crashed after pushing but before deleting pushes the rows again."""
    group = str(uuid.uuid4())
    async with global_scope(app_pool) as conn:
        for i in range(3):
            await work.enqueue_in_tx(conn, Work(), group=group, job_id=f"r{i}")
    async with global_scope(app_pool) as conn:
        cur = await conn.execute("SELECT job_id FROM outbox ORDER BY id")
        ids = [r[0] for r in await cur.fetchall()]
    q = queues.queue("sync")
    # Push without deleting, as if the relay died between the two steps.
    for job_id in ids:
        await work.enqueue(queues, Work(), group=group, job_id=job_id)
    assert await relay_once(app_pool, queues) == 3
    assert (await q.counts()).enqueued == 3
    assert await outbox_rows(app_pool) == 0
