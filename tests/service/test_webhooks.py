"""Webhook ingress (verify, record once, queue) and the processing of each topic."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.runtime import Runtime
from neanelu.shops import repository as shops
from neanelu.webhooks.tasks import process_delivery_now
from tests.factories import create_shop
from tests.service.support import (
    PREVIOUS_SECRET,
    T0,
    catalog_rows,
    count,
    deliver,
    drain,
    encode,
    product_payload,
    webhook_headers,
)


@pytest.fixture
async def shop(runtime: Runtime) -> tuple[uuid.UUID, str]:
    domain = f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"
    return await create_shop(runtime.pool, domain), domain


async def test_delivery_recorded_once_and_queued_once(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    payload = product_payload(1, "Shirt", T0)
    first = await deliver(client, domain, "products/update", payload, webhook_id="wh-1")
    again = await deliver(client, domain, "products/update", payload, webhook_id="wh-1")
    assert first.status_code == 200
    assert again.status_code == 200
    assert await count(runtime, "webhook_inbox", shop_id) == 1
    assert await count(runtime, "outbox") == 1
    rotated = await deliver(
        client, domain, "products/update", payload, webhook_id="wh-2", secret=PREVIOUS_SECRET
    )
    assert rotated.status_code == 200
    assert await count(runtime, "webhook_inbox", shop_id) == 2


async def test_rejections_store_nothing(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    body = encode(product_payload(1, "Shirt", T0))
    headers = webhook_headers(body, shop=domain, topic="products/update")

    missing = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    assert (await client.post("/api/webhooks", content=body, headers=missing)).status_code == 401
    forged = {**headers, "X-Shopify-Hmac-Sha256": "AAAA" + headers["X-Shopify-Hmac-Sha256"][4:]}
    assert (await client.post("/api/webhooks", content=body, headers=forged)).status_code == 401
    tampered_body = body.replace(b"Shirt", b"Skirt")
    assert (
        await client.post("/api/webhooks", content=tampered_body, headers=headers)
    ).status_code == 401
    wrong_secret = webhook_headers(body, shop=domain, topic="products/update", secret="nope")
    assert (
        await client.post("/api/webhooks", content=body, headers=wrong_secret)
    ).status_code == 401

    big = encode({"id": 1, "padding": "x" * 5000})
    big_headers = webhook_headers(big, shop=domain, topic="products/update")
    assert (await client.post("/api/webhooks", content=big, headers=big_headers)).status_code == 413

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    streamed = await client.post("/api/webhooks", content=chunks(), headers=big_headers)
    assert streamed.status_code == 413

    for not_json in (b"not json", b"[1, 2]", b'"text"', b'{"a": "\xff"}', b'{"a": "\\u0000"}'):
        h = webhook_headers(not_json, shop=domain, topic="products/update")
        assert (await client.post("/api/webhooks", content=not_json, headers=h)).status_code == 400

    unknown = webhook_headers(body, shop="nobody.myshopify.com", topic="products/update")
    assert (await client.post("/api/webhooks", content=body, headers=unknown)).status_code == 404
    outside = webhook_headers(body, shop="evil.com", topic="products/update")
    assert (await client.post("/api/webhooks", content=body, headers=outside)).status_code == 400
    no_id = {k: v for k, v in headers.items() if k != "X-Shopify-Webhook-Id"}
    assert (await client.post("/api/webhooks", content=body, headers=no_id)).status_code == 400

    assert await count(runtime, "webhook_inbox", shop_id) == 0
    assert await count(runtime, "outbox") == 0


async def test_uninstalled_shop_refused_except_compliance(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    domain = f"gone-{uuid.uuid4().hex[:8]}.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await shops.mark_uninstalled(conn, shop_id, T0)
    refused = await deliver(client, domain, "products/update", product_payload(1, "A", T0))
    assert refused.status_code == 410
    redact = await deliver(client, domain, "shop/redact", {"shop_id": 1, "shop_domain": domain})
    assert redact.status_code == 200
    assert await count(runtime, "webhook_inbox", shop_id) == 1


async def test_newer_wins_whatever_the_order(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """Every order of three versions and a duplicate ends in the same rows."""
    deliveries = [
        ("products/update", product_payload(7, "v1", T0, [71, 72])),
        ("products/update", product_payload(7, "v2", T0 + timedelta(minutes=1), [71, 73])),
        ("products/update", product_payload(7, "v2", T0 + timedelta(minutes=1), [71, 73])),
        ("products/update", product_payload(8, "other", T0)),
        ("products/delete", {"id": 8}),
        (
            "inventory_levels/update",
            {
                "inventory_item_id": 1071,
                "location_id": 5,
                "available": 3,
                "updated_at": (T0 + timedelta(minutes=2)).isoformat(),
                "admin_graphql_api_id": "gid://shopify/InventoryLevel/99?inventory_item_id=1071",
            },
        ),
        (
            "inventory_levels/update",
            {
                "inventory_item_id": 1071,
                "location_id": 5,
                "available": 9,
                "updated_at": (T0 + timedelta(minutes=1)).isoformat(),
                "admin_graphql_api_id": "gid://shopify/InventoryLevel/99?inventory_item_id=1071",
            },
        ),
    ]
    results = []
    orders = list(itertools.permutations(range(len(deliveries))))
    for order in (orders[0], orders[-1], orders[len(orders) // 2], orders[1234]):
        domain = f"order-{uuid.uuid4().hex[:8]}.myshopify.com"
        shop_id = await create_shop(runtime.pool, domain)
        for i in order:
            topic, payload = deliveries[i]
            # The delete happened after every version of product 8.
            triggered = (T0 + timedelta(minutes=5)).isoformat()
            response = await deliver(client, domain, topic, payload, triggered_at=triggered)
            assert response.status_code == 200
        await drain(runtime, shop_id)
        results.append(await catalog_rows(runtime, shop_id))
    for r in results:
        assert r == results[0]
    products, deleted, variants, levels = results[0]
    assert [(p[0], p[1], p[2], p[3]) for p in products] == [
        (7, "v2", "ACTIVE", ["summer", "cotton"])
    ]
    assert deleted == [(8,)]
    assert [v[0] for v in variants] == [71, 73]
    assert variants[0][4] == [{"name": "Size", "value": "S0"}]
    assert levels == [(1071, 5, 3)]


async def test_levels_of_two_items_at_one_location_are_both_kept(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    """Shopify's level GID carries the location's number (`InventoryLevel/<location>?
    inventory_item_id=<item>`): every item stocked at a location shares it, and each keeps its
    own level."""
    shop_id, domain = shop
    for item, available in ((2001, 4), (2002, 6)):
        payload = {
            "inventory_item_id": item,
            "location_id": 24826418,
            "available": available,
            "updated_at": T0.isoformat(),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/24826418?inventory_item_id={item}",
        }
        response = await deliver(client, domain, "inventory_levels/update", payload)
        assert response.status_code == 200
    await drain(runtime, shop_id)
    *_, levels = await catalog_rows(runtime, shop_id)
    assert levels == [(2001, 24826418, 4), (2002, 24826418, 6)]


async def test_processing_twice_applies_once(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    await deliver(client, domain, "products/create", product_payload(3, "New", T0))
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT payload->'inbox_ids'->>0 FROM outbox")
        row = await cur.fetchone()
    assert row is not None
    assert await process_delivery_now(runtime, shop_id, int(row[0]))
    assert not await process_delivery_now(runtime, shop_id, int(row[0]))


async def test_lifecycle_topics(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    shop_id, domain = shop
    await deliver(
        client,
        domain,
        "app/scopes_update",
        {
            "id": 1,
            "shop_id": 2,
            "previous": ["read_products"],
            "current": ["read_products", "read_inventory"],
        },
    )
    for topic in ("customers/data_request", "customers/redact"):
        await deliver(client, domain, topic, {"shop_id": 2, "customer": {"id": 1}})
    await deliver(client, domain, "products/create", product_payload(3, "Kept", T0))
    await drain(runtime, shop_id)
    async with global_scope(runtime.pool) as conn:
        row = await shops.get(conn, shop_id)
    assert row is not None
    assert row.scopes == ("read_products", "read_inventory")

    await deliver(client, domain, "app/uninstalled", {"id": 2, "domain": domain})
    await drain(runtime, shop_id)
    async with global_scope(runtime.pool) as conn:
        row = await shops.get(conn, shop_id)
        purge = await (
            await conn.execute("SELECT task, group_id FROM outbox WHERE task = 'shops.purge'")
        ).fetchall()
    assert row is not None
    assert row.status == "uninstalled"
    assert row.access_token is None
    assert row.purge_after is not None
    assert purge == [("shops.purge", "maintenance")]
    state = await runtime.queues.queue("webhook").group_state(str(shop_id))
    assert state.get("paused")

    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    assert isinstance(transport.app, FastAPI)
    runtime_dir = transport.app.state.shop_directory
    runtime_dir.forget(domain)
    # A shop/redact right after the uninstall is not due (Shopify sends it 48 h later): it is
    # recorded and skipped, and the shop's data stays for the scheduled purge.
    await deliver(client, domain, "shop/redact", {"shop_id": 2, "shop_domain": domain})
    await drain(runtime, shop_id)
    assert await count(runtime, "shops") == 1
    assert await count(runtime, "products", shop_id) == 1
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT outcome, reason FROM purge_audit")
        audit = await cur.fetchall()
    assert [a[0] for a in audit] == ["skipped"]
    assert "less than 48 h ago" in audit[0][1]


def test_stored_payload_is_the_raw_body() -> None:
    assert json.loads(encode({"a": 1})) == {"a": 1}


async def test_concurrent_deliveries_share_transactions_and_queue_each_once(
    client: httpx.AsyncClient, runtime: Runtime, shop: tuple[uuid.UUID, str]
) -> None:
    """A burst (with duplicates in it) is group-committed; every new delivery is queued once."""
    shop_id, domain = shop
    other_id = await create_shop(runtime.pool, "burst-other.myshopify.com")
    ids = [f"burst-{n % 40}" for n in range(60)]  # 20 duplicates of earlier ids
    responses = await asyncio.gather(
        *(
            deliver(
                client,
                domain if n % 3 else "burst-other.myshopify.com",
                "products/update",
                product_payload(n, f"p{n}", T0),
                webhook_id=webhook_id,
            )
            for n, webhook_id in enumerate(ids)
        )
    )
    assert all(r.status_code == 200 for r in responses)
    recorded = await count(runtime, "webhook_inbox", shop_id) + await count(
        runtime, "webhook_inbox", other_id
    )
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT payload FROM outbox WHERE task = 'webhooks.process'")
        queued = [i for r in await cur.fetchall() for i in r[0]["inbox_ids"]]
    assert len(queued) == len(set(queued)) == recorded
    assert recorded == len({(n % 3 == 0, w) for n, w in enumerate(ids)})
