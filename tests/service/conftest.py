"""The service under test: a Runtime on the test database and Redis, the app over ASGI, and
helpers to sign what Shopify would sign."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from neanelu.config import Settings, load_settings
from neanelu.db.pool import PoolSizes, create_pool, global_scope
from neanelu.db.services import ServiceUrls
from neanelu.queue import CostLimiter, Job, JobContext, ShopBudget, TaskHandle
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import default_queues
from neanelu.runtime import Runtime
from neanelu.shopify.hmac import sign_webhook
from neanelu.vault import TokenVault
from neanelu.web.app import create_app
from neanelu.worker.main import build_registry
from tests.conftest import DATA_DIR, TestDatabase

CLIENT_ID = "test-client-id"
SECRET = "test-app-secret-current-0123456789"
PREVIOUS_SECRET = "test-app-secret-previous-987654321"


def make_settings(**env: Any) -> Settings:
    base: dict[str, Any] = {
        "SHOPIFY_API_KEY": CLIENT_ID,
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_API_SECRET_PREVIOUS": PREVIOUS_SECRET,
        "APP_HOST": "http://testserver",
        "NEANELU_DATA_DIR": str(DATA_DIR),
        "WEBHOOK_MAX_BODY_BYTES": 4096,
        "API_METRICS_PORT": 0,  # a test serves its metrics where it wants them
    }
    base.update(env)
    return load_settings(**base)


def refuse_outbound(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected outbound request to {request.url.host}")


async def build_runtime(
    settings: Settings,
    database: TestDatabase,
    redis_url: str,
    prefix: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    pool = create_pool(database.app_url, PoolSizes(1, 8), name="test-service")
    await pool.open(wait=True)
    redis = Redis.from_url(redis_url)
    return Runtime(
        settings=settings,
        pool=pool,
        redis=redis,
        http=httpx.AsyncClient(transport=transport or httpx.MockTransport(refuse_outbound)),
        vault=TokenVault.from_settings(settings),
        queues=QueueClient(redis, default_queues(settings), prefix=prefix),
    )


async def close_runtime(rt: Runtime) -> None:
    await rt.http.aclose()
    await rt.redis.aclose()
    await rt.pool.close()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def runtime(
    settings: Settings, database: TestDatabase, redis_url: str, key_prefix: str
) -> AsyncIterator[Runtime]:
    rt = await build_runtime(settings, database, redis_url, key_prefix)
    yield rt
    await close_runtime(rt)


RunJob = Callable[[Runtime, TaskHandle[Any], msgspec.Struct], Coroutine[Any, Any, None]]


@pytest.fixture
def run_job() -> RunJob:
    """Run one job's handler as the worker binds it (`build_registry`), in a process whose kernel
    is `rt`, without a queue: the handler reaches the Runtime through its context, as in a
    worker."""
    registry = build_registry()

    async def run(rt: Runtime, handle: TaskHandle[Any], payload: msgspec.Struct) -> None:
        bound = registry.get(handle.name)
        assert bound is not None, f"the worker binds no handler to {handle.name}"
        job = Job(
            id=f"test-{uuid.uuid4().hex}",
            queue=handle.queue,
            group="test",
            task=handle.name,
            payload=msgspec.json.encode(payload),
            headers={},
            attempt=1,
            max_attempts=handle.max_attempts,
            token="",
            lease_deadline_ms=0,
        )

        async def extend(seconds: float | None) -> bool:
            return True

        limiter = ShopBudget(CostLimiter(rt.redis, prefix=rt.queues.prefix), job.group, 1.0)
        await bound.handler(JobContext(job, limiter, extend, {Runtime: rt}), payload)

    return run


def app_for(rt: Runtime, database: TestDatabase, redis_url: str) -> Any:
    app = create_app(
        rt.settings, ServiceUrls(database.app_url, database.owner_url, redis_url, False, False)
    )
    app.state.runtime = rt  # the lifespan is not run over ASGITransport; the test owns the runtime
    return app


@pytest.fixture
async def client(
    runtime: Runtime, database: TestDatabase, redis_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(runtime, database, redis_url))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def webhook_headers(
    body: bytes,
    *,
    shop: str,
    topic: str,
    webhook_id: str | None = None,
    secret: str = SECRET,
    triggered_at: str | None = None,
    event_id: str | None = None,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at
        or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def count(rt: Runtime, table: str, shop_id: uuid.UUID | None = None) -> int:
    """Rows in a table; tenant tables are counted inside the shop's scope."""
    async with global_scope(rt.pool) as conn:
        if shop_id is not None:
            await conn.execute(
                "SELECT set_config('app.current_shop_id', %s, true)", (str(shop_id),)
            )
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])
