"""`bulk_operations/finish` wakes the waiting sync, end to end: the app installs through OAuth
and subscribes (the finish topic with the others), the emulator sends the webhook as each
operation ends, the API records it, a worker applies it, and the full sync on another worker,
which would otherwise poll only once an hour, finishes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.queue import CostLimiter
from neanelu.queue.settings import BULK
from neanelu.queue.worker import Worker
from neanelu.runtime import Runtime
from neanelu.shopify.bulk import BulkPolling
from neanelu.sync.finish_signal import RedisFinishSignal, announce_finished
from neanelu.sync.service import SyncDeps
from neanelu.telemetry import current_metrics
from neanelu.worker.resources import RuntimeShopAccess
from shopify_emulator.config import EmulatorConfig, ShopConfig
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.service.e2e_stack import CONTROL, Stack, eventually, install, open_stack
from tests.service.support import CLIENT_ID, SECRET, drain, encode, webhook_headers

# Longer than the test may take: only the webhook can end a wait.
POLL_S = 3600.0


def wakeups(reason: str) -> float:
    sample = current_metrics().registry.get_sample_value(
        "neanelu_bulk_wait_wakeups_total", {"reason": reason}
    )
    return sample or 0.0


@pytest.fixture
async def stack(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Stack]:
    config = EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        shops=[ShopConfig(name="e2e", products=6)],
        time_scale=0.0001,
        # Each operation runs for a moment, so the sync is waiting when it ends.
        bulk_lines_per_s=30.0,
    )
    async with open_stack(database, redis_url, key_prefix, config) as running:
        yield running


@pytest.fixture
async def signal(stack: Stack) -> AsyncIterator[RedisFinishSignal]:
    rt = stack.runtime
    finished = RedisFinishSignal(rt.redis, prefix=rt.queues.prefix)
    yield finished
    await finished.close()


def start_bulk_worker(stack: Stack, signal: RedisFinishSignal) -> None:
    """A worker on the bulk queue whose syncs poll once an hour, woken by the signal."""
    rt = stack.runtime
    access = RuntimeShopAccess(rt, CostLimiter(rt.redis, prefix=rt.queues.prefix))
    deps = SyncDeps(
        rt.pool,
        rt.http,
        access,
        rt.redis,
        bulk_polling=BulkPolling(first_poll=POLL_S, max_poll=POLL_S, signal=signal),
    )
    worker = Worker(
        rt.queues,
        stack.registry,
        [BULK],
        concurrency=2,
        idle_max_s=0.05,
        resources={Runtime: rt, SyncDeps: deps},
    )
    stack.spawn(worker.run(stack.stop))


async def test_finish_webhook_wakes_the_waiting_sync(
    stack: Stack, signal: RedisFinishSignal
) -> None:
    rt = stack.runtime
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = await install(stack, browser)

    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return "BULK_OPERATIONS_FINISH" in {s["topic"] for s in subs}

    # Subscribed at install, with the other topics.
    await eventually(subscribed, "the bulk_operations/finish subscription")
    by_webhook, by_poll = wakeups("webhook"), wakeups("poll")
    start_bulk_worker(stack, signal)  # the install's full sync starts now

    async def synced() -> bool:
        async with tenant_scope(rt.pool, uuid.UUID(shop_id)) as conn:
            cur = await conn.execute("SELECT status FROM sync_runs WHERE kind = 'full'")
            row = await cur.fetchone()
        return row is not None and row[0] == "completed"

    # Well under one poll interval: only the webhook can have ended the waits.
    await eventually(synced, "the full sync", timeout=120)
    assert wakeups("poll") == by_poll
    assert wakeups("webhook") > by_webhook
    deliveries = (await stack.control.get(f"{CONTROL}/webhooks/deliveries")).json()
    finished = [d for d in deliveries if d["topic"] == "bulk_operations/finish"]
    assert finished
    assert all(d["ok"] for d in finished)
    # The deliveries were recorded in the inbox (and applied) like any other topic.
    async with tenant_scope(rt.pool, uuid.UUID(shop_id)) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM webhook_inbox WHERE topic = 'bulk_operations/finish' "
            "AND processed_at IS NOT NULL"
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0] >= 1
    counts = (await stack.control.get(f"{CONTROL}/counts")).json()
    async with global_scope(rt.pool) as conn:
        await conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (shop_id,))
        cur = await conn.execute("SELECT count(*) FROM products WHERE deleted_at IS NULL")
        stored = await cur.fetchone()
    assert stored is not None
    assert stored[0] == counts["products"]


def finish_payload(gid: str, status: str = "completed") -> dict[str, object]:
    return {
        "admin_graphql_api_id": gid,
        "completed_at": "2026-12-01T10:00:05-05:00",
        "created_at": "2026-12-01T10:00:00-05:00",
        "error_code": None if status == "completed" else "timeout",
        "status": status,
        "type": "query",
    }


async def test_each_delivery_wakes_its_own_operation_and_a_bad_one_is_skipped(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    domain = "finish.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    signal = RedisFinishSignal(runtime.redis, prefix=runtime.queues.prefix)
    ours, other = "gid://shopify/BulkOperation/7000000101", "gid://shopify/BulkOperation/7000000102"
    try:
        waiting = asyncio.create_task(signal.wait(ours, 60))
        for payload in (
            finish_payload("gid://shopify/Product/7000000101"),  # not a bulk operation
            finish_payload(ours, "failed"),
        ):
            body = encode(payload)
            headers = webhook_headers(body, shop=domain, topic="bulk_operations/finish")
            assert (await client.post("/api/webhooks", content=body, headers=headers)).is_success
        caplog.set_level(logging.INFO)
        assert await drain(runtime, shop_id) == 2
        assert await waiting
        assert any(
            "bulk_operations/finish payload" in r.getMessage() and r.levelno == logging.WARNING
            for r in caplog.records
        )
        # An operation nobody announced is not woken (its wait ends at its poll interval).
        assert not await signal.wait(other, 0.3)
        # An announcement that came before the wait began is found by the wait, once.
        await announce_finished(runtime.redis, other, "completed", prefix=runtime.queues.prefix)
        assert await signal.wait(other, 60)
        assert not await signal.wait(other, 0.3)
    finally:
        await signal.close()
