"""End to end against the Shopify emulator: install through the real endpoints, subscriptions,
the first full sync queued, catalog changes arriving as webhooks (also duplicated and reordered)
and ending in PostgreSQL, then the uninstall. Logs of the whole flow hold no token or secret."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from neanelu.db.pool import PoolSizes, create_pool, global_scope, tenant_scope
from neanelu.db.services import ServiceUrls
from neanelu.queue.client import QueueClient
from neanelu.queue.outbox import run_outbox_relay
from neanelu.queue.registry import Registry
from neanelu.queue.settings import AI_BATCH, BULK, SYNC, WEBHOOK, default_queues
from neanelu.queue.worker import Worker
from neanelu.runtime import Runtime
from neanelu.semantic import tasks as search_tasks
from neanelu.shops import repository as shops
from neanelu.shops import tasks as shop_tasks
from neanelu.shops.merchant_install import install_as_merchant
from neanelu.shops.tokens import access_token
from neanelu.sync import tasks as sync_tasks
from neanelu.vault import TokenVault
from neanelu.web.app import create_app
from neanelu.webhooks import tasks as webhook_tasks
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, free_port, start_in_thread
from tests.conftest import TestDatabase
from tests.service.conftest import CLIENT_ID, SECRET, make_settings

SHOP = "e2e.myshopify.com"
CONTROL = "/_emulator/shops/e2e"


@dataclass
class Stack:
    emulator: RunningEmulator
    control: httpx.AsyncClient
    app_url: str
    runtime: Runtime
    registry: Registry = field(default_factory=Registry)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (a worker, say) until the stack stops; it must end when `stop` is set."""
        self.background.append(asyncio.create_task(work))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def open_stack(
    database: TestDatabase, redis_url: str, key_prefix: str, config: EmulatorConfig
) -> AsyncIterator[Stack]:
    """The emulator, the API on a real port, a worker on the webhook and sync queues and the
    outbox relay; every task is registered, so more workers can be spawned on the stack. The
    emulator's compliance deliveries go to this stack's API."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    emulator = start_in_thread(replace(config, compliance_url=f"{app_url}/api/webhooks/compliance"))
    settings = make_settings(
        APP_HOST=app_url,
        SHOPIFY_BASE_URL=emulator.base_url,
        SHOPIFY_API_SECRET_PREVIOUS=None,
        WEBHOOK_MAX_BODY_BYTES=1_048_576,
    )
    pool = create_pool(database.app_url, PoolSizes(1, 10), name="e2e")
    await pool.open(wait=True)
    redis = Redis.from_url(redis_url)
    runtime = Runtime(
        settings=settings,
        pool=pool,
        redis=redis,
        http=httpx.AsyncClient(timeout=10),
        vault=TokenVault.from_settings(settings),
        queues=QueueClient(redis, default_queues(settings), prefix=key_prefix),
    )
    app = create_app(
        settings, ServiceUrls(database.app_url, database.owner_url, redis_url, False, False)
    )
    app.state.runtime = runtime
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, "the service to listen")
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=10) as control:
        # Cleaned up in the `finally` below, the test's failure or not.
        stack = Stack(emulator, control, app_url, runtime)
        sync_tasks.register(stack.registry)
        shop_tasks.register(stack.registry)
        webhook_tasks.register(stack.registry)
        search_tasks.register(stack.registry)
        worker = Worker(
            runtime.queues,
            stack.registry,
            [WEBHOOK, SYNC, AI_BATCH],
            concurrency=4,
            idle_max_s=0.05,
            resources={Runtime: runtime},
        )
        stack.spawn(worker.run(stack.stop))
        stack.spawn(run_outbox_relay(pool, runtime.queues, stack.stop, interval_s=0.05))
        try:
            yield stack
        finally:
            stack.stop.set()
            await asyncio.gather(*stack.background)
            server.should_exit = True
            await serving
            emulator.stop()
            await runtime.http.aclose()
            await redis.aclose()
            await pool.close()


@pytest.fixture
async def stack(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Stack]:
    config = EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        shops=[ShopConfig(name="e2e", products=3)],
        time_scale=0.0001,
        webhook_reorder_window_s=0.3,
        # Sent when a test asks for it, not on its own (48 h would be 17 s at this scale).
        shop_redact_after_uninstall_s=1e9,
    )
    async with open_stack(database, redis_url, key_prefix, config) as running:
        yield running


async def install(stack: Stack, client: httpx.AsyncClient) -> str:
    installed = await install_as_merchant(
        client, app_url=stack.app_url, shopify_url=stack.emulator.base_url, domain=SHOP
    )
    return str(installed.shop_id)


async def db_product(rt: Runtime, shop_id: Any, shopify_id: int) -> tuple[Any, ...] | None:
    async with tenant_scope(rt.pool, shop_id) as conn:
        cur = await conn.execute(
            "SELECT title, status, vendor, tags, shopify_updated_at, deleted_at IS NOT NULL "
            "FROM products WHERE shopify_id = %s",
            (shopify_id,),
        )
        return await cur.fetchone()


async def db_variants(rt: Runtime, shop_id: Any, product_id: int) -> list[tuple[Any, ...]]:
    async with tenant_scope(rt.pool, shop_id) as conn:
        cur = await conn.execute(
            "SELECT shopify_id, sku, price, inventory_item_id, selected_options FROM variants "
            "WHERE product_shopify_id = %s AND deleted_at IS NULL ORDER BY shopify_id",
            (product_id,),
        )
        return list(await cur.fetchall())


def number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1].split("?")[0])


async def test_install_webhooks_and_uninstall_end_to_end(
    stack: Stack, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    rt = stack.runtime
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = await install(stack, browser)

    # Token stored sealed: the column holds no plaintext of the token the emulator issued.
    async with global_scope(rt.pool) as conn:
        found = await shops.get_by_domain(conn, SHOP)
    assert found is not None and found.access_token is None  # not outside the shop's scope
    async with tenant_scope(rt.pool, found.id) as conn:
        row = await shops.get(conn, found.id)
    assert row is not None and row.access_token is not None and row.status == "installed"
    plain = rt.vault.open(row.access_token, shop_id=row.id, kind="access").get_secret_value()
    assert plain.encode() not in row.access_token.ciphertext

    # Subscriptions created by the worker through GraphQL; the first full sync waits in `bulk`.
    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return len(subs) >= len(shop_tasks.WEBHOOK_TOPICS)

    await eventually(subscribed, "webhook subscriptions")
    bulk = await rt.queues.queue(BULK).counts()
    assert bulk.enqueued >= 1

    # A new product arrives through products/create.
    created = (await stack.control.post(f"{CONTROL}/products", json={"title": "E2E Shirt"})).json()
    product = created["product"]
    pid = number(product["id"])

    async def arrived() -> bool:
        found = await db_product(rt, row.id, pid)
        return found is not None and found[0] == "E2E Shirt"

    await eventually(arrived, "products/create applied")

    # Updates in each delivery mode: duplicated, then reordered (newest first). The final row is
    # the emulator's final state whatever arrived when.
    for mode, titles in (("duplicate", ["dup 1", "dup 2"]), ("reorder", ["re 1", "re 2", "re 3"])):
        assert (await stack.control.put(f"{CONTROL}/webhooks/mode", json={"mode": mode})).is_success
        for title in titles:
            r = await stack.control.patch(
                f"{CONTROL}/products/{product['id']}", json={"title": title, "vendor": mode}
            )
            assert r.status_code == 200

        async def settled(last: str = titles[-1]) -> bool:
            found = await db_product(rt, row.id, pid)
            return found is not None and found[0] == last

        await eventually(settled, f"{mode} deliveries settled")
        await asyncio.sleep(0.5)  # let every late duplicate land, then check nothing regressed
        assert (await db_product(rt, row.id, pid) or ("",))[0] == titles[-1]
    await stack.control.put(f"{CONTROL}/webhooks/mode", json={"mode": "normal"})

    truth = (await stack.control.get(f"{CONTROL}/products/{product['id']}")).json()
    stored = await db_product(rt, row.id, pid)
    assert stored is not None
    assert stored[:4] == (truth["title"], truth["status"], truth["vendor"], truth["tags"])
    variants = await db_variants(rt, row.id, pid)
    assert [(v[0], v[1], v[2], v[3], v[4]) for v in variants] == [
        (
            number(v["id"]),
            v["sku"],
            Decimal(v["price"]),
            number(v["inventoryItem"]["id"]),
            v["selectedOptions"],
        )
        for v in sorted(truth["variants"], key=lambda v: number(v["id"]))
    ]

    # Inventory: the level lands newer-wins.
    item = truth["variants"][0]["inventoryItem"]["id"]
    level = (
        await stack.control.post(
            f"{CONTROL}/inventory", json={"inventory_item_id": item, "available": 42}
        )
    ).json()

    async def stocked() -> bool:
        async with tenant_scope(rt.pool, row.id) as conn:
            cur = await conn.execute(
                "SELECT available FROM inventory_levels WHERE inventory_item_id = %s "
                "AND location_id = %s",
                (number(item), level["location_id"]),
            )
            found = await cur.fetchone()
        return found is not None and found[0] == 42

    await eventually(stocked, "inventory_levels/update applied")

    # Delete: the product is marked deleted (its row and variants stay, retired).
    await stack.control.delete(f"{CONTROL}/products/{product['id']}")

    async def deleted() -> bool:
        found = await db_product(rt, row.id, pid)
        return found is not None and found[5] is True

    await eventually(deleted, "products/delete applied")
    assert await db_variants(rt, row.id, pid) == []

    # A forced refresh goes through the emulator's token endpoint and stores the new pair.
    refreshed = await access_token(rt, row.id, force_refresh=True)
    assert refreshed.get_secret_value() != plain

    # Uninstall: tokens dropped, purge scheduled, the shop's queues paused.
    await stack.control.post(f"{CONTROL}/uninstall", json={})

    async def uninstalled() -> bool:
        async with global_scope(rt.pool) as conn:
            current = await shops.get(conn, row.id)
        return current is not None and current.status == "uninstalled"

    await eventually(uninstalled, "app/uninstalled applied")
    async with tenant_scope(rt.pool, row.id) as conn:
        after = await shops.get(conn, row.id)
    assert after is not None and after.access_token is None and after.purge_after is not None
    assert (await rt.queues.queue(WEBHOOK).group_state(str(row.id))).get("paused")
    assert shop_id == str(row.id)

    # Nothing secret reached the logs over the whole flow.
    # Both the records and whatever the log handlers wrote out (JSON lines on stderr).
    out, err = capfd.readouterr()
    text = caplog.text + " ".join(str(r.args) for r in caplog.records) + out + err
    for secret in (plain, refreshed.get_secret_value(), SECRET, "shpat_", "shprt_"):
        assert secret not in text, f"{secret[:6]}... leaked into the logs"
    assert any("installed" in r.getMessage() for r in caplog.records)
