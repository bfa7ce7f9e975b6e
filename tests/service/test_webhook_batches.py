"""A `webhooks.process` job applies its batch of catalog deliveries set-based, in one transaction:
each guarantee of applying them one by one still holds for a batch."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from neanelu.catalog import apply
from neanelu.catalog.product_versions import product_from_rest
from neanelu.config import Settings
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import DeliveryBatch, process_deliveries
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import repository as shops
from neanelu.shops import service
from neanelu.webhooks.tasks import process_batch_now
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.service.support import (
    T0,
    RunJob,
    build_runtime,
    catalog_rows,
    close_runtime,
    product_payload,
)

Delivery = tuple[str, dict[str, Any]]


async def record(
    rt: Runtime,
    shop_id: uuid.UUID,
    deliveries: list[Delivery],
    *,
    stale: frozenset[int] = frozenset(),
) -> list[int]:
    """The deliveries in the inbox as ingress records them, in this order (those at the indexes in
    `stale` triggered an hour before they arrived: Shopify retried them)."""
    now = datetime.now(UTC)
    ids = []
    async with tenant_scope(rt.pool, shop_id) as conn:
        for n, (topic, payload) in enumerate(deliveries):
            cur = await conn.execute(
                "INSERT INTO webhook_inbox (shop_id, webhook_id, topic, triggered_at, payload) "
                "VALUES (%s, %s, %s, %s, %s::jsonb) RETURNING id",
                (
                    shop_id,
                    uuid.uuid4().hex,
                    topic,
                    now - timedelta(hours=1) if n in stale else now,
                    json.dumps(payload),
                ),
            )
            row = await cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
    return ids


async def unprocessed(rt: Runtime, shop_id: uuid.UUID) -> list[int]:
    async with tenant_scope(rt.pool, shop_id) as conn:
        cur = await conn.execute(
            "SELECT id FROM webhook_inbox WHERE processed_at IS NULL ORDER BY id"
        )
        return [r[0] for r in await cur.fetchall()]


def level(item: int, location: int, available: int, at: datetime) -> Delivery:
    return (
        "inventory_levels/update",
        {
            "inventory_item_id": item,
            "location_id": location,
            "available": available,
            "updated_at": at.isoformat(),
            "admin_graphql_api_id": (
                f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"
            ),
        },
    )


def update(
    product_id: int, title: str, at: datetime, variants: list[int] | None = None
) -> Delivery:
    return ("products/update", product_payload(product_id, title, at, variants))


async def test_a_bad_payload_in_the_middle_is_skipped_and_the_rest_applied(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    shop_id = await create_shop(runtime.pool)
    no_version = product_payload(2, "undated", T0)
    del no_version["updated_at"]
    ids = await record(
        runtime,
        shop_id,
        [
            update(1, "first", T0),
            ("products/update", no_version),
            ("products/delete", {"id": "not a number"}),
            ("inventory_levels/update", {"inventory_item_id": 11 + 1000, "location_id": 1}),
            level(11 + 1000, 1, 4, T0),
            update(3, "last", T0),
        ],
    )
    caplog.set_level(logging.WARNING)
    assert await process_batch_now(runtime, shop_id, ids) == len(ids)
    products, deleted, variants, levels = await catalog_rows(runtime, shop_id)
    assert [(p[0], p[1]) for p in products] == [(1, "first"), (3, "last")]
    assert deleted == []
    assert [v[0] for v in variants] == [11, 31]
    assert levels == [(1011, 1, 4)]
    assert await unprocessed(runtime, shop_id) == []
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert all(str(i) in m for i, m in zip(ids[1:4], skipped, strict=True))


async def test_a_value_postgresql_refuses_fails_only_its_own_delivery(runtime: Runtime) -> None:
    """The run's one transaction fails as a whole; its deliveries then go one by one, as when each
    had its own: those before the bad one are written, and the bad one fails its job (retried,
    then dead-lettered, as before)."""
    shop_id = await create_shop(runtime.pool)
    too_large = product_payload(2, "overflow", T0)
    too_large["variants"][0]["price"] = "1e30"  # numeric(20, 4) holds 16 digits before the point
    ids = await record(runtime, shop_id, [update(1, "good", T0), ("products/update", too_large)])
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        await process_batch_now(runtime, shop_id, ids)
    products, *_ = await catalog_rows(runtime, shop_id)
    assert [(p[0], p[1]) for p in products] == [(1, "good")]
    assert await unprocessed(runtime, shop_id) == ids[1:]


VERSIONS = [
    update(7, "v1", T0, [71, 72]),
    update(7, "v2", T0 + timedelta(minutes=1), [71, 73]),
    update(7, "v3", T0 + timedelta(minutes=2), [73, 74]),
    level(1073, 5, 9, T0 + timedelta(minutes=1)),
    level(1073, 5, 3, T0 + timedelta(minutes=3)),
    level(1073, 5, 6, T0 + timedelta(minutes=2)),
]


async def test_one_product_updated_three_times_in_a_batch_ends_at_the_newest_in_any_order(
    runtime: Runtime,
) -> None:
    """Every order of three versions (and three levels of one item and location) in one batch
    leaves the rows that applying them one at a time leaves."""
    one_by_one = await create_shop(runtime.pool)
    for inbox_id in await record(runtime, one_by_one, VERSIONS):
        assert await process_batch_now(runtime, one_by_one, [inbox_id]) == 1
    expected = await catalog_rows(runtime, one_by_one)
    products, _, variants, levels = expected
    assert [(p[0], p[1]) for p in products] == [(7, "v3")]
    assert [v[0] for v in variants] == [73, 74]
    assert levels == [(1073, 5, 3)]
    for order in itertools.permutations(range(3)):
        shop_id = await create_shop(runtime.pool)
        deliveries = [VERSIONS[i] for i in order] + [VERSIONS[3 + i] for i in order]
        ids = await record(runtime, shop_id, deliveries)
        assert await process_batch_now(runtime, shop_id, ids) == len(ids)
        assert await catalog_rows(runtime, shop_id) == expected, order


async def test_equal_versions_in_a_batch_the_later_delivery_wins(runtime: Runtime) -> None:
    """As applied one by one: an equal version wins, so the one that came later stands."""
    shop_id = await create_shop(runtime.pool)
    ids = await record(runtime, shop_id, [update(7, "first", T0), update(7, "second", T0)])
    await process_batch_now(runtime, shop_id, ids)
    products, *_ = await catalog_rows(runtime, shop_id)
    assert [(p[0], p[1]) for p in products] == [(7, "second")]


MIXED = [
    update(7, "v1", T0, [71, 72]),
    update(7, "v2", T0 + timedelta(minutes=1), [71, 73]),
    update(7, "v2", T0 + timedelta(minutes=1), [71, 73]),
    update(8, "other", T0),
    level(1081, 5, 1, T0),
    ("products/delete", {"id": 8}),
    level(1071, 5, 3, T0 + timedelta(minutes=2)),
    level(1071, 5, 9, T0 + timedelta(minutes=1)),
]


async def test_a_mixed_batch_in_any_order_leaves_what_one_by_one_leaves(runtime: Runtime) -> None:
    """One by one in the order they were made; a batch in any order. (One by one, a level
    delivered after its product's deletion would be stored again, for an item Shopify deleted; a
    batch writes levels before deletions, so the level goes whatever the order.)"""
    one_by_one = await create_shop(runtime.pool)
    for inbox_id in await record(runtime, one_by_one, MIXED):
        await process_batch_now(runtime, one_by_one, [inbox_id])
    expected = await catalog_rows(runtime, one_by_one)
    products, deleted, variants, levels = expected
    assert [(p[0], p[1]) for p in products] == [(7, "v2")]
    assert deleted == [(8,)]
    assert [v[0] for v in variants] == [71, 73]
    assert levels == [(1071, 5, 3)]  # product 8's level went with it
    orders = list(itertools.permutations(range(len(MIXED))))
    for order in (orders[-1], orders[len(orders) // 3], orders[4321]):
        shop_id = await create_shop(runtime.pool)
        ids = await record(runtime, shop_id, [MIXED[i] for i in order])
        await process_batch_now(runtime, shop_id, ids)
        assert await catalog_rows(runtime, shop_id) == expected, order


async def synced(rt: Runtime, shop_id: uuid.UUID) -> list[Any]:
    async with tenant_scope(rt.pool, shop_id) as conn:
        cur = await conn.execute(
            "SELECT 'p', shopify_id, synced_at FROM products UNION ALL "
            "SELECT 'v', shopify_id, synced_at FROM variants UNION ALL "
            "SELECT 'l', shopify_id, synced_at FROM inventory_levels ORDER BY 1, 2"
        )
        return list(await cur.fetchall())


async def test_a_batch_run_again_applies_nothing(runtime: Runtime) -> None:
    shop_id = await create_shop(runtime.pool)
    ids = await record(runtime, shop_id, MIXED)
    assert await process_batch_now(runtime, shop_id, ids) == len(ids)
    before = await synced(runtime, shop_id)
    assert await process_batch_now(runtime, shop_id, ids) == 0
    assert await synced(runtime, shop_id) == before
    # Two runs at once (a lease lost mid-run): one writes, the other finds the rows processed.
    again = await record(
        runtime,
        shop_id,
        [update(7, "v9", T0 + timedelta(hours=1)), level(1071, 5, 1, T0 + timedelta(hours=1))],
    )
    done = await asyncio.gather(*(process_batch_now(runtime, shop_id, again) for _ in range(3)))
    assert sorted(done) == [0, 0, len(again)]
    assert await unprocessed(runtime, shop_id) == []


async def wait_for_lock(database: TestDatabase, statement: str) -> None:
    """Until a session of the test database waits for a lock in a statement like this one."""
    async with await psycopg.AsyncConnection.connect(database.app_url, autocommit=True) as watcher:
        for _ in range(1000):
            cur = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                (statement,),
            )
            if (await cur.fetchone() or (0,))[0]:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"nothing waited in {statement!r}")


async def test_an_uninstall_committed_first_leaves_the_batch_unapplied(
    runtime: Runtime, database: TestDatabase
) -> None:
    shop_id = await create_shop(runtime.pool)
    ids = await record(runtime, shop_id, [update(1, "late", T0), level(1011, 1, 5, T0)])
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await shops.mark_uninstalled(conn, shop_id, T0)
        batch = asyncio.create_task(process_batch_now(runtime, shop_id, ids))
        await wait_for_lock(database, "%FOR SHARE%")
    assert await batch == len(ids)
    assert await catalog_rows(runtime, shop_id) == ([], [], [], [])
    assert await unprocessed(runtime, shop_id) == []


async def test_an_uninstall_waits_for_the_batch_that_holds_the_shop(
    runtime: Runtime, database: TestDatabase
) -> None:
    """Never a catalog write after the uninstall: the batch holds the shop row shared from before
    its first write to its commit, so an uninstall that comes meanwhile waits for it."""
    shop_id = await create_shop(runtime.pool)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await apply.apply_product(
            conn, shop_id, product_from_rest(json.dumps(product_payload(1, "stored", T0)))
        )
    ids = await record(runtime, shop_id, [update(1, "written", T0 + timedelta(minutes=1))])
    uninstalled: list[datetime] = []

    async def uninstall() -> None:
        async with tenant_scope(runtime.pool, shop_id) as conn:
            await shops.mark_uninstalled(conn, shop_id, T0)
        uninstalled.append(datetime.now(UTC))

    # Another writer holds product 1, so the batch stops at its catalog locks, shop held.
    async with tenant_scope(runtime.pool, shop_id) as holder:
        await holder.execute("SELECT 1 FROM products WHERE shopify_id = 1 FOR UPDATE")
        batch = asyncio.create_task(process_batch_now(runtime, shop_id, ids))
        await wait_for_lock(database, "%FROM products%FOR UPDATE%")
        gone = asyncio.create_task(uninstall())
        await wait_for_lock(database, "UPDATE shops SET status = 'uninstalled'%")
        assert not uninstalled
    assert await batch == 1
    await gone
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT title, synced_at FROM products WHERE shopify_id = 1")
        row = await cur.fetchone()
    async with global_scope(runtime.pool) as conn:
        shop = await shops.get(conn, shop_id)
    assert row is not None
    assert row[0] == "written"
    assert shop is not None
    assert shop.status == shops.UNINSTALLED
    assert row[1] < uninstalled[0]


ShopifyAnswer = Callable[[int], dict[str, Any] | None]


@pytest.fixture
async def shopify(
    settings: Settings, database: TestDatabase, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[Runtime, uuid.UUID, list[int], dict[int, dict[str, Any] | None]]]:
    """A runtime whose Shopify answers `product(id:)` from a dict (absent: the product is gone),
    an installed shop with a token, and the product ids asked for. Each ask checks that no
    transaction holds the shop's deliveries: Shopify is never asked from inside one."""
    answers: dict[int, dict[str, Any] | None] = {}
    asked: list[int] = []
    holder: list[Runtime] = []
    shop: list[uuid.UUID] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        gid = json.loads(request.content)["variables"]["id"]
        product_id = int(gid.rsplit("/", 1)[1])
        asked.append(product_id)
        async with tenant_scope(holder[0].pool, shop[0]) as conn:
            await conn.execute("SELECT 1 FROM webhook_inbox FOR UPDATE NOWAIT")
        return httpx.Response(200, json={"data": {"product": answers.get(product_id)}})

    rt = await build_runtime(
        settings, database, redis_url, key_prefix, httpx.MockTransport(handler)
    )
    holder.append(rt)
    grant = TokenGrant(
        access_token=SecretStr("shpat_batch"),
        scopes=("read_products",),
        expires_at=None,
        refresh_token=None,
    )
    async with global_scope(rt.pool) as conn:
        shop_id, _ = await service.store_install(conn, rt.vault, "batch-fetch.myshopify.com", grant)
    shop.append(shop_id)
    yield rt, shop_id, asked, answers
    await close_runtime(rt)


def graphql_product(product_id: int, title: str, at: datetime) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Product/{product_id}",
        "title": title,
        "status": "ACTIVE",
        "tags": [],
        "updatedAt": at.isoformat(),
        "variants": {"nodes": []},
    }


async def test_shopify_decides_stale_and_reviving_versions_of_a_batch(
    shopify: tuple[Runtime, uuid.UUID, list[int], dict[int, dict[str, Any] | None]],
) -> None:
    rt, shop_id, asked, answers = shopify
    async with tenant_scope(rt.pool, shop_id) as conn:
        await apply.delete_product(conn, shop_id, 5, T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=2)
    answers[6] = graphql_product(6, "from Shopify", T0 + timedelta(hours=3))
    ids = await record(
        rt,
        shop_id,
        [
            update(5, "would revive", later),  # stored deleted: Shopify has no product 5
            update(6, "retried payload", later),  # stale: Shopify's state instead
            update(6, "retried again", later),  # the same product is asked once
            update(7, "fresh", later),  # neither: not asked
            ("products/delete", {"id": 8}),
            # Newer than its deletion in this batch: asked, gone.
            update(8, "after its delete", datetime.now(UTC) + timedelta(hours=1)),
            update(9, "before its delete", later),  # older than its deletion: loses, not asked
            ("products/delete", {"id": 9}),
        ],
        stale=frozenset({1, 2}),
    )
    assert await process_batch_now(rt, shop_id, ids) == len(ids)
    assert sorted(asked) == [5, 6, 8]
    products, deleted, _, _ = await catalog_rows(rt, shop_id)
    assert [(p[0], p[1]) for p in products] == [(6, "from Shopify"), (7, "fresh")]
    assert deleted == [(5,), (8,), (9,)]


async def test_without_a_token_a_batch_never_revives_but_applies_stale_payloads(
    runtime: Runtime,
) -> None:
    shop_id = await create_shop(runtime.pool)  # no token: Shopify cannot be asked
    async with tenant_scope(runtime.pool, shop_id) as conn:
        await apply.delete_product(conn, shop_id, 5, T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=2)
    ids = await record(
        runtime,
        shop_id,
        [update(5, "would revive", later), update(6, "retried payload", later)],
        stale=frozenset({1}),
    )
    assert await process_batch_now(runtime, shop_id, ids) == 2
    products, deleted, _, _ = await catalog_rows(runtime, shop_id)
    assert [(p[0], p[1]) for p in products] == [(6, "retried payload")]
    assert deleted == [(5,)]


async def test_a_batch_queues_one_embedding_for_what_it_changed(runtime: Runtime) -> None:
    shop_id = await create_shop(runtime.pool)
    ids = await record(runtime, shop_id, MIXED)
    await process_batch_now(runtime, shop_id, ids)
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE task = 'search.embed'")
        assert await cur.fetchone() == (1,)
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT product_shopify_id FROM embedding_pending ORDER BY 1")
        assert await cur.fetchall() == [(7,), (8,)]


async def test_batches_at_once_on_the_same_items_count_every_level_and_never_deadlock(
    runtime: Runtime,
) -> None:
    """The webhook queue runs two jobs of a shop at once: batches with levels of the same items
    at other locations (listed in opposite orders) and a version of their product, run together,
    queue on the rows they share, and each variant ends at the sum of all its levels."""
    shop_id = await create_shop(runtime.pool)
    variants = [11, 12]  # inventory items 1011 and 1012
    first = await record(runtime, shop_id, [update(1, "v0", T0, variants)])
    await process_batch_now(runtime, shop_id, first)
    for n in range(1, 9):
        at = T0 + timedelta(minutes=n)
        east = await record(runtime, shop_id, [level(1011, 1, n, at), level(1012, 1, 2 * n, at)])
        west = await record(
            runtime, shop_id, [level(1012, 2, 3 * n, at), level(1011, 2, 4 * n, at)]
        )
        version = await record(runtime, shop_id, [update(1, f"v{n}", at, variants)])
        done = await asyncio.gather(
            *(process_batch_now(runtime, shop_id, ids) for ids in (east, west, version))
        )
        assert done == [2, 2, 1]
        async with tenant_scope(runtime.pool, shop_id) as conn:
            cur = await conn.execute(
                "SELECT shopify_id, inventory_quantity FROM variants ORDER BY shopify_id"
            )
            assert await cur.fetchall() == [(11, 5 * n), (12, 5 * n)], n


async def test_a_job_takes_its_shops_waiting_catalog_deliveries_up_to_another_topic(
    runtime: Runtime, run_job: RunJob
) -> None:
    # Under a storm over many shops each ingress batch (one job) held a delivery or two per shop:
    # the job for the first delivery applies the shop's other waiting catalog deliveries with it,
    # up to the first waiting delivery of another topic, which keeps its place in the order.
    shop_id = await create_shop(runtime.pool)
    other_shop = await create_shop(runtime.pool)
    at = T0 + timedelta(minutes=5)
    first, second, third, scopes, after = await record(
        runtime,
        shop_id,
        [
            update(7, "first", at),
            update(8, "second", at),
            level(1071, 5, 3, at),
            ("app/scopes_update", {"current": ["read_products", "read_inventory"]}),
            update(9, "after the scopes update", at),
        ],
    )
    elsewhere = await record(runtime, other_shop, [update(7, "other shop", at)])
    batch = DeliveryBatch(shop_id=str(shop_id), inbox_ids=[first])
    await run_job(runtime, process_deliveries, batch)
    assert await unprocessed(runtime, shop_id) == [scopes, after]
    assert await unprocessed(runtime, other_shop) == elsewhere  # never another shop's
    async with tenant_scope(runtime.pool, shop_id) as conn:
        cur = await conn.execute("SELECT shopify_id, title FROM products ORDER BY shopify_id")
        assert await cur.fetchall() == [(7, "first"), (8, "second")]
    # The jobs that named the taken deliveries find nothing left to do.
    assert await process_batch_now(runtime, shop_id, [second, third], waiting=500) == 0
    await run_job(
        runtime, process_deliveries, DeliveryBatch(shop_id=str(shop_id), inbox_ids=[scopes])
    )
    assert await unprocessed(runtime, shop_id) == [after]  # it came after the scopes update
    await run_job(
        runtime, process_deliveries, DeliveryBatch(shop_id=str(shop_id), inbox_ids=[after])
    )
    assert await unprocessed(runtime, shop_id) == []
