"""Token refresh: before expiry, once across concurrent callers, visible failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import msgspec
import pytest
from pydantic import SecretStr

from neanelu.config import Settings
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import repository, service
from neanelu.shops.tokens import ShopUnavailable, access_token
from tests.databases import TestDatabase
from tests.service.support import build_runtime, close_runtime


class TokenEndpoint:
    def __init__(self) -> None:
        self.calls = 0
        self.refuse = False
        self.seen_refresh_tokens: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = msgspec.json.decode(request.content)
        assert body["grant_type"] == "refresh_token"
        self.seen_refresh_tokens.append(body["refresh_token"])
        self.calls += 1
        await asyncio.sleep(0.05)  # a slow Shopify: concurrent callers pile up meanwhile
        if self.refuse:
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(
            200,
            json={
                "access_token": f"shpat_new_{self.calls}",
                "scope": "read_products",
                "expires_in": 3600,
                "refresh_token": f"shprt_new_{self.calls}",
                "refresh_token_expires_in": 7_776_000,
            },
        )


@pytest.fixture
def endpoint() -> TokenEndpoint:
    return TokenEndpoint()


@pytest.fixture
async def rt(
    settings: Settings,
    database: TestDatabase,
    redis_url: str,
    key_prefix: str,
    endpoint: TokenEndpoint,
) -> AsyncIterator[Runtime]:
    runtime = await build_runtime(
        settings, database, redis_url, key_prefix, transport=httpx.MockTransport(endpoint)
    )
    yield runtime
    await close_runtime(runtime)


async def install(rt: Runtime, expires_in: timedelta) -> tuple[UUID, str]:
    domain = "tok-shop.myshopify.com"
    grant = TokenGrant(
        access_token=SecretStr("shpat_old"),
        scopes=("read_products",),
        expires_at=(datetime.now(UTC) + expires_in).timestamp(),
        refresh_token=SecretStr("shprt_old"),
        refresh_token_expires_at=(datetime.now(UTC) + timedelta(days=90)).timestamp(),
    )
    async with global_scope(rt.pool) as conn:
        shop_id, _ = await service.store_install(conn, rt.vault, domain, grant)
    return shop_id, domain


async def test_fresh_token_is_used_as_is(rt: Runtime, endpoint: TokenEndpoint) -> None:
    shop_id, _ = await install(rt, timedelta(hours=1))
    token = await access_token(rt, shop_id)
    assert token.get_secret_value() == "shpat_old"
    assert endpoint.calls == 0


async def test_expiring_token_refreshed_once_for_many_callers(
    rt: Runtime, endpoint: TokenEndpoint
) -> None:
    shop_id, _ = await install(rt, timedelta(minutes=2))
    tokens = await asyncio.gather(*(access_token(rt, shop_id) for _ in range(8)))
    assert endpoint.calls == 1
    assert endpoint.seen_refresh_tokens == ["shprt_old"]
    assert {t.get_secret_value() for t in tokens} == {"shpat_new_1"}
    async with tenant_scope(rt.pool, shop_id) as conn:
        row = await repository.get(conn, shop_id)
    assert row is not None
    assert row.refresh_token is not None
    # The replaced refresh token is stored with the new access token, so the next refresh uses it.
    opened = rt.vault.open(row.refresh_token, shop_id=shop_id, kind="refresh")
    assert opened.get_secret_value() == "shprt_new_1"
    assert row.access_token_expires_at is not None
    assert row.access_token_expires_at > datetime.now(UTC) + timedelta(minutes=50)


async def test_refused_refresh_marks_shop_for_reauth(
    rt: Runtime, endpoint: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    shop_id, _ = await install(rt, timedelta(minutes=1))
    endpoint.refuse = True
    with caplog.at_level(logging.INFO), pytest.raises(ShopUnavailable) as info:
        await access_token(rt, shop_id)
    assert "shprt" not in str(info.value)
    assert "shpat" not in str(info.value)
    async with tenant_scope(rt.pool, shop_id) as conn:
        row = await repository.get(conn, shop_id)
    assert row is not None
    assert row.status == "needs_reauth"
    assert any("needs re-authorization" in r.getMessage() for r in caplog.records)
    assert "shprt_old" not in caplog.text
    assert "shpat_old" not in caplog.text
