"""What an outsider tried against the service (issue 12): forged webhooks through an empty
secret, the newer `shopify-*` headers, deeply nested JSON, a delivery racing an uninstall, and
session tokens Shopify would never issue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from neanelu.db.pool import tenant_scope
from neanelu.db.services import ServiceUrls
from neanelu.runtime import Runtime
from neanelu.shopify.hmac import sign_webhook
from neanelu.shops import repository as shops
from neanelu.web.app import create_app
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.service.support import (
    SECRET,
    T0,
    app_for,
    build_runtime,
    close_runtime,
    count,
    deliver,
    drain,
    encode,
    make_settings,
    product_payload,
    session_token,
    webhook_headers,
)


@pytest.fixture
async def shop(runtime: Runtime) -> tuple[uuid.UUID, str]:
    domain = f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"
    return await create_shop(runtime.pool, domain), domain


@pytest.fixture
async def example_env_client(
    database: TestDatabase, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The service configured as `.env.example` ships it: `SHOPIFY_API_SECRET_PREVIOUS=`."""
    rt = await build_runtime(
        make_settings(SHOPIFY_API_SECRET_PREVIOUS=""), database, redis_url, key_prefix
    )
    transport = httpx.ASGITransport(app=app_for(rt, database, redis_url))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c, rt
    await close_runtime(rt)


async def test_empty_previous_secret_signs_nothing(
    example_env_client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    """Anyone knowing a shop's domain could sign with the empty key: a forged products/update
    was stored and served, a forged shop/redact purged the shop."""
    client, rt = example_env_client
    domain = "victim.myshopify.com"
    shop_id = await create_shop(rt.pool, domain)
    forged_update = await deliver(
        client, domain, "products/update", product_payload(1, "Forged", T0), secret=""
    )
    forged_redact = await deliver(
        client, domain, "shop/redact", {"shop_id": 1, "shop_domain": domain}, secret=""
    )
    assert forged_update.status_code == 401
    assert forged_redact.status_code == 401
    assert await count(rt, "webhook_inbox", shop_id) == 0
    assert await count(rt, "outbox") == 0
    # A session token signed with the empty key is refused with a 401, not an error.
    token = session_token(domain, secret="x" * 32)
    header, claims, _ = token.split(".")
    digest = hmac.new(b"", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    empty_signed = f"{header}.{claims}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"
    response = await client.get(
        "/api/products", headers={"Authorization": f"Bearer {empty_signed}"}
    )
    assert response.status_code == 401
    # The real secret still works; the empty variable is simply unset.
    genuine = await deliver(client, domain, "products/update", product_payload(1, "Real", T0))
    assert genuine.status_code == 200
    assert rt.settings.shopify_api_secret_previous is None


async def test_session_tokens_shopify_would_not_issue_get_401(
    client: httpx.AsyncClient, shop: tuple[uuid.UUID, str]
) -> None:
    _, domain = shop
    now = int(time.time())
    good = await client.get(
        "/api/products", headers={"Authorization": f"Bearer {session_token(domain)}"}
    )
    assert good.status_code == 200
    refused = {
        "not valid yet": session_token(domain, iat=now + 3600, nbf=now, exp=now + 3660),
        "another app": session_token(domain, aud=["test-client-id", "someone-else"]),
        "lives longer": session_token(domain, exp=now + 30 * 86_400),
    }
    for says, token in refused.items():
        response = await client.get("/api/products", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, says
        assert says in response.json()["detail"]


def events_headers(body: bytes, *, shop: str, topic: str, **extra: str) -> dict[str, str]:
    """What Shopify's Events deliveries send: the same fields without the `X-` prefix."""
    return {
        "content-type": "application/json",
        "shopify-hmac-sha256": sign_webhook(body, SECRET),
        "shopify-topic": topic,
        "shopify-shop-domain": shop,
        "shopify-api-version": "2026-01",
        "shopify-event-id": str(uuid.uuid4()),
        "shopify-triggered-at": "2026-11-01T12:00:00+00:00",
        **extra,
    }


async def test_events_headers_are_accepted(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    body = encode(product_payload(5, "Events", T0))
    with_id = events_headers(
        body, shop=domain, topic="products/update", **{"shopify-webhook-id": "ev-1"}
    )
    assert (await client.post("/api/webhooks", content=body, headers=with_id)).status_code == 200
    again = await client.post("/api/webhooks", content=body, headers=with_id)
    assert again.status_code == 200  # a duplicate, recorded once
    # Without a webhook id the event id is the delivery's key.
    event_only = events_headers(body, shop=domain, topic="products/update")
    assert (await client.post("/api/webhooks", content=body, headers=event_only)).status_code == 200
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute(
            "SELECT webhook_id, event_id, topic FROM webhook_inbox ORDER BY id"
        )
        rows = await cur.fetchall()
    assert rows[0][0] == "ev-1"
    assert rows[0][2] == "products/update"
    assert rows[1][0] == rows[1][1] == event_only["shopify-event-id"]
    assert len(rows) == 2
    # One family's signature does not vouch for the other's fields.
    mixed = {
        k: v for k, v in event_only.items() if k not in ("shopify-topic", "shopify-shop-domain")
    }
    mixed.update({"X-Shopify-Topic": "products/update", "X-Shopify-Shop-Domain": domain})
    refused = await client.post("/api/webhooks", content=body, headers=mixed)
    assert refused.status_code == 400
    assert "shopify-topic" in refused.json()["detail"]
    forged = {**event_only, "shopify-hmac-sha256": sign_webhook(body, "not-the-app-secret")}
    assert (await client.post("/api/webhooks", content=body, headers=forged)).status_code == 401
    await drain(runtime, shop_id)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT title FROM products WHERE shopify_id = 5")
        assert await cur.fetchone() == ("Events",)


async def test_compliance_delivery_without_api_version_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    body = encode({"shop_id": 1, "shop_domain": domain, "customer": {"id": 2}})
    classic = webhook_headers(body, shop=domain, topic="customers/redact")
    del classic["X-Shopify-API-Version"]
    events = events_headers(body, shop=domain, topic="customers/data_request")
    del events["shopify-api-version"]
    for headers in (classic, events):
        response = await client.post("/api/webhooks/compliance", content=body, headers=headers)
        assert response.status_code == 200, response.text
    assert await count(runtime, "webhook_inbox", shop_id) == 2


async def test_deeply_nested_json_is_a_400(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    for depth in (100, 1500):  # 1500: past what the decoder can recurse into
        body = b'{"id": 1, "a": ' + b"[" * depth + b"]" * depth + b"}"
        headers = webhook_headers(body, shop=domain, topic="products/update")
        response = await client.post("/api/webhooks", content=body, headers=headers)
        assert response.status_code == 400, depth
        assert "nests deeper" in response.json()["detail"]
    # Brackets inside strings are text, not depth.
    body = encode({"id": 1, "title": "[" * 500 + "{" * 500})
    headers = webhook_headers(body, shop=domain, topic="products/update")
    assert (await client.post("/api/webhooks", content=body, headers=headers)).status_code == 200
    assert await count(runtime, "webhook_inbox", shop_id) == 1


async def test_worker_does_not_apply_a_delivery_of_an_uninstalled_shop(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    """Ingress caches shop states for 5 s: a delivery recorded just after the uninstall must
    not change the catalog when the worker gets to it."""
    shop_id, domain = shop
    warm = await deliver(client, domain, "products/update", product_payload(1, "Before", T0))
    assert warm.status_code == 200
    await drain(runtime, shop_id)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await shops.mark_uninstalled(conn, shop_id, T0)
    late: dict[str, Any] = product_payload(2, "After uninstall", T0)
    response = await deliver(client, domain, "products/update", late)
    assert response.status_code == 200  # within the cache's few seconds
    assert await drain(runtime, shop_id) == 1
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT shopify_id FROM products ORDER BY 1")
        assert await cur.fetchall() == [(1,)]
        cur = await conn.execute("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL")
        assert await cur.fetchone() == (0,)


PRODUCTION = {
    "NEANELU_MODE": "production",
    "SHOPIFY_API_KEY": "test-client-id",
    "SHOPIFY_API_SECRET": SECRET,
    "SHOPIFY_API_SECRET_PREVIOUS": None,
    "POSTGRES_URL": "postgresql://app@db/neanelu",
    "REDIS_URL": "redis://cache:6379/0",
    "APP_HOST": "https://neanelu.example.com",
    "ENCRYPTION_KEY_256": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.mark.parametrize(
    ("env", "served"),
    [({}, True), (PRODUCTION, False), ({**PRODUCTION, "API_DOCS": "true"}, True)],
)
async def test_docs_are_off_in_production_unless_enabled(env: dict[str, Any], served: bool) -> None:
    settings = make_settings(**env)
    app = create_app(
        settings, ServiceUrls("postgresql://x/y", "postgresql://x/y", "redis://x", False, False)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert ((await c.get(path)).status_code == 200) is served, path
        assert (await c.get("/metrics")).status_code == 404
