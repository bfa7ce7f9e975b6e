"""The read API: session tokens and API keys, tenant isolation, filters and keyset pages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from neanelu.catalog import apply
from neanelu.catalog.product_versions import ProductRecord, VariantRecord
from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.shopify.session_token import InvalidSessionToken, verify_session_token
from neanelu.shops import service
from tests.factories import create_shop
from tests.service.support import CLIENT_ID, PREVIOUS_SECRET, SECRET, session_token

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_session_token_rules() -> None:
    shop = "acme.myshopify.com"
    ok = verify_session_token(session_token(shop), client_id=CLIENT_ID, secrets=[SECRET])
    assert ok.shop == shop
    assert ok.user_id == "42"
    rotated = session_token(shop, secret=PREVIOUS_SECRET)
    assert verify_session_token(rotated, client_id=CLIENT_ID, secrets=[SECRET, PREVIOUS_SECRET])
    now = int(time.time())
    cases = {
        "signature": session_token(shop, secret="another-apps-secret-long-enough-for-hs256"),
        "expired": session_token(shop, exp=now - 11),
        "nbf": session_token(shop, nbf=now + 30),
        "another app": session_token(shop, aud="someone-else"),
        "different shops": session_token(shop, iss="https://other.myshopify.com/admin"),
        "not a Shopify shop": session_token("evil.com"),
        "'dest'": session_token(shop, dest=None),
    }
    for expected, token in cases.items():
        with pytest.raises(InvalidSessionToken, match=expected):
            verify_session_token(token, client_id=CLIENT_ID, secrets=[SECRET, PREVIOUS_SECRET])
    # Within the 10 s leeway an expired token still passes.
    assert verify_session_token(
        session_token(shop, exp=now - 5), client_id=CLIENT_ID, secrets=[SECRET]
    )
    with pytest.raises(InvalidSessionToken, match="not a JWT"):
        verify_session_token("garbage", client_id=CLIENT_ID, secrets=[SECRET])


def product(n: int, *, status: str = "ACTIVE", vendor: str = "Acme") -> ProductRecord:
    return ProductRecord(
        shopify_id=n,
        handle=f"p-{n}",
        title=f"Product {n}",
        vendor=vendor,
        product_type="Shirts",
        status=status,
        tags=["a"] if n % 2 else ["b"],
        description="<p>x</p>",
        shopify_created_at=T0,
        shopify_updated_at=T0 + timedelta(minutes=n),
        variants=[
            VariantRecord(
                shopify_id=n * 10,
                sku=f"S{n}",
                title="Default",
                price=None,
                compare_at_price=None,
                barcode=None,
                position=1,
                inventory_quantity=1,
                inventory_item_id=9_007_199_254_740_993,
                selected_options=[{"name": "Title", "value": "Default"}],
                shopify_created_at=T0,
                shopify_updated_at=T0,
            )
        ],
    )


@pytest.fixture
async def shops(runtime: Runtime) -> dict[str, Any]:
    acme = await create_shop(runtime.pool, "acme.myshopify.com")
    other = await create_shop(runtime.pool, "other.myshopify.com")
    async with tenant_scope(runtime.pool, acme) as conn:
        for n in range(1, 8):
            await apply.apply_product(
                conn, acme, product(n, status="DRAFT" if n == 3 else "ACTIVE")
            )
        await apply.delete_product(conn, acme, 7, T0 + timedelta(hours=1))
    async with tenant_scope(runtime.pool, other) as conn:
        await apply.apply_product(conn, other, product(100))
    async with tenant_scope(runtime.pool, other) as conn:
        key = await service.issue_api_key(conn, other)
    return {"acme": acme, "other": other, "other_key": key}


async def test_requires_credentials(client: httpx.AsyncClient, shops: dict[str, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer nk_wrong"}, {"Authorization": "Bearer a.b.c"}):
        response = await client.get("/api/products", headers=headers)
        assert response.status_code == 401
    unknown = session_token("nobody.myshopify.com")
    response = await client.get("/api/products", headers={"Authorization": f"Bearer {unknown}"})
    assert response.status_code == 401


async def test_pages_filters_and_tenant_isolation(
    client: httpx.AsyncClient, shops: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {session_token('acme.myshopify.com')}"}
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        page = (await client.get("/api/products", params=params, headers=auth)).json()
        seen += [p["id"] for p in page["items"]]
        after = page["next_cursor"]
        if after is None:
            break
    assert seen == ["1", "2", "3", "4", "5", "6"]
    drafts = await client.get("/api/products", params={"status": "DRAFT"}, headers=auth)
    assert [p["id"] for p in drafts.json()["items"]] == ["3"]
    tagged = await client.get("/api/products", params={"tag": "b"}, headers=auth)
    assert [p["id"] for p in tagged.json()["items"]] == ["2", "4", "6"]
    with_deleted = await client.get("/api/products", params={"include_deleted": True}, headers=auth)
    assert with_deleted.json()["items"][-1] == {**with_deleted.json()["items"][-1], "deleted": True}
    bad = await client.get("/api/products", params={"after": "-1"}, headers=auth)
    assert bad.status_code == 400

    one = await client.get("/api/products/2", headers=auth)
    assert one.status_code == 200
    body = one.json()
    assert body["variants"][0]["inventory_item_id"] == "9007199254740993"
    assert body["variants"][0]["selected_options"] == [{"name": "Title", "value": "Default"}]
    # Another shop's product is invisible to this shop, and the reverse.
    assert (await client.get("/api/products/100", headers=auth)).status_code == 404
    key_auth = {"Authorization": f"Bearer {shops['other_key']}"}
    other = await client.get("/api/products", headers=key_auth)
    assert [p["id"] for p in other.json()["items"]] == ["100"]
    assert (await client.get("/api/products/2", headers=key_auth)).status_code == 404


async def test_health(client: httpx.AsyncClient, runtime: Runtime) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "migrations": "ok", "redis": "ok"}
