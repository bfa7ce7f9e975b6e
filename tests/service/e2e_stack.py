"""The end-to-end stack (plain helpers; the `stack` fixture is in tests/conftest.py): the
emulator, the API on a real port, a worker and the outbox relay, and the OAuth install through
the real endpoints."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from neanelu.db.pool import PoolSizes, create_pool, tenant_scope
from neanelu.db.services import ServiceUrls
from neanelu.queue.client import QueueClient
from neanelu.queue.outbox import run_outbox_relay
from neanelu.queue.registry import Registry
from neanelu.queue.settings import AI_BATCH, SYNC, WEBHOOK, default_queues
from neanelu.queue.worker import Worker
from neanelu.runtime import Runtime
from neanelu.semantic import tasks as search_tasks
from neanelu.shops import tasks as shop_tasks
from neanelu.shops.merchant_install import install_as_merchant
from neanelu.sync import tasks as sync_tasks
from neanelu.vault import TokenVault
from neanelu.web.app import create_app
from neanelu.webhooks import tasks as webhook_tasks
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from tests.databases import TestDatabase
from tests.service.support import CLIENT_ID, SECRET, make_settings

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
    # Bound now and handed to uvicorn: a port only named here could be taken before uvicorn binds
    # it (the emulator's own free port, or an outgoing connection's), which failed a CI run.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
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
    serving = asyncio.create_task(server.serve(sockets=[listener]))

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
            listener.close()
            await runtime.http.aclose()
            await redis.aclose()
            await pool.close()


def e2e_config() -> EmulatorConfig:
    """The `stack` fixture's emulator: one shop, `e2e`, with three products."""
    return EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        shops=[ShopConfig(name="e2e", products=3)],
        time_scale=0.0001,
        webhook_reorder_window_s=0.3,
        # Sent when a test asks for it, not on its own (48 h would be 17 s at this scale).
        shop_redact_after_uninstall_s=1e9,
    )


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
