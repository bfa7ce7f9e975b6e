"""The parts of webhook ingress that keep its latency flat: the shop directory's cache and the
inbox writer's connection, on the real database."""

from __future__ import annotations

import asyncio
import uuid

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, bind_tenant, global_scope, tenant_scope
from neanelu.runtime import Runtime
from neanelu.shops import repository as shops
from neanelu.webhooks import repository as inbox
from neanelu.webhooks.repository import NewDelivery
from neanelu.webhooks.service import InboxWriter, ShopDirectory
from tests.factories import create_shop


def _checkouts(pool: AsyncConnectionPool[Conn]) -> int:
    return int(pool.get_stats().get("requests_num", 0))


def _delivery(webhook_id: str) -> NewDelivery:
    return NewDelivery(
        webhook_id=webhook_id,
        event_id=None,
        topic="products/update",
        api_version="2026-01",
        triggered_at=None,
        payload=b'{"id": 1}',
    )


async def test_concurrent_misses_share_one_query(runtime: Runtime) -> None:
    domain = f"dir-{uuid.uuid4().hex[:8]}.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    directory = ShopDirectory()
    before = _checkouts(runtime.pool)
    found = await asyncio.gather(*(directory.lookup(runtime.pool, domain) for _ in range(50)))
    assert found == [(shop_id, shops.INSTALLED)] * 50
    assert _checkouts(runtime.pool) - before == 1
    # A domain not known here is cached as such, and shared the same way.
    unknown = f"none-{uuid.uuid4().hex[:8]}.myshopify.com"
    before = _checkouts(runtime.pool)
    missing = await asyncio.gather(*(directory.lookup(runtime.pool, unknown) for _ in range(20)))
    assert missing == [None] * 20
    assert await directory.lookup(runtime.pool, unknown) is None
    assert _checkouts(runtime.pool) - before == 1


async def test_entry_refreshed_ahead_and_never_older_than_its_ttl(runtime: Runtime) -> None:
    domain = f"dir-{uuid.uuid4().hex[:8]}.myshopify.com"
    shop_id = await create_shop(runtime.pool, domain)
    directory = ShopDirectory(ttl_s=2.0, refresh_after=0.25)
    assert await directory.lookup(runtime.pool, domain) == (shop_id, shops.INSTALLED)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await shops.set_status(conn, shop_id, shops.UNINSTALLED)
    await asyncio.sleep(0.6)  # past the refresh point, well inside the TTL
    before = _checkouts(runtime.pool)
    # Answered from the cache (the refresh runs beside it), then from the refreshed entry:
    # the uninstall is seen before the first entry's TTL ran out.
    assert await directory.lookup(runtime.pool, domain) == (shop_id, shops.INSTALLED)
    for _ in range(100):
        if await directory.lookup(runtime.pool, domain) == (shop_id, shops.UNINSTALLED):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the entry was not refreshed ahead of its expiry")
    assert _checkouts(runtime.pool) - before == 1
    directory.forget(domain)
    assert await directory.lookup(runtime.pool, domain) == (shop_id, shops.UNINSTALLED)


async def test_writer_keeps_its_connection_between_batches(runtime: Runtime) -> None:
    shop_id = await create_shop(runtime.pool)
    writer = InboxWriter(linger_s=30.0)
    before = _checkouts(runtime.pool)
    first = await writer.record(runtime.pool, shop_id, _delivery("linger-1"))
    second = await writer.record(runtime.pool, shop_id, _delivery("linger-2"))
    again = await writer.record(runtime.pool, shop_id, _delivery("linger-1"))
    assert first is not None
    assert second is not None
    assert second > first
    assert again is None  # a duplicate, recorded once
    assert _checkouts(runtime.pool) - before == 1
    stats = runtime.pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] >= 1  # held while lingering
    await writer.close()
    stats = runtime.pool.get_stats()
    assert stats["pool_size"] == stats["pool_available"]  # handed back, well before 30 s


async def test_second_transaction_only_beside_a_slow_one(runtime: Runtime) -> None:
    """Deliveries that arrive while a batch is in flight share one writer while that batch is
    quick; a second writer (its own connection) joins once it has taken `overlap_after_s`."""
    shop_id = await create_shop(runtime.pool)

    async def burst(writer: InboxWriter, tag: str) -> int:
        # An uncommitted row with the first delivery's webhook id holds the writer's insert
        # (ON CONFLICT waits for it): a batch in flight for as long as the test wants.
        blocker = await runtime.pool.getconn()
        before = _checkouts(runtime.pool)
        try:
            await bind_tenant(blocker, shop_id)
            await inbox.insert_many(blocker, shop_id, [_delivery(f"{tag}-0")])
            first = asyncio.ensure_future(
                writer.record(runtime.pool, shop_id, _delivery(f"{tag}-0"))
            )
            await asyncio.sleep(0.2)
            rest = [
                asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery(f"{tag}-{n}")))
                for n in range(1, 30)
            ]
            await asyncio.sleep(0.2)
            used = _checkouts(runtime.pool) - before
        finally:
            await blocker.rollback()
            await runtime.pool.putconn(blocker)
        ids = await asyncio.gather(first, *rest)
        assert None not in ids
        assert len(set(ids)) == 30
        await writer.close()
        return used

    assert await burst(InboxWriter(overlap_after_s=60.0), "quick") == 1
    assert await burst(InboxWriter(overlap_after_s=0.0), "slow") == 2


async def test_a_lone_delivery_waits_a_moment_for_company(runtime: Runtime) -> None:
    """Deliveries a moment apart share a batch (one outbox job) when the writer gathers, and
    each pays its own without."""

    async def jobs_for(gather_s: float) -> int:
        shop_id = await create_shop(runtime.pool)
        writer = InboxWriter(gather_s=gather_s)
        first = asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery("g-1")))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, writer.record(runtime.pool, shop_id, _delivery("g-2")))
        await writer.close()
        async with global_scope(runtime.pool) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM outbox WHERE task = 'webhooks.process' "
                "AND payload->>'shop_id' = %s",
                (str(shop_id),),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    assert await jobs_for(0.5) == 1
    assert await jobs_for(0.0) == 2
