"""shop/redact against the emulator: it purges only what is due (the payload's shop, uninstalled
long enough ago, not reinstalled since), idempotently, and every decision stays in purge_audit."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import ShopRef, purge_shop
from neanelu.runtime import Runtime
from neanelu.search.hot import DEFAULT_PREFIX as HOT
from neanelu.shops import repository as shops
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.service.e2e_stack import CONTROL, SHOP, Stack, eventually, install
from tests.service.support import (
    RunJob,
    count,
    deliver,
    drain,
    encode,
    make_settings,
    webhook_headers,
)

WAY_BACK = timedelta(hours=49)  # beyond Shopify's 48 h between uninstall and shop/redact


async def installed_with_a_product(stack: Stack) -> uuid.UUID:
    """Installed through OAuth, subscribed, with one product that arrived by webhook."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = uuid.UUID(await install(stack, browser))

    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return any(s.get("topic") == "APP_UNINSTALLED" for s in subs)

    await eventually(subscribed, "webhook subscriptions")
    await stack.control.post(f"{CONTROL}/products", json={"title": "Redact Me"})

    async def arrived() -> bool:
        return await count(stack.runtime, "products", shop_id) == 1

    await eventually(arrived, "products/create applied")
    return shop_id


async def uninstall(stack: Stack, shop_id: uuid.UUID) -> None:
    await stack.control.post(f"{CONTROL}/uninstall", json={})

    async def uninstalled() -> bool:
        async with global_scope(stack.runtime.pool) as conn:
            row = await shops.get(conn, shop_id)
        return row is not None and row.status == shops.UNINSTALLED

    await eventually(uninstalled, "app/uninstalled applied")


def backdate_uninstall(database: TestDatabase, shop_id: uuid.UUID, by: timedelta) -> None:
    """As if the time had passed (the owner role: the application writes no such thing)."""
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE shops SET uninstalled_at = uninstalled_at - %s, "
            "purge_after = purge_after - %s WHERE id = %s",
            (by, by, shop_id),
        )


def audit(database: TestDatabase, shop_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Every purge record of the shop, read as the owner (an operator), oldest first."""
    with psycopg.connect(database.owner_url) as conn:
        cur = conn.execute(
            "SELECT requested_by, outcome, reason, webhook_id, payload_shop_domain, "
            "payload_shop_id FROM purge_audit WHERE shop_id = %s ORDER BY id",
            (shop_id,),
        )
        return list(cur.fetchall())


async def hot_cache_keys(rt: Runtime, shop_id: uuid.UUID) -> list[str]:
    """The shop's vectors and hot mark in the search hot cache, as keys alone (this Redis has no
    query engine; a shared index of earlier versions left such keys)."""
    keys = [
        f"{HOT}:v:0123456789abcdef:{shop_id.hex}:1",
        f"{HOT}:hot:0123456789abcdef:{shop_id.hex}",
    ]
    for key in keys:
        await rt.redis.set(key, "1")
    return keys


async def send_redact(stack: Stack) -> dict[str, Any]:
    """Shopify's shop/redact, signed and sent by the emulator to the compliance address."""
    sent = await stack.control.post(f"{CONTROL}/compliance", json={"topic": "shop/redact"})
    assert sent.status_code == 200, sent.text
    payload: dict[str, Any] = sent.json()["payload"]
    return payload


async def test_redact_after_a_reinstall_keeps_the_shop(
    stack: Stack, database: TestDatabase
) -> None:
    rt = stack.runtime
    shop_id = await installed_with_a_product(stack)
    await uninstall(stack, shop_id)
    backdate_uninstall(database, shop_id, WAY_BACK)
    # The merchant comes back before the redact arrives.
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        assert uuid.UUID(await install(stack, browser)) == shop_id

    await send_redact(stack)

    async def handled() -> bool:
        async with global_scope(rt.pool) as conn:
            if await shops.get(conn, shop_id) is None:
                return True  # purged: what must not happen
        async with tenant_scope(rt.pool, shop_id) as conn:
            cur = await conn.execute(
                "SELECT 1 FROM webhook_inbox WHERE topic = 'shop/redact' AND processed_at IS NOT NULL"
            )
            return await cur.fetchone() is not None

    await eventually(handled, "the shop/redact delivery handled")
    # Shop row, tokens and catalog all stay.
    async with tenant_scope(rt.pool, shop_id) as conn:
        row = await shops.get(conn, shop_id)
    assert row is not None, "a redact after a reinstall purged the shop"
    assert row.status == shops.INSTALLED
    assert row.access_token is not None
    assert await count(rt, "products", shop_id) == 1
    # Recorded as skipped, with the reason; the delivery is done, not failing and retried.
    [(requested_by, outcome, reason, webhook_id, domain, _)] = audit(database, shop_id)
    assert (requested_by, outcome, domain) == ("shop/redact", "skipped", SHOP)
    assert "installed" in reason
    assert webhook_id


async def test_due_redact_purges_once_and_its_record_outlives_the_shop(
    stack: Stack, database: TestDatabase
) -> None:
    rt = stack.runtime
    shop_id = await installed_with_a_product(stack)
    await uninstall(stack, shop_id)

    # Too early (the emulator sends it at once): recorded, skipped, everything kept.
    await send_redact(stack)

    async def recorded(n: int) -> bool:
        return len(audit(database, shop_id)) == n

    await eventually(lambda: recorded(1), "the early shop/redact recorded")
    assert audit(database, shop_id)[0][1:2] == ("skipped",)
    assert "less than 48 h ago" in audit(database, shop_id)[0][2]
    assert await count(rt, "products", shop_id) == 1

    backdate_uninstall(database, shop_id, WAY_BACK)
    payload = await send_redact(stack)

    async def purged() -> bool:
        async with global_scope(rt.pool) as conn:
            return await shops.get(conn, shop_id) is None

    await eventually(purged, "the due shop/redact applied")
    records = audit(database, shop_id)
    assert [r[:2] for r in records] == [("shop/redact", "skipped"), ("shop/redact", "purged")]
    assert records[1][4:] == (SHOP, payload["shop_id"])
    with psycopg.connect(database.owner_url) as conn:
        for table in ("products", "variants", "webhook_inbox", "sync_runs"):
            conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(shop_id),))
            left = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert left == (0,), table

    # Shopify repeats it (or sends another): answered, nothing else happens.
    body = encode({"shop_id": payload["shop_id"], "shop_domain": SHOP})
    async with httpx.AsyncClient(base_url=stack.app_url, timeout=10) as client:
        again = await client.post(
            "/api/webhooks/compliance",
            content=body,
            headers=webhook_headers(body, shop=SHOP, topic="shop/redact"),
        )
    assert again.status_code == 200
    assert len(audit(database, shop_id)) == 2


@pytest.fixture
def settings() -> Any:
    return make_settings(SHOP_REDACT_MIN_AGE_HOURS=0)


async def test_redact_naming_another_shop_is_skipped_then_the_right_one_purges(
    client: httpx.AsyncClient, runtime: Runtime, database: TestDatabase
) -> None:
    """With SHOP_REDACT_MIN_AGE_HOURS=0 the age never stops it: only the payload's shop does."""
    domain = f"named-{uuid.uuid4().hex[:8]}.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    other = await create_shop(runtime.pool, f"other-{uuid.uuid4().hex[:8]}.myshopify.com")
    await deliver(client, domain, "app/uninstalled", {"id": 77, "domain": domain})
    await drain(runtime, shop_id)

    wrong: list[dict[str, Any]] = [
        {"shop_id": 77, "shop_domain": "someone-else.myshopify.com"},
        {"shop_id": 78, "shop_domain": domain},
        {"shop_domain": domain},
        {"shop_id": 77},
    ]
    for payload in wrong:
        assert (await deliver(client, domain, "shop/redact", payload)).status_code == 200
    await drain(runtime, shop_id)
    assert await count(runtime, "shops") == 2, "a redact naming another shop purged this one"
    records = audit(database, shop_id)
    assert [r[1] for r in records] == ["skipped"] * len(wrong)
    assert "someone-else.myshopify.com" in records[0][2]
    assert "78" in records[1][2]

    cached = {shop: await hot_cache_keys(runtime, shop) for shop in (shop_id, other)}
    await deliver(client, domain, "shop/redact", {"shop_id": 77, "shop_domain": domain})
    await drain(runtime, shop_id)
    assert [r[1] for r in audit(database, shop_id)] == ["skipped"] * len(wrong) + ["purged"]
    # Only that shop went, in Redis too.
    async with global_scope(runtime.pool) as conn:
        assert await shops.get(conn, shop_id) is None
        assert await shops.get(conn, other) is not None
    assert await runtime.redis.exists(*cached[shop_id]) == 0
    assert await runtime.redis.exists(*cached[other]) == 2


async def test_the_scheduled_purge_forgets_the_shop_in_redis_too(
    client: httpx.AsyncClient, runtime: Runtime, database: TestDatabase, run_job: RunJob
) -> None:
    domain = f"gone-{uuid.uuid4().hex[:8]}.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    other = await create_shop(runtime.pool, f"stays-{uuid.uuid4().hex[:8]}.myshopify.com")
    await deliver(client, domain, "app/uninstalled", {"id": 79, "domain": domain})
    await drain(runtime, shop_id)
    cached = {shop: await hot_cache_keys(runtime, shop) for shop in (shop_id, other)}
    # Not due yet: nothing goes, in PostgreSQL or in Redis.
    await run_job(runtime, purge_shop, ShopRef(shop_id=str(shop_id)))
    assert await runtime.redis.exists(*cached[shop_id]) == 2
    backdate_uninstall(database, shop_id, WAY_BACK)
    await run_job(runtime, purge_shop, ShopRef(shop_id=str(shop_id)))
    async with global_scope(runtime.pool) as conn:
        assert await shops.get(conn, shop_id) is None
    assert await runtime.redis.exists(*cached[shop_id]) == 0
    assert await runtime.redis.exists(*cached[other]) == 2
