"""An embedded app's install by token exchange: `POST /auth/token-exchange` with the App Bridge
session token, against the emulator's token-exchange grant, on the real database and Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.shops import repository
from neanelu.shops.tokens import access_token
from tests.databases import TestDatabase
from tests.service.emulated import Emulated, emulated_service
from tests.service.support import CLIENT_ID, PREVIOUS_SECRET, SECRET, count, session_token

SHOP = "acme.myshopify.com"
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE = "urn:shopify:params:oauth:token-type:online-access-token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
# App Bridge retries a request answered 401 with this header, with a fresh session token.
RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


@pytest.fixture
async def svc(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Emulated]:
    async with emulated_service(database, redis_url, key_prefix) as emulated:
        yield emulated


async def exchange(svc: Emulated, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await svc.client.post("/auth/token-exchange", headers=headers)


async def stored(svc: Emulated) -> tuple[Any, ...]:
    """The shop's row as the app stores it; its sealed tokens are readable in its own scope only."""
    async with global_scope(svc.runtime.pool) as conn:
        found = await repository.get_by_domain(conn, SHOP)
    assert found is not None
    async with tenant_scope(svc.runtime.pool, found.id) as conn:
        row = await repository.get(conn, found.id)
    assert row is not None
    return (
        row.id,
        row.status,
        row.access_token,
        row.refresh_token,
        row.access_token_expires_at,
        row.refresh_token_expires_at,
    )


async def outbox_tasks(svc: Emulated) -> list[tuple[str, str]]:
    async with global_scope(svc.runtime.pool) as conn:
        rows = await (await conn.execute("SELECT queue, task FROM outbox ORDER BY id")).fetchall()
    return [(r[0], r[1]) for r in rows]


def issued_offline_tokens(svc: Emulated) -> int:
    return sum(1 for t in svc.shop_state("acme").tokens.values() if not t.online)


async def test_exchange_installs_once_and_a_repeat_changes_nothing(
    svc: Emulated, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = session_token(SHOP)
    first = await exchange(svc, token)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["shop"] == SHOP
    assert body["new_install"] is True
    assert body["token_exchanged"] is True
    shop_id, status, access_ct, refresh_ct, access_exp, refresh_exp = await stored(svc)
    assert str(shop_id) == body["shop_id"]
    assert status == repository.INSTALLED
    # Sealed like the callback's: an expiring offline token with its refresh token.
    assert access_exp is not None
    assert refresh_ct is not None
    assert refresh_exp is not None
    emulator_tokens = [t.value for t in svc.shop_state("acme").tokens.values()]
    assert len(emulator_tokens) == 1
    assert emulator_tokens[0].encode() not in access_ct.ciphertext
    # The stored token is the one Shopify issued, and it works.
    opened = await access_token(svc.runtime, shop_id)
    assert opened.get_secret_value() == emulator_tokens[0]
    assert await outbox_tasks(svc) == [("sync", "shops.subscribe_webhooks"), ("bulk", "sync.full")]

    again = await exchange(svc, session_token(SHOP))
    assert again.status_code == 200, again.text
    assert again.json() == {**body, "new_install": False, "token_exchanged": False}
    assert await stored(svc) == (shop_id, status, access_ct, refresh_ct, access_exp, refresh_exp)
    assert issued_offline_tokens(svc) == 1  # Shopify was not asked again
    assert await outbox_tasks(svc) == [("sync", "shops.subscribe_webhooks"), ("bulk", "sync.full")]
    # Neither the session token nor the issued token reaches the logs.
    assert token not in caplog.text
    assert emulator_tokens[0] not in caplog.text


async def test_two_exchanges_at_once_queue_the_first_sync_once(svc: Emulated) -> None:
    answers = await asyncio.gather(
        exchange(svc, session_token(SHOP)), exchange(svc, session_token(SHOP, jti="other"))
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["new_install"] for a in answers) == [False, True]
    assert await count(svc.runtime, "shops") == 1
    assert await outbox_tasks(svc) == [("sync", "shops.subscribe_webhooks"), ("bulk", "sync.full")]


async def test_reauthorization_and_reinstall(svc: Emulated) -> None:
    assert (await exchange(svc, session_token(SHOP))).status_code == 200
    shop_id = (await stored(svc))[0]
    # A refused refresh left the shop waiting for the merchant: new tokens, nothing queued.
    async with tenant_scope(svc.runtime.pool, shop_id) as conn:
        await repository.set_status(conn, shop_id, repository.NEEDS_REAUTH)
        await conn.execute("DELETE FROM outbox")
    before = await stored(svc)
    again = await exchange(svc, session_token(SHOP))
    assert again.status_code == 200
    assert again.json()["new_install"] is False
    assert again.json()["token_exchanged"] is True
    after = await stored(svc)
    assert after[1] == repository.INSTALLED
    assert after[2] != before[2]
    assert await outbox_tasks(svc) == []
    # After an uninstall the exchange installs afresh: subscriptions and a full sync again.
    async with tenant_scope(svc.runtime.pool, shop_id) as conn:
        await repository.mark_uninstalled(conn, shop_id, after[4])
    reinstall = await exchange(svc, session_token(SHOP))
    assert reinstall.status_code == 200
    assert reinstall.json()["new_install"] is True
    assert reinstall.json()["shop_id"] == str(shop_id)
    assert await outbox_tasks(svc) == [("sync", "shops.subscribe_webhooks"), ("bulk", "sync.full")]


def _expired() -> dict[str, Any]:
    now = int(time.time())
    return {"iat": now - 180, "nbf": now - 180, "exp": now - 120}


# Tokens are made inside each test (a token made at collection could expire before its test runs).
BAD_SESSION_TOKENS: dict[str, tuple[Callable[[], str | None], str]] = {
    "missing": (lambda: None, "required"),
    "malformed": (lambda: "not-a-jwt", "not a JWT"),
    "forged": (
        lambda: session_token(SHOP, secret="not-the-app-secret-at-all-0123456789"),
        "signature",
    ),
    "other-app": (lambda: session_token(SHOP, aud="another-app"), "another app"),
    "expired": (lambda: session_token(SHOP, **_expired()), "expired"),
}


@pytest.mark.parametrize("case", list(BAD_SESSION_TOKENS))
async def test_bad_session_tokens_get_401_with_retry_and_ask_shopify_nothing(
    svc: Emulated, case: str
) -> None:
    make, reason = BAD_SESSION_TOKENS[case]
    response = await exchange(svc, make())
    assert response.status_code == 401, response.text
    assert response.headers[RETRY_HEADER] == "1"
    assert reason in response.json()["detail"]
    assert issued_offline_tokens(svc) == 0
    assert await count(svc.runtime, "shops") == 0


async def test_token_shopify_refuses_gets_401_with_retry_and_stores_nothing(svc: Emulated) -> None:
    # neanelu still accepts the previous secret; Shopify signs with the current one only, so it
    # refuses such a token as an invalid subject token.
    response = await exchange(svc, session_token(SHOP, secret=PREVIOUS_SECRET))
    assert response.status_code == 401, response.text
    assert response.headers[RETRY_HEADER] == "1"
    assert "Shopify refused" in response.json()["detail"]
    assert await count(svc.runtime, "shops") == 0
    assert await count(svc.runtime, "outbox") == 0


async def test_shop_unknown_to_shopify_is_a_502(svc: Emulated) -> None:
    response = await exchange(svc, session_token("nobody.myshopify.com"))
    assert response.status_code == 502
    assert await count(svc.runtime, "shops") == 0


async def test_non_shop_domain_in_session_token_is_refused(svc: Emulated) -> None:
    response = await exchange(svc, session_token("acme.shop.dev"))
    assert response.status_code == 400
    assert await count(svc.runtime, "shops") == 0


# --- the emulator's grant, as Shopify answers it ---------------------------------------------------


async def grant(svc: Emulated, subject: str, **extra: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=svc.emulator.base_url) as http:
        return await http.post(
            "/admin/oauth/access_token",
            headers={"Host": SHOP},
            json={
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "grant_type": EXCHANGE,
                "subject_token": subject,
                "subject_token_type": ID_TOKEN,
                **extra,
            },
        )


async def test_emulator_grant_issues_expiring_offline_online_and_plain_offline(
    svc: Emulated,
) -> None:
    expiring = await grant(svc, session_token(SHOP), requested_token_type=OFFLINE, expiring="1")
    assert expiring.status_code == 200
    assert expiring.json()["expires_in"] == 3600
    assert expiring.json()["refresh_token"]
    plain = await grant(svc, session_token(SHOP), requested_token_type=OFFLINE)
    assert plain.status_code == 200
    assert "expires_in" not in plain.json()
    assert "refresh_token" not in plain.json()
    online = await grant(svc, session_token(SHOP), requested_token_type=ONLINE, expiring="1")
    assert online.status_code == 200
    assert online.json()["associated_user"]["id"]
    assert "refresh_token" not in online.json()


REFUSED_SUBJECTS: dict[str, Callable[[], str]] = {
    "forged": lambda: session_token(SHOP, secret=PREVIOUS_SECRET),
    "other-app": lambda: session_token(SHOP, aud="another-app"),
    "expired": lambda: session_token(SHOP, **_expired()),
    "not-yet": lambda: session_token(SHOP, nbf=int(time.time()) + 120),
    "dest": lambda: session_token(SHOP, dest="https://other.myshopify.com"),
    "iss": lambda: session_token(SHOP, iss="https://other.myshopify.com/admin"),
    "other-shop": lambda: session_token("other.myshopify.com"),
    "garbage": lambda: "garbage",
}


@pytest.mark.parametrize("case", list(REFUSED_SUBJECTS))
async def test_emulator_grant_refuses_as_shopify_does(svc: Emulated, case: str) -> None:
    response = await grant(
        svc, REFUSED_SUBJECTS[case](), requested_token_type=OFFLINE, expiring="1"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_subject_token",
        "error_description": "Token exchange cannot be performed due to an invalid subject token.",
    }
    assert issued_offline_tokens(svc) == 0


async def test_emulator_grant_refuses_unknown_requested_type(svc: Emulated) -> None:
    response = await grant(svc, session_token(SHOP), requested_token_type="urn:x:y")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
