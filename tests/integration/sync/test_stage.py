"""The ingest pipeline on crafted files: orphans, children before parents, bad lines, truncation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.stage import StageOptions, TooManyBadLines, stage_phase
from neanelu.sync import repository as runs
from tests.databases import TestDatabase
from tests.factories import create_shop


def product(n: int, title: str = "T") -> dict[str, object]:
    return {
        "__typename": "Product",
        "id": f"gid://shopify/Product/{n}",
        "handle": f"h{n}",
        "title": title,
        "status": "ACTIVE",
        "tags": ["a", "b"],
        "updatedAt": "2026-01-01T00:00:00Z",
        "createdAt": "2025-01-01T00:00:00Z",
    }


def variant(n: int, parent: int) -> dict[str, object]:
    return {
        "__typename": "ProductVariant",
        "id": f"gid://shopify/ProductVariant/{n}",
        "sku": f"S{n}",
        "price": "9.50",
        "position": 1,
        "inventoryQuantity": 3,
        "selectedOptions": [{"name": "Size", "value": "M"}],
        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{n}"},
        "updatedAt": "2026-01-01T00:00:00Z",
        "__parentId": f"gid://shopify/Product/{parent}",
    }


def jsonl(*objects: object) -> bytes:
    return b"".join(msgspec.json.encode(o) + b"\n" for o in objects)


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    # Tiny chunks: lines are split across chunk boundaries everywhere.
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _setup(pool: AsyncConnectionPool[Conn]) -> tuple[uuid.UUID, uuid.UUID]:
    shop = await create_shop(pool)
    async with tenant_scope(pool, shop) as conn:
        run = await runs.create_run(conn, shop, "full", None)
    return shop, run.id


async def _stage_core(
    pool: AsyncConnectionPool[Conn],
    shop: uuid.UUID,
    run_id: uuid.UUID,
    data: bytes,
    max_bad_share: float = 0.5,
) -> tuple[int, int, int, bool]:
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            await conn.execute(load_sql("ingest/staging.sql"))
            sink = QuarantineSink(pool, shop, run_id, "core")
            async with conn.transaction():
                stats = await stage_phase(
                    conn, Phase.CORE, chunks(data), sink, StageOptions(max_bad_share)
                )
            merged = await merge.merge_catalog(
                conn, shop, run_id, merge.CatalogMerge(metafields_complete=True)
            )
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {merge.CATALOG_STAGING}")
            await conn.set_autocommit(False)
    return stats.rows, stats.bad_lines, merged.orphans, stats.truncated


async def test_children_before_parents_far_apart_and_orphans(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, run_id = await _setup(app_pool)
    data = jsonl(
        variant(11, 1),
        variant(21, 2),  # children first
        product(1),
        *[product(100 + i) for i in range(50)],  # far apart
        product(2),
        variant(12, 1),
        variant(99, 777),  # orphan: product 777 never appears
    )
    rows, bad, orphans, truncated = await _stage_core(app_pool, shop, run_id, data)
    assert (rows, bad, orphans, truncated) == (56, 0, 1, False)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT shopify_id, product_shopify_id FROM variants ORDER BY 1")
        assert await cur.fetchall() == [(11, 1), (12, 1), (21, 2)]
        cur = await conn.execute("SELECT reason, line_no FROM sync_quarantine")
        reason, line_no = (await cur.fetchall())[0]
        assert "orphan" in reason
        assert line_no == 56


async def test_bad_lines_are_quarantined_with_position_and_reason(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, run_id = await _setup(app_pool)
    good = jsonl(product(1), variant(11, 1))
    bad_json = b'{"__typename":"Product","id":"gid://shopify/Product/2",\n'
    bad_id = jsonl({"__typename": "Product", "id": "gid://shopify/Collection/3"})
    unknown = jsonl({"__typename": "Order", "id": "gid://shopify/Order/4"})
    data = good + bad_json + bad_id + unknown + jsonl(product(5))
    rows, bad, _, _ = await _stage_core(app_pool, shop, run_id, data)
    assert (rows, bad) == (3, 3)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT line_no, byte_offset, reason, line FROM sync_quarantine ORDER BY line_no"
        )
        quarantined = await cur.fetchall()
        cur = await conn.execute("SELECT shopify_id FROM products ORDER BY 1")
        assert [r[0] for r in await cur.fetchall()] == [1, 5]
    assert [q[0] for q in quarantined] == [3, 4, 5]
    assert quarantined[0][1] == len(good)
    assert "expected a Product id" in quarantined[1][2]
    assert "Order" in quarantined[2][2] or "invalid" in quarantined[2][2]
    assert quarantined[1][3].startswith('{"__typename":"Product"')


async def test_too_many_bad_lines_fail_the_phase(app_pool: AsyncConnectionPool[Conn]) -> None:
    shop, run_id = await _setup(app_pool)
    data = jsonl(product(1)) + b"not json\n" * 5 + jsonl(product(2))
    with pytest.raises(TooManyBadLines, match="5 bad lines"):
        await _stage_core(app_pool, shop, run_id, data, max_bad_share=0.1)


async def test_cut_off_last_line_is_reported_as_truncated(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, run_id = await _setup(app_pool)
    data = jsonl(product(1), product(2))[:-20]
    rows, bad, _, truncated = await _stage_core(app_pool, shop, run_id, data)
    assert (rows, bad, truncated) == (1, 1, True)


async def test_nul_characters_are_quarantined_not_fatal(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, run_id = await _setup(app_pool)
    data = jsonl(product(1, "a\x00b"), product(2, "literal \\u0000 text"), product(3))
    rows, bad, _, _ = await _stage_core(app_pool, shop, run_id, data)
    assert (rows, bad) == (2, 1)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT shopify_id, title FROM products ORDER BY 1")
        assert await cur.fetchall() == [(2, "literal \\u0000 text"), (3, "T")]
        cur = await conn.execute("SELECT reason FROM sync_quarantine")
        assert "NUL" in (await cur.fetchall())[0][0]


async def test_tags_and_prices_arrive_exactly_and_unstorable_prices_are_quarantined(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    shop, run_id = await _setup(app_pool)
    awkward = ['say "hi"', "back\\slash", "{braces}, commas", "NULL", " spaced ", "ünï"]
    tagged = {**product(1), "tags": awkward}
    plain = {**product(2), "tags": []}
    cheap = {**variant(11, 1), "price": "0.005", "compareAtPrice": "-12"}
    top = {**variant(12, 1), "price": "999999999999999.9999"}
    bad_prices = [
        {**variant(13, 1), "price": "1e5"},
        {**variant(14, 1), "price": "1234567890123456"},  # 16 digits: numeric(20, 4) overflows
        {**variant(15, 1), "price": 9.5},  # Shopify's Decimal is a string
        {**variant(16, 1), "compareAtPrice": "١٢"},  # digits, but not ASCII ones
    ]
    data = jsonl(tagged, plain, cheap, top, *bad_prices)
    rows, bad, _, _ = await _stage_core(app_pool, shop, run_id, data)
    assert (rows, bad) == (4, 4)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT shopify_id, tags FROM products ORDER BY 1")
        assert await cur.fetchall() == [(1, awkward), (2, [])]
        cur = await conn.execute(
            "SELECT shopify_id, price::text, compare_at_price::text FROM variants ORDER BY 1"
        )
        assert await cur.fetchall() == [
            (11, "0.0050", "-12.0000"),
            (12, "999999999999999.9999", None),
        ]
        cur = await conn.execute("SELECT line_no FROM sync_quarantine ORDER BY 1")
        assert [r[0] for r in await cur.fetchall()] == [5, 6, 7, 8]


async def test_a_shop_deleted_under_its_sync_stops_the_merge(
    app_pool: AsyncConnectionPool[Conn], database: TestDatabase
) -> None:
    """Batches lock the shop row once instead of firing the foreign key per row: a shop that is
    gone must still stop them, as the foreign key would."""
    shop, run_id = await _setup(app_pool)
    async with app_pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            await conn.execute(load_sql("ingest/staging.sql"))
            sink = QuarantineSink(app_pool, shop, run_id, "core")
            async with conn.transaction():
                await stage_phase(
                    conn, Phase.CORE, chunks(jsonl(product(1))), sink, StageOptions(0.5)
                )
            with psycopg.connect(database.owner_url, autocommit=True) as owner:
                owner.execute("DELETE FROM shops WHERE id = %s", (shop,))
            with pytest.raises(merge.ShopGone):
                await merge.merge_catalog(
                    conn, shop, run_id, merge.CatalogMerge(metafields_complete=True)
                )
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {merge.CATALOG_STAGING}")
            await conn.set_autocommit(False)


async def test_lines_that_do_not_decode_are_quarantined_not_fatal(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    """Bytes that are not UTF-8 (where msgspec decodes, and where it hands them over raw), a NUL
    escape beside them, nesting too deep to decode: each a bad line; the rest is stored."""
    shop, run_id = await _setup(app_pool)
    bad_title = jsonl(product(2, "MARK")).replace(b"MARK", b"a\xffb")
    bad_options = jsonl(variant(11, 1)).replace(b'"M"', b'"\xfe"')
    nul_and_bytes = jsonl({**product(3, "a\\u0000"), "ignored": "MARK"}).replace(b"MARK", b"\xff")
    deep = jsonl({**product(4), "ignored": "MARK"}).replace(b'"MARK"', b"[" * 5000 + b"]" * 5000)
    data = jsonl(product(1)) + bad_title + bad_options + nul_and_bytes + deep + jsonl(product(5))
    rows, bad, _, _ = await _stage_core(app_pool, shop, run_id, data, max_bad_share=1.0)
    assert (rows, bad) == (2, 4)
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT shopify_id FROM products ORDER BY 1")
        assert [r[0] for r in await cur.fetchall()] == [1, 5]
        cur = await conn.execute(
            "SELECT line_no, byte_offset, reason FROM sync_quarantine ORDER BY line_no"
        )
        quarantined = await cur.fetchall()
    assert [q[0] for q in quarantined] == [2, 3, 4, 5]
    assert quarantined[0][1] == len(jsonl(product(1)))
    assert quarantined[0][2].startswith("invalid UTF-8 at byte")
    assert quarantined[1][2].startswith("invalid UTF-8 at byte")
    assert quarantined[2][2].startswith("invalid UTF-8 at byte")
    assert quarantined[3][2] == "nested too deeply to decode"


async def test_the_settle_splits_the_items_between_sessions_and_misses_none(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    """Variants' quantities from their items' levels, the range of items halved between two
    sessions: the first and last items (the ranges' edges) and one past the middle are settled,
    a variant whose item has no levels keeps its quantity."""
    shop = await create_shop(app_pool)
    items = [101, 150, 151, 152, 200]  # first, around the middle, last
    async with tenant_scope(app_pool, shop) as conn:
        for n, item in enumerate(items, start=1):
            await conn.execute(
                "INSERT INTO variants (shop_id, shopify_id, product_shopify_id,"
                " inventory_quantity, inventory_item_id) VALUES (%s, %s, 1, 0, %s)",
                (shop, n, item),
            )
            if item != 152:
                for location in (1, 2):
                    await conn.execute(
                        "INSERT INTO inventory_levels (shop_id, shopify_id, inventory_item_id,"
                        " location_id, available) VALUES (%s, %s, %s, %s, %s)",
                        (shop, item * 10 + location, item, location, item + location),
                    )
    async with app_pool.connection() as first, app_pool.connection() as second:
        changed = await merge.settle_variant_quantities((first, second), shop)
    assert changed == 4
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT inventory_item_id, inventory_quantity FROM variants ORDER BY 1"
        )
        assert await cur.fetchall() == [
            (101, 205),
            (150, 303),
            (151, 305),
            (152, 0),
            (200, 403),
        ]
