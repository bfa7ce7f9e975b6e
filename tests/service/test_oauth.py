"""Install over HTTP: the domain rule, the callback's HMAC, timestamp and state, and what a
successful install stores and queues."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
from pydantic import SecretStr

from neanelu.config import Settings
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import (
    ID_TOKEN_TYPE,
    OFFLINE_TOKEN_TYPE,
    InvalidShopDomain,
    TokenClient,
    normalize_shop_domain,
    sign_callback,
    timestamp_is_fresh,
    verify_callback_hmac,
)
from neanelu.shops import oauth_state
from neanelu.shops import repository as shops
from tests.databases import TestDatabase
from tests.service.support import (
    PREVIOUS_SECRET,
    SECRET,
    app_for,
    build_runtime,
    close_runtime,
    count,
)

SHOP = "acme.myshopify.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("acme.myshopify.com", "acme.myshopify.com"),
        ("ACME.myshopify.com/", "acme.myshopify.com"),
        ("https://acme.myshopify.com", "acme.myshopify.com"),
        ("admin.shopify.com/store/acme", "acme.myshopify.com"),
        ("acme-2.shop.dev", "acme-2.shop.dev"),
    ],
)
def test_shop_domain_accepts_shopify_hosts(given: str, expected: str) -> None:
    assert normalize_shop_domain(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "evil.com",
        "acme.myshopify.com.evil.com",
        "acme.myshopify.com@evil.com",
        "-acme.myshopify.com",
        "acme.myshopify.com:8080",
        "169.254.169.254",
        "acme.myshopify.com/admin",
        "a" * 300 + ".myshopify.com",
    ],
)
def test_shop_domain_rejects_everything_else(given: str | None) -> None:
    with pytest.raises(InvalidShopDomain):
        normalize_shop_domain(given)


def test_callback_hmac_with_current_and_previous_secret() -> None:
    params = {"code": "c", "shop": SHOP, "state": "s", "timestamp": "1", "host": "h"}
    assert verify_callback_hmac({**params, "hmac": sign_callback(params, SECRET)}, [SECRET])
    rotated = {**params, "hmac": sign_callback(params, PREVIOUS_SECRET)}
    assert verify_callback_hmac(rotated, [SECRET, PREVIOUS_SECRET])
    assert not verify_callback_hmac(rotated, [SECRET])
    assert not verify_callback_hmac({**params, "hmac": "0" * 64}, [SECRET, PREVIOUS_SECRET])
    assert not verify_callback_hmac(params, [SECRET])


def test_timestamp_window() -> None:
    now = 1_800_000_000
    assert timestamp_is_fresh(str(now - 90), now=now)
    assert not timestamp_is_fresh(str(now - 91), now=now)
    assert not timestamp_is_fresh(str(now + 91), now=now)
    assert not timestamp_is_fresh("abc", now=now)
    assert not timestamp_is_fresh(None, now=now)


class FakeShopify:
    """The token endpoint, counting calls; anything else fails the test."""

    def __init__(self) -> None:
        self.token_calls: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/admin/oauth/access_token", request.url
        body = msgspec.json.decode(request.content)
        self.token_calls.append(body)
        return httpx.Response(
            200,
            json={
                "access_token": "shpat_plaintext_access_token_123",
                "scope": "read_products,read_inventory",
                "expires_in": 3600,
                "refresh_token": "shprt_plaintext_refresh_token_456",
                "refresh_token_expires_in": 7_776_000,
            },
        )


@pytest.fixture
def fake_shopify() -> FakeShopify:
    return FakeShopify()


@pytest.fixture
async def oauth_client(
    settings: Settings,
    database: TestDatabase,
    redis_url: str,
    key_prefix: str,
    fake_shopify: FakeShopify,
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    rt = await build_runtime(
        settings, database, redis_url, key_prefix, transport=httpx.MockTransport(fake_shopify)
    )
    transport = httpx.ASGITransport(app=app_for(rt, database, redis_url))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c, rt
    await close_runtime(rt)


def callback_params(state: str, *, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    params = {
        "code": "auth-code-1",
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWNtZQ",
        "shop": SHOP,
        "state": state,
        "timestamp": str(ts if ts is not None else int(time.time())),
    }
    params["hmac"] = sign_callback(params, secret)
    return params


async def start_install(client: httpx.AsyncClient) -> tuple[str, str]:
    response = await client.get("/auth/install", params={"shop": SHOP})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.netloc == SHOP
    assert location.path == "/admin/oauth/authorize"
    query = parse_qs(location.query, keep_blank_values=True)
    assert query["client_id"] == ["test-client-id"]
    assert query["redirect_uri"] == ["http://testserver/auth/callback"]
    assert query["grant_options[]"] == [""]
    cookie = response.cookies[oauth_state.COOKIE_NAME]
    # Each test sends the cookie it means to send, nothing from the jar.
    client.cookies.clear()
    return query["state"][0], cookie


async def callback(
    client: httpx.AsyncClient, params: dict[str, str], cookie: str | None
) -> httpx.Response:
    headers = {"Cookie": f"{oauth_state.COOKIE_NAME}={cookie}"} if cookie else {}
    return await client.get("/auth/callback", params=params, headers=headers)


async def assert_nothing_stored(rt: Runtime, fake: FakeShopify) -> None:
    assert fake.token_calls == []
    assert await count(rt, "shops") == 0
    assert await count(rt, "outbox") == 0


async def test_install_rejects_foreign_domain_before_any_request(
    oauth_client: tuple[httpx.AsyncClient, Runtime], fake_shopify: FakeShopify
) -> None:
    client, rt = oauth_client
    for shop in ("evil.com", "acme.myshopify.com.evil.com", ""):
        response = await client.get("/auth/install", params={"shop": shop})
        assert response.status_code == 400, shop
        assert oauth_state.COOKIE_NAME not in response.cookies
    response = await client.get("/auth/install")
    assert response.status_code == 400
    await assert_nothing_stored(rt, fake_shopify)


async def test_install_and_callback_store_sealed_tokens_and_queue_sync(
    oauth_client: tuple[httpx.AsyncClient, Runtime], fake_shopify: FakeShopify
) -> None:
    client, rt = oauth_client
    state, cookie = await start_install(client)
    response = await callback(client, callback_params(state), cookie)
    assert response.status_code == 302, response.text
    assert fake_shopify.token_calls[0]["expiring"] == "1"
    assert fake_shopify.token_calls[0]["code"] == "auth-code-1"
    async with global_scope(rt.pool) as conn:
        found = await shops.get_by_domain(conn, SHOP)
        tasks = await (await conn.execute("SELECT queue, task FROM outbox ORDER BY id")).fetchall()
    assert found is not None
    # The sealed tokens are readable in the shop's own tenant scope only.
    async with tenant_scope(rt.pool, found.id) as conn:
        row = await shops.get(conn, found.id)
    assert row is not None
    assert row.access_token is not None
    assert row.refresh_token is not None
    assert row.status == "installed"
    assert row.access_token_expires_at is not None
    assert row.access_token.key_id == rt.vault.current_key_id
    assert b"shpat_plaintext" not in row.access_token.ciphertext
    assert b"shprt_plaintext" not in row.refresh_token.ciphertext
    assert row.scopes == ("read_products", "read_inventory")
    assert tasks == [("sync", "shops.subscribe_webhooks"), ("bulk", "sync.full")]


async def test_callback_rejections_store_and_queue_nothing(
    oauth_client: tuple[httpx.AsyncClient, Runtime], fake_shopify: FakeShopify
) -> None:
    client, rt = oauth_client
    state, cookie = await start_install(client)
    good = callback_params(state)

    forged = {**good, "hmac": "f" * 64}
    assert (await callback(client, forged, cookie)).status_code == 401
    missing_hmac = {k: v for k, v in good.items() if k != "hmac"}
    assert (await callback(client, missing_hmac, cookie)).status_code == 400
    wrong_secret = callback_params(state, secret="not-the-secret")
    assert (await callback(client, wrong_secret, cookie)).status_code == 401
    stale = callback_params(state, ts=int(time.time()) - 600)
    assert (await callback(client, stale, cookie)).status_code == 400
    foreign = {**good, "shop": "evil.com"}
    foreign["hmac"] = sign_callback(foreign, SECRET)
    assert (await callback(client, foreign, cookie)).status_code == 400
    no_cookie = await callback(client, good, None)
    assert no_cookie.status_code == 400
    assert "cookie" in no_cookie.json()["detail"]
    other_state = callback_params("0" * 64)
    assert (await callback(client, other_state, cookie)).status_code == 400
    tampered = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
    assert (await callback(client, good, tampered)).status_code == 400
    await assert_nothing_stored(rt, fake_shopify)

    # The genuine callback works once; the same URL and cookie replayed is refused.
    assert (await callback(client, good, cookie)).status_code == 302
    replay = await callback(client, good, cookie)
    assert replay.status_code == 400
    assert "already used" in replay.json()["detail"]
    assert len(fake_shopify.token_calls) == 1
    assert await count(rt, "outbox") == 2


async def test_callback_accepts_previous_secret_and_reinstall_keeps_shop(
    oauth_client: tuple[httpx.AsyncClient, Runtime], fake_shopify: FakeShopify
) -> None:
    client, rt = oauth_client
    ids = []
    for secret in (PREVIOUS_SECRET, SECRET):
        state, cookie = await start_install(client)
        response = await callback(client, callback_params(state, secret=secret), cookie)
        assert response.status_code == 302, response.text
        ids.append(response.json()["shop_id"])
    assert ids[0] == ids[1]
    assert await count(rt, "shops") == 1


def test_state_cookie_expires() -> None:
    value = oauth_state.cookie_value(SECRET, "abc", shop=SHOP, now=1000)
    assert oauth_state.verify_cookie(value, "abc", SECRET, shop=SHOP, now=1059) == "abc"
    with pytest.raises(oauth_state.StateError, match="expired"):
        oauth_state.verify_cookie(value, "abc", SECRET, shop=SHOP, now=1061)


async def test_state_is_bound_to_the_shop_it_was_issued_for(
    oauth_client: tuple[httpx.AsyncClient, Runtime], fake_shopify: FakeShopify
) -> None:
    """A state (and its cookie) from an install of one shop does not finish another's, even
    when Shopify's signature over the callback is valid."""
    client, rt = oauth_client
    response = await client.get("/auth/install", params={"shop": "other.myshopify.com"})
    assert response.status_code == 302
    state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
    cookie = response.cookies[oauth_state.COOKIE_NAME]
    client.cookies.clear()
    crossed = await callback(client, callback_params(state), cookie)  # signed for SHOP
    assert crossed.status_code == 400
    assert "another shop" in crossed.json()["detail"]
    await assert_nothing_stored(rt, fake_shopify)


async def test_token_exchange_requests_have_the_protocol_shape() -> None:
    seen: list[dict[str, str]] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        assert request.headers["host"] == SHOP  # the emulator base URL carries the shop in Host
        seen.append(msgspec.json.decode(request.content))
        return httpx.Response(200, json={"access_token": "shpat_x", "scope": "read_products"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        client = TokenClient(
            http, "cid", SecretStr("csecret"), "2026-01", base_url="http://emulator.local"
        )
        grant = await client.exchange_offline_token(SHOP, SecretStr("old-token"))
        await client.exchange_session_token(SHOP, "a.b.c")
        await client.refresh(SHOP, SecretStr("shprt_1"))
    assert grant.expires_at is None
    assert grant.scopes == ("read_products",)
    assert "shpat_x" not in repr(grant)
    assert seen[0]["subject_token_type"] == OFFLINE_TOKEN_TYPE
    assert seen[0]["requested_token_type"] == OFFLINE_TOKEN_TYPE
    assert seen[0]["expiring"] == "1"
    assert seen[1]["subject_token_type"] == ID_TOKEN_TYPE
    assert seen[2] == {
        "client_id": "cid",
        "client_secret": "csecret",
        "grant_type": "refresh_token",
        "refresh_token": "shprt_1",
    }
