"""The service under test (plain helpers; the `settings`, `runtime` and `client` fixtures are in
tests/conftest.py): a Runtime on the test database and Redis, the app over ASGI, and helpers to
sign what Shopify would sign."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import msgspec
from redis.asyncio import Redis

from neanelu.config import Settings, load_settings
from neanelu.db.pool import PoolSizes, create_pool, global_scope, tenant_scope
from neanelu.db.services import ServiceUrls
from neanelu.queue import TaskHandle
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import default_queues
from neanelu.runtime import Runtime
from neanelu.shopify.hmac import sign_webhook
from neanelu.vault import TokenVault
from neanelu.web.app import create_app
from neanelu.webhooks.tasks import process_batch_now
from tests.databases import DATA_DIR, TestDatabase

CLIENT_ID = "test-client-id"
SECRET = "test-app-secret-current-0123456789"
PREVIOUS_SECRET = "test-app-secret-previous-987654321"


# The key the OpenAI stand-in accepts in the tests (the `openai_standin` fixture).
OPENAI_TEST_KEY = f"sk-test-{uuid.uuid4().hex}"


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
    if "OPENAI_API_KEY" not in env:
        # A developer's own OPENAI_API_KEY (environment or .env) never turns the suite to OpenAI.
        base["SEARCH_PROVIDER"] = "local"
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


RunJob = Callable[[Runtime, TaskHandle[Any], msgspec.Struct], Coroutine[Any, Any, None]]


def app_for(rt: Runtime, database: TestDatabase, redis_url: str) -> Any:
    app = create_app(
        rt.settings, ServiceUrls(database.app_url, database.owner_url, redis_url, False, False)
    )
    app.state.runtime = rt  # the lifespan is not run over ASGITransport; the test owns the runtime
    return app


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


def session_token(shop: str, *, secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": CLIENT_ID,
        "sub": "42",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "sid": "session-1",
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


# Webhook deliveries as Shopify sends them, and the processing the worker would do.
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def product_payload(
    product_id: int, title: str, updated: datetime, variants: list[int] | None = None
) -> dict[str, Any]:
    return {
        "id": product_id,
        "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
        "title": title,
        "body_html": f"<p>{title}</p>",
        "vendor": "Acme",
        "product_type": "Shirts",
        "handle": title.lower().replace(" ", "-"),
        "status": "active",
        "tags": "summer, cotton",
        "created_at": T0.isoformat(),
        "updated_at": updated.isoformat(),
        "options": [{"name": "Size", "position": 1}],
        "variants": [
            {
                "id": v,
                "product_id": product_id,
                "title": f"Size {n}",
                "price": "19.90",
                "compare_at_price": None,
                "sku": f"SKU-{v}",
                "barcode": None,
                "position": n + 1,
                "inventory_item_id": v + 1000,
                "inventory_quantity": 5,
                "created_at": T0.isoformat(),
                "updated_at": updated.isoformat(),
                "option1": f"S{n}",
                "option2": None,
                "option3": None,
            }
            for n, v in enumerate(variants if variants is not None else [product_id * 10 + 1])
        ],
    }


async def deliver(
    client: httpx.AsyncClient,
    shop: str,
    topic: str,
    payload: dict[str, Any],
    **kw: Any,
) -> httpx.Response:
    body = encode(payload)
    return await client.post(
        "/api/webhooks", content=body, headers=webhook_headers(body, shop=shop, topic=topic, **kw)
    )


async def drain(rt: Runtime, shop_id: uuid.UUID) -> int:
    """Run every queued delivery job of the shop (what the worker does), in outbox order; returns
    how many deliveries they carried."""
    async with global_scope(rt.pool) as conn:
        cur = await conn.execute(
            "SELECT payload FROM outbox WHERE task = 'webhooks.process' "
            "AND payload->>'shop_id' = %s ORDER BY id",
            (str(shop_id),),
        )
        batches = [r[0]["inbox_ids"] for r in await cur.fetchall()]
        await conn.execute("DELETE FROM outbox WHERE task = 'webhooks.process'")
    for inbox_ids in batches:
        await process_batch_now(rt, shop_id, inbox_ids)
    return sum(len(ids) for ids in batches)


async def catalog_rows(rt: Runtime, shop_id: uuid.UUID) -> tuple[list[Any], ...]:
    """The catalog's final state: live rows in full, deleted ones by id (what a deleted product
    looked like depends on whether any version arrived before its deletion, and is never read)."""
    async with tenant_scope(rt.pool, shop_id) as conn:

        async def rows(query: str) -> list[Any]:
            return list(await (await conn.execute(query)).fetchall())

        return (
            await rows(
                "SELECT shopify_id, title, status, tags, description, shopify_updated_at "
                "FROM products WHERE deleted_at IS NULL ORDER BY shopify_id"
            ),
            await rows("SELECT shopify_id FROM products WHERE deleted_at IS NOT NULL ORDER BY 1"),
            await rows(
                "SELECT shopify_id, product_shopify_id, sku, price, selected_options "
                "FROM variants WHERE deleted_at IS NULL ORDER BY shopify_id"
            ),
            await rows(
                "SELECT inventory_item_id, location_id, available FROM inventory_levels "
                "ORDER BY inventory_item_id, location_id"
            ),
        )
