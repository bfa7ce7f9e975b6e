"""Staging -> the tenant's tables, in bounded batches, each batch its own transaction in the tenant
scope. Batches walk the staging tables by page ranges (TID range scans), so no batch rereads what
another one covered and none holds locks or memory for the whole shop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from neanelu.db.pool import Conn, connection_tenant_scope
from neanelu.db.sql_files import load_sql, load_statements

# About 60k narrow rows; small enough that a batch commits in well under a second.
PAGES_PER_BATCH = 1500


@dataclass(slots=True)
class MergeStats:
    products: int = 0
    variants: int = 0
    inventory_levels: int = 0
    orphans: int = 0
    marked_deleted: int = 0


BatchCallback = Callable[[str, int], Awaitable[None]]


async def prepare(conn: Conn) -> None:
    """Index staging and fold metafields per owner (outside any tenant: staging is private)."""
    async with conn.transaction():
        await conn.execute(load_sql("ingest/prepare_merge.sql"))


async def _pages(conn: Conn, table: str) -> int:
    cur = await conn.execute(
        "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (table,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _merge_table(
    conn: Conn,
    shop_id: UUID,
    table: str,
    sql_name: str,
    params: dict[str, object],
    on_batch: BatchCallback | None,
    batch_pages: int,
) -> int:
    pages = await _pages(conn, table)
    merged = 0
    sql = load_sql(sql_name)
    for lo in range(0, pages + 1, batch_pages):
        hi = lo + batch_pages
        async with connection_tenant_scope(conn, shop_id):
            cur = await conn.execute(sql, {**params, "lo": f"({lo},0)", "hi": f"({hi},0)"})
            merged += max(cur.rowcount, 0)
        if on_batch is not None:
            await on_batch(sql_name, merged)
    return merged


async def merge_catalog(
    conn: Conn,
    shop_id: UUID,
    run_id: UUID,
    *,
    metafields_complete: bool,
    on_batch: BatchCallback | None = None,
    batch_pages: int = PAGES_PER_BATCH,
) -> MergeStats:
    """Products (with their metafields), then variants joined by __parentId, orphans aside."""
    stats = MergeStats()
    params: dict[str, object] = {"metafields_complete": metafields_complete}
    stats.products = await _merge_table(
        conn, shop_id, "stg_core", "ingest/merge_products.sql", params, on_batch, batch_pages
    )
    stats.variants = await _merge_table(
        conn, shop_id, "stg_core", "ingest/merge_variants.sql", params, on_batch, batch_pages
    )
    async with connection_tenant_scope(conn, shop_id):
        cur = await conn.execute(load_sql("ingest/orphans.sql"), {"run_id": run_id})
        stats.orphans = max(cur.rowcount, 0)
    return stats


async def merge_inventory(
    conn: Conn,
    shop_id: UUID,
    on_batch: BatchCallback | None = None,
    batch_pages: int = PAGES_PER_BATCH,
) -> int:
    return await _merge_table(
        conn, shop_id, "stg_inv", "ingest/merge_inventory.sql", {}, on_batch, batch_pages
    )


async def mark_deleted(conn: Conn, shop_id: UUID, started: datetime) -> int:
    """Only after a complete full sync: rows Shopify no longer has."""
    total = 0
    async with connection_tenant_scope(conn, shop_id):
        for statement in load_statements("ingest/mark_deleted.sql"):
            cur = await conn.execute(statement, {"started": started})
            total += max(cur.rowcount, 0)
    return total
