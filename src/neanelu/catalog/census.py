"""Counts and samples over a tenant's stored catalog, for checks that hold it against Shopify's
own figures (`neanelu demo`): how much is stored, a stable sample to change, and whether given
changes have landed. Read-only; the caller's tenant scope selects the shop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from psycopg.rows import class_row, scalar_row

from neanelu.db.pool import Conn


@dataclass(frozen=True, slots=True)
class CatalogCounts:
    """Live rows (deleted products and variants not counted), as the store would count them."""

    products: int
    variants: int
    metafields: int  # product and variant metafields together
    inventory_levels: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    inventory_item_id: int
    location_id: int
    available: int


_COUNTS = """
SELECT
  (SELECT count(*) FROM products WHERE deleted_at IS NULL) AS products,
  (SELECT count(*) FROM variants WHERE deleted_at IS NULL) AS variants,
  (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)
     FROM products WHERE deleted_at IS NULL)
  + (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)
     FROM variants WHERE deleted_at IS NULL) AS metafields,
  (SELECT count(*) FROM inventory_levels) AS inventory_levels
"""


async def counts(conn: Conn) -> CatalogCounts:
    async with conn.cursor(row_factory=class_row(CatalogCounts)) as cur:
        await cur.execute(_COUNTS)
        row = await cur.fetchone()
    assert row is not None  # an aggregate always answers one row
    return row


async def sample_product_ids(conn: Conn, size: int) -> list[int]:
    """`size` products (deleted ones too) chosen by a hash of their id: the same store gives the
    same sample, spread over the whole id range."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(
            "SELECT shopify_id FROM products ORDER BY md5(shopify_id::text) LIMIT %s", (size,)
        )
        return [int(v) for v in await cur.fetchall()]


async def levels_of_products(conn: Conn, product_ids: Sequence[int], size: int) -> list[StockLevel]:
    """Up to `size` inventory levels of those products' variants, chosen by hash (a missing
    quantity reads 0). Through the variants' product index, whatever the planner's statistics."""
    async with conn.cursor(row_factory=class_row(StockLevel)) as cur:
        await cur.execute(
            "SELECT l.inventory_item_id, l.location_id, coalesce(l.available, 0) AS available"
            " FROM variants v JOIN inventory_levels l ON l.inventory_item_id = v.inventory_item_id"
            " WHERE v.product_shopify_id = ANY(%s)"
            # By the pair: a level's own number is its location's, shared by every item there.
            " ORDER BY md5(l.inventory_item_id::text || '/' || l.location_id::text) LIMIT %s",
            (list(product_ids), size),
        )
        return await cur.fetchall()


async def _count(conn: Conn, query: str, params: Sequence[object]) -> int:
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(query, params)
        found = await cur.fetchone()
    return int(found or 0)


async def count_titled(conn: Conn, titles: Mapping[int, str]) -> int:
    """How many of these products (by Shopify id) carry exactly the given title."""
    return await _count(
        conn,
        "SELECT count(*) FROM products p JOIN unnest(%s::bigint[], %s::text[]) AS x(id, title)"
        " ON p.shopify_id = x.id AND p.title = x.title",
        (list(titles), list(titles.values())),
    )


async def count_levels_at(conn: Conn, levels: Sequence[StockLevel]) -> int:
    """How many of these levels are stored with exactly the given quantity."""
    return await _count(
        conn,
        "SELECT count(*) FROM inventory_levels l"
        " JOIN unnest(%s::bigint[], %s::bigint[], %s::int[]) AS x(item, loc, qty)"
        " ON l.inventory_item_id = x.item AND l.location_id = x.loc AND l.available = x.qty",
        (
            [s.inventory_item_id for s in levels],
            [s.location_id for s in levels],
            [s.available for s in levels],
        ),
    )


async def count_deleted(conn: Conn, product_ids: Sequence[int]) -> int:
    """How many of these products are marked deleted."""
    return await _count(
        conn,
        "SELECT count(*) FROM products WHERE shopify_id = ANY(%s) AND deleted_at IS NOT NULL",
        (list(product_ids),),
    )
