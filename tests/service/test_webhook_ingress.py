"""The parts of webhook ingress that keep its latency flat: the shop directory's cache and the
inbox writer's connection, on the real database."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg.pq import Trace, TransactionStatus
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, bind_tenant, global_scope, tenant_scope
from neanelu.handles import DeliveryBatch, process_deliveries
from neanelu.queue.outbox import OutboxOptions
from neanelu.runtime import Runtime
from neanelu.shops import repository as shops
from neanelu.webhooks import topics
from neanelu.webhooks.repository import NewDelivery
from neanelu.webhooks.service import COMPLIANCE_GROUP, InboxWriter, ShopDirectory, record_deliveries
from tests.factories import create_shop


def _checkouts(pool: AsyncConnectionPool[Conn]) -> int:
    return int(pool.get_stats().get("requests_num", 0))


def _delivery(webhook_id: str, topic: str = topics.PRODUCTS_UPDATE) -> NewDelivery:
    return NewDelivery(
        webhook_id=webhook_id,
        event_id=None,
        topic=topic,
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
            await blocker.execute(
                "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, payload) "
                "VALUES (%s, %s, 'products/update', '{}')",
                (shop_id, f"{tag}-0"),
            )
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


def _syncs_sent(trace: Path) -> int:
    """Sync messages the client sent, from libpq's protocol trace: each is a wait for the
    server's answers."""
    return sum(
        1 for line in trace.read_text().splitlines() if line.split("\t")[:3:2] == ["F", "Sync"]
    )


async def test_a_batch_is_one_round_trip_that_queues_what_enqueue_in_tx_would(
    runtime: Runtime, tmp_path: Path
) -> None:
    """BEGIN, every shop's insert with its outbox rows and COMMIT travel together (one Sync: one
    wait for PostgreSQL), and the outbox rows the statement builds are those `enqueue_in_tx`
    writes for a DeliveryBatch: one per shop and group (compliance topics in their own), inbox
    ids in the order the deliveries came, duplicates left out."""
    shop_id = await create_shop(runtime.pool)
    other_id = await create_shop(runtime.pool)
    items = [
        (shop_id, _delivery("rt-1")),
        (other_id, _delivery("rt-1")),  # the same webhook id for another shop: new
        (shop_id, _delivery("rt-2", topics.CUSTOMERS_REDACT)),
        (shop_id, _delivery("rt-3")),
        (shop_id, _delivery("rt-1")),  # twice in one batch: a duplicate
    ]
    trace = tmp_path / "libpq.trace"
    async with runtime.pool.connection() as conn:
        fd = os.open(trace, os.O_WRONLY | os.O_CREAT, 0o600)
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            ids = await record_deliveries(conn, items)
        finally:
            conn.pgconn.untrace()
            os.close(fd)
        # Handed back as it came: idle, out of autocommit.
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert not conn.autocommit
    assert _syncs_sent(trace) == 1
    assert ids[4] is None  # the duplicate
    new = [inbox_id for inbox_id in ids[:4] if inbox_id is not None]
    assert len(new) == 4
    first, other, redact, third = new
    assert first < redact < third

    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute(
            "SELECT queue, job_id, group_id, task, payload::text, options::text FROM outbox "
            "WHERE payload->>'shop_id' = ANY(%s) ORDER BY job_id",
            ([str(shop_id), str(other_id)],),
        )
        written = await cur.fetchall()
    expected = [
        (DeliveryBatch(shop_id=str(shop_id), inbox_ids=[first, third]), str(shop_id)),
        (DeliveryBatch(shop_id=str(shop_id), inbox_ids=[redact]), COMPLIANCE_GROUP),
        (DeliveryBatch(shop_id=str(other_id), inbox_ids=[other]), str(other_id)),
    ]
    specs = sorted(
        (
            process_deliveries.spec(
                batch, group=group, job_id=f"webhook-{batch.shop_id}-{batch.inbox_ids[0]}"
            )
            for batch, group in expected
        ),
        key=lambda spec: spec.job_id,
    )
    assert len(written) == len(specs)
    for (queue, job_id, group, task, payload, options), spec in zip(written, specs, strict=True):
        assert (queue, job_id, group, task) == (
            process_deliveries.queue,
            spec.job_id,
            spec.group,
            spec.task,
        )
        assert process_deliveries.decode(payload.encode()) == process_deliveries.decode(
            spec.payload
        )
        stored = msgspec.json.decode(options, type=OutboxOptions)
        assert stored.max_attempts == spec.max_attempts
        assert (stored.delay_s, stored.priority) == (0.0, 0)
        # The trace context and the due time, as enqueue_in_tx gives them (their values differ).
        assert stored.headers.keys() == spec.headers.keys()


async def test_a_failed_batch_is_rolled_back_and_its_neighbours_recorded(runtime: Runtime) -> None:
    """A delivery whose shop is gone (purged between the look-up and the insert) fails its
    batch; the batch's statements are rolled back together, the connection is usable again, and
    the good deliveries are written on their own."""
    shop_id = await create_shop(runtime.pool)
    gone = uuid.uuid4()
    writer = InboxWriter(gather_s=0.2)  # both wait for the same batch
    good = asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery("fk-1")))
    bad = asyncio.ensure_future(writer.record(runtime.pool, gone, _delivery("fk-2")))
    assert await good is not None
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await bad
    assert await writer.record(runtime.pool, shop_id, _delivery("fk-3")) is not None
    await writer.close()
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT webhook_id FROM webhook_inbox ORDER BY id")
        assert [r[0] for r in await cur.fetchall()] == ["fk-1", "fk-3"]
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM outbox WHERE payload->>'shop_id' = %s", (str(gone),)
        )
        assert await cur.fetchone() == (0,)


async def test_deliveries_that_waited_for_a_batch_do_not_gather_again(runtime: Runtime) -> None:
    """The writer gathers only after a quiet spell: deliveries that came while a batch was being
    written have waited a batch already and go in the next one at once. With a gather of 60 s,
    they would sit out the minute."""
    shop_id = await create_shop(runtime.pool)
    writer = InboxWriter(gather_s=60.0, overlap_after_s=3600.0)
    blocker = await runtime.pool.getconn()
    try:
        # The first batch waits on an uncommitted row with its webhook id (ON CONFLICT waits):
        # the deliveries after it arrive while it is being written.
        await bind_tenant(blocker, shop_id)
        await blocker.execute(
            "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, payload) "
            "VALUES (%s, 'q-0', 'products/update', '{}')",
            (shop_id,),
        )
        writer.gather_s = 0.0  # the first batch goes at once, into the blocker
        first = asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery("q-0")))
        await asyncio.sleep(0.2)
        writer.gather_s = 60.0
        later = [
            asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery(f"q-{n}")))
            for n in range(1, 4)
        ]
        await asyncio.sleep(0.2)
    finally:
        await blocker.rollback()
        await runtime.pool.putconn(blocker)
    ids = await asyncio.wait_for(asyncio.gather(first, *later), timeout=20)
    assert None not in ids
    assert len(set(ids)) == 4
    await writer.close()


async def test_a_writer_that_finds_its_batch_taken_goes_back_to_waiting(runtime: Runtime) -> None:
    """Two writers gathering at once: the first to wake takes every waiting delivery and the other
    wakes to an empty queue. It used to take the empty batch (`batch[0]`: IndexError) and leave
    through the error path, which fails whatever is waiting at that moment (500s in a load drill).
    It must go back to waiting, holding its connection like any lingering writer."""
    shop_id = await create_shop(runtime.pool)
    writer = InboxWriter(writers=2, gather_s=0.3, linger_s=30.0)
    first = asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery("taken-1")))
    await asyncio.sleep(0.1)  # the first writer is gathering (until 0.3 s)
    # No writer is free, none is in flight: a second one starts and gathers too (until 0.4 s).
    second = asyncio.ensure_future(writer.record(runtime.pool, shop_id, _delivery("taken-2")))
    ids = await asyncio.gather(first, second)  # both in the first writer's batch, at 0.3 s
    assert None not in ids
    await asyncio.sleep(0.3)  # the second writer has woken to an empty queue
    stats = runtime.pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] == 2  # both still there, lingering
    assert await writer.record(runtime.pool, shop_id, _delivery("taken-3")) is not None
    await writer.close()
