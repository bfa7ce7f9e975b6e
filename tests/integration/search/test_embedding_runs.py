"""Embedding runs on the real server: unchanged text is skipped, a changed title is re-embedded
and found, a deleted product leaves the vector index, and two shops never see each other."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.handles import queue_product_embedding, queue_shop_embedding
from neanelu.queue import AI_BATCH
from neanelu.search import store
from neanelu.search.local.model import LocalProvider
from neanelu.semantic.pending import claim_pending
from neanelu.semantic.search import SearchFilter, embed_query, hybrid_search
from neanelu.semantic.service import embed_products
from tests.factories import create_shop
from tests.integration.search.catalog import CATALOG, insert_catalog


async def _vectors(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID
) -> dict[int, tuple[bytes, str]]:
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute(
            "SELECT product_shopify_id, content_hash, embedded_at::text FROM embeddings"
        )
        return {r[0]: (bytes(r[1]), r[2]) for r in await cur.fetchall()}


async def test_unchanged_skipped_changed_reembedded_deleted_removed(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        ids = await insert_catalog(conn, shop)
    first = await embed_products(app_pool, local_provider, shop, source="manual")
    assert (first.queued, first.embedded, first.skipped, first.removed) == (6, 6, 0, 0)
    assert first.tokens > 6 * 5
    before = await _vectors(app_pool, shop)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT DISTINCT model, dimension FROM embeddings")
        assert await cur.fetchall() == [(local_provider.model, 384)]

    again = await embed_products(app_pool, local_provider, shop, source="sweep")
    assert (again.embedded, again.skipped) == (0, 6)
    assert await _vectors(app_pool, shop) == before, "unchanged text is not re-embedded"

    async with tenant_scope(app_pool, shop) as conn:
        await conn.execute(
            "UPDATE products SET title = 'Porcelain teapot with bamboo handle' WHERE shopify_id = %s",
            (ids[3],),
        )
    changed = await embed_products(
        app_pool, local_provider, shop, source="webhook", product_ids=[ids[3]]
    )
    assert (changed.queued, changed.embedded, changed.skipped) == (1, 1, 0)
    after = await _vectors(app_pool, shop)
    assert after[ids[3]] != before[ids[3]]
    assert {k: v for k, v in after.items() if k != ids[3]} == {
        k: v for k, v in before.items() if k != ids[3]
    }
    teapot = await embed_query(local_provider, "teapot")
    async with tenant_scope(app_pool, shop) as conn:
        found = await hybrid_search(conn, teapot, shop, SearchFilter(), limit=3)
    assert found.hits[0].product_id == ids[3]
    assert found.hits[0].matched == ["text", "vector"]
    assert found.hits[0].text is not None
    assert "teapot" in found.hits[0].text.terms
    assert found.hits[0].text.fields == ("title",)

    async with tenant_scope(app_pool, shop) as conn:
        await conn.execute(
            "UPDATE products SET deleted_at = now() WHERE shopify_id = %s", (ids[0],)
        )
    gone = await embed_products(
        app_pool, local_provider, shop, source="webhook", product_ids=[ids[0], 999_999]
    )
    assert gone.removed == 2  # the deleted product, and one the catalog never had
    assert ids[0] not in await _vectors(app_pool, shop)
    boots = await embed_query(local_provider, "hiking boots")
    async with tenant_scope(app_pool, shop) as conn:
        hits = await hybrid_search(conn, boots, shop, SearchFilter())
        assert ids[0] not in [h.product_id for h in hits.hits]
        # Its text document stays, flagged: only a search that asks for deleted products sees it.
        with_deleted = await hybrid_search(conn, boots, shop, SearchFilter(include_deleted=True))
        top = with_deleted.hits[0]
        assert top.product_id == ids[0]
        assert top.matched == ["text"]
        assert top.product["deleted"]
        cur = await conn.execute(
            "SELECT source, status, queued, embedded, skipped, removed FROM embedding_runs "
            "ORDER BY started_at"
        )
        assert await cur.fetchall() == [
            ("manual", "completed", 6, 6, 0, 0),
            ("sweep", "completed", 6, 0, 6, 0),
            ("webhook", "completed", 1, 1, 0, 0),
            ("webhook", "completed", 1, 0, 0, 2),
        ]


async def test_filters_and_romanian_text_configuration(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        ids = await insert_catalog(conn, shop)
        await conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, status, tags, description) "
            "VALUES (%s, 5000, 'Cizme de iarnă din piele', 'DRAFT', '{}', 'Cizmele noastre')",
            (shop,),
        )
        await store.set_text_config(conn, shop, "romanian")
    await embed_products(app_pool, local_provider, shop, source="manual")
    async with tenant_scope(app_pool, shop) as conn:
        # Romanian stemming: 'cizmele' and 'cizme' meet at one stem; 'simple' would miss it.
        ro = await hybrid_search(
            conn, await embed_query(local_provider, "cizmele"), shop, SearchFilter()
        )
        assert ro.text_config == "romanian"
        assert ro.hits[0].product_id == 5000
        assert ro.hits[0].text is not None
        drafts = await hybrid_search(
            conn, await embed_query(local_provider, "boots"), shop, SearchFilter(status="DRAFT")
        )
        assert [h.product_id for h in drafts.hits] == [5000]
        kitchen = await hybrid_search(
            conn, await embed_query(local_provider, "kitchen"), shop, SearchFilter(tag="kitchen")
        )
        assert {h.product_id for h in kitchen.hits} == {ids[1], ids[3]}
        cheap = await hybrid_search(
            conn,
            await embed_query(local_provider, "something to buy"),
            shop,
            SearchFilter(price_min=Decimal("50"), price_max=Decimal("200")),
        )
        assert {h.product_id for h in cheap.hits} == {ids[1], ids[2], ids[4]}
        vendor = await hybrid_search(
            conn, await embed_query(local_provider, "dress"), shop, SearchFilter(vendor="Vara")
        )
        assert [h.product_id for h in vendor.hits] == [ids[2]]
        assert vendor.hits[0].product["min_price"] == Decimal(CATALOG[2][5])
    with pytest.raises(psycopg.errors.UndefinedObject):
        async with tenant_scope(app_pool, shop) as conn:
            await store.set_text_config(conn, shop, "klingon")


async def test_two_shops_with_the_same_catalog_never_see_each_other(
    app_pool: AsyncConnectionPool[Conn], local_provider: LocalProvider
) -> None:
    shop_a, shop_b = await create_shop(app_pool), await create_shop(app_pool)
    async with tenant_scope(app_pool, shop_a) as conn:
        ids_a = await insert_catalog(conn, shop_a, base=1000)
    async with tenant_scope(app_pool, shop_b) as conn:
        ids_b = await insert_catalog(conn, shop_b, base=2000)
    for shop in (shop_a, shop_b):
        await embed_products(app_pool, local_provider, shop, source="manual")
    for shop, own in ((shop_a, set(ids_a)), (shop_b, set(ids_b))):
        async with tenant_scope(app_pool, shop) as conn:
            for query in ("boots", "a warm coat for winter", "kitchen knife", "lamp"):
                found = await hybrid_search(
                    conn, await embed_query(local_provider, query), shop, SearchFilter()
                )
                assert found.hits, query
                assert {h.product_id for h in found.hits} <= own, query
        # Even asking for the other shop's id by name finds nothing under this tenant.
        other = shop_b if shop == shop_a else shop_a
        async with tenant_scope(app_pool, shop) as conn:
            leaked = await hybrid_search(
                conn, await embed_query(local_provider, "boots"), other, SearchFilter()
            )
            assert leaked.hits == []


async def test_jobs_are_queued_with_the_callers_transaction(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await queue_product_embedding(conn, shop, [3, 1, 3])
        await queue_shop_embedding(conn, shop, source="full_sync", job_id="embed-sync-x")
    with pytest.raises(RuntimeError):
        async with tenant_scope(app_pool, shop) as conn:
            await queue_product_embedding(conn, shop, [9])
            raise RuntimeError("rolled back")
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT queue, group_id, task, payload FROM outbox WHERE group_id = %s ORDER BY id",
            (str(shop),),
        )
        rows = await cur.fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(AI_BATCH, str(shop), "search.embed")] * 2
    # A webhook marks its products and queues the shop's job for the window, not one per product.
    assert rows[0][3] == {"shop_id": str(shop), "source": "webhook", "pending": True}
    assert rows[1][3] == {"shop_id": str(shop), "source": "full_sync"}
    assert await _marked(app_pool, shop) == [1, 3]  # the rolled-back 9 is not


async def _marked(pool: AsyncConnectionPool[Conn], shop: uuid.UUID) -> list[int]:
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute(
            "SELECT product_shopify_id FROM embedding_pending ORDER BY product_shopify_id"
        )
        return [r[0] for r in await cur.fetchall()]


async def _outbox(pool: AsyncConnectionPool[Conn], shop: uuid.UUID) -> list[tuple[str, Any]]:
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute(
            "SELECT job_id, payload FROM outbox WHERE group_id = %s ORDER BY id", (str(shop),)
        )
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_a_storm_of_product_webhooks_becomes_one_embedding_job_per_window(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, other = await create_shop(app_pool), await create_shop(app_pool)
    for ids in ([5], [2, 5], [7]):  # three deliveries, one product twice
        async with tenant_scope(app_pool, shop) as conn:
            await queue_product_embedding(conn, shop, ids)
    async with tenant_scope(app_pool, other) as conn:
        await queue_product_embedding(conn, other, [5])
    window_jobs = {job_id for job_id, _ in await _outbox(app_pool, shop)}
    # One job id per shop and window (the queue keeps the first of equal ids); at most two if the
    # deliveries straddled a window's end.
    assert 1 <= len(window_jobs) <= 2
    assert all(j.startswith(f"embed-pending-{shop}-") for j in window_jobs)

    assert await claim_pending(app_pool, shop) == 3
    # The marks became one job for the three products, in the claim's transaction...
    claimed = [p for _, p in await _outbox(app_pool, shop) if p.get("product_ids")]
    assert claimed == [{"shop_id": str(shop), "source": "webhook", "product_ids": [2, 5, 7]}]
    assert await _marked(app_pool, shop) == []
    # ... the other shop's mark is its own, and a change after the claim waits for the next job.
    assert await _marked(app_pool, other) == [5]
    async with tenant_scope(app_pool, shop) as conn:
        await queue_product_embedding(conn, shop, [2])
    assert await _marked(app_pool, shop) == [2]
    assert await claim_pending(app_pool, shop) == 1
    assert await claim_pending(app_pool, shop) == 0
