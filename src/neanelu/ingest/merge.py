"""Staging -> the tenant's tables, in bounded batches, each batch its own transaction in the tenant
scope. Batches walk the staging tables by page ranges (TID range scans), so no batch rereads what
another one covered and none holds locks or memory for the whole shop.

A table that held none of the shop's rows when the merge began (the first full sync) takes plain
inserts, skipping the upsert's per-row conflict probe; a batch that meets a row after all (a
webhook racing the sync, a duplicate line) is redone with the newer-wins upsert.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import psycopg
from psycopg import sql

from neanelu.db.pool import Conn, connection_tenant_scope
from neanelu.db.rows import exists, fetch_scalar, fetch_scalars
from neanelu.db.sql_files import load_sql, load_statements
from neanelu.ingest.rows import METAFIELD_FILES

# Session-private staging of the catalog (products and variants sessions) and of the inventory.
CATALOG_STAGING = "stg_core, stg_meta, stg_meta_agg, stg_protected"
INVENTORY_STAGING = "stg_inv, stg_protected"

# About 60k narrow rows; small enough that a batch commits in well under a second.
PAGES_PER_BATCH = 1500

# Merge batches commit without waiting for the WAL flush. Safe: a crash can only lose batches
# whose run is not yet recorded as completed (that record commits synchronously, which flushes
# all earlier WAL), and a resumed run redoes them idempotently.
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"

# Every inserted row is also kept for the tables' statement trigger (its transition table, which
# checks the rows' shops): a batch of products or variants is 15-25 MB of such rows, and past
# work_mem (4 MB by default, 16 MB on the embedded server) they were written to a temporary file
# and read back, 260 MB of it for a 200k-product sync. Room for a whole batch keeps them in memory.
_BATCH_MEMORY = "SET LOCAL work_mem = '64MB'"


T = TypeVar("T")


async def side_by_side(*work: Awaitable[T]) -> list[T]:
    """Each awaitable on its own session, at once. A failure on one side stops the others: they
    must not go on writing on sessions the caller is about to reset (whose errors would then hide
    this one)."""
    sides = [asyncio.ensure_future(w) for w in work]
    try:
        return await asyncio.gather(*sides)
    except BaseException:
        for side in sides:
            side.cancel()
        await asyncio.gather(*sides, return_exceptions=True)
        raise


class ShopGone(Exception):
    """The shop's row was deleted (uninstall purge) while its sync was merging."""


def _batch_settings(target: Target) -> str:
    """What every batch of `target` sets first (SET LOCAL), as one statement string."""
    return "; ".join(s for s in (_ASYNC_COMMIT, _BATCH_MEMORY, target.settings) if s)


async def _begin_batch(conn: Conn, settings: str, shop_id: UUID) -> None:
    await conn.execute(settings)
    # The batch's rows are checked against their shop once per statement, by the tables' own
    # triggers (which lock the shop too). Locking it here first turns a shop purged under the
    # sync into ShopGone before any work, and keeps it from being purged until the batch commits.
    if not await exists(conn, "SELECT 1 FROM shops WHERE id = %s FOR KEY SHARE", (shop_id,)):
        raise ShopGone(f"shop {shop_id} was deleted during its sync")


@dataclass(slots=True)
class MergeStats:
    products: int = 0
    variants: int = 0
    inventory_levels: int = 0
    orphans: int = 0
    # Metafields whose owner has no row in the core file, quarantined.
    orphan_metafields: int = 0
    marked_deleted: int = 0
    # Products and variants held none of the shop's rows before: nothing can be missing.
    first_load: bool = False


BatchCallback = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """One tenant table fed from one staging table."""

    table: str
    staging: str
    upsert: str
    insert: str
    # Per-batch planner settings (SET LOCAL), see _BY_KEY.
    settings: str = ""


# A batch joins its owners' metafields by key: the planner would otherwise hash the batch and scan
# every owner's folded metafields for it, once per batch (quadratic in the shop's size).
_BY_KEY = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
PRODUCTS = Target(
    "products",
    "stg_core",
    "ingest/merge_products.sql",
    "ingest/insert_products.sql",
    _BY_KEY,
)
VARIANTS = Target(
    "variants",
    "stg_core",
    "ingest/merge_variants.sql",
    "ingest/insert_variants.sql",
    _BY_KEY,
)
LEVELS = Target(
    "inventory_levels", "stg_inv", "ingest/merge_inventory.sql", "ingest/insert_inventory.sql"
)


def batch_ids() -> dict[str, int]:
    """The parts of a batch's row ids (`app_batch_uuidv7`): a UUIDv7 with this millisecond and 42
    random bits drawn once, the row's line number completing each id."""
    millis = time.time_ns() // 1_000_000
    salt = int.from_bytes(os.urandom(6)) & ((1 << 42) - 1)
    hi = (millis << 16) | (0x7 << 12) | (salt & 0xFFF)
    lo = (0b10 << 62) | (salt >> 12)
    # PostgreSQL's bigint is signed: the variant bits make `lo` negative there.
    return {"id_hi": hi, "id_lo": lo - (1 << 64)}


async def prepare(conn: Conn) -> None:
    """Fold metafields per owner (outside any tenant: staging is private to the session)."""
    async with conn.transaction():
        await conn.execute(load_sql("ingest/prepare_merge.sql"))


async def _pages(conn: Conn, table: str) -> int:
    pages = await fetch_scalar(
        conn,
        int,
        "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
        (table,),
    )
    return pages or 0


async def _holds_rows(conn: Conn, shop_id: UUID, table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
    async with connection_tenant_scope(conn, shop_id):
        held = await fetch_scalar(conn, bool, query)
    return bool(held)


async def merge_target(
    conn: Conn,
    shop_id: UUID,
    target: Target,
    params: dict[str, object],
    *,
    on_batch: BatchCallback | None = None,
    batch_pages: int = PAGES_PER_BATCH,
) -> tuple[int, bool]:
    """Every staged row of `target`, batch by batch; returns the rows written and whether the
    table held none of the shop's rows before (a first load)."""
    pages = await _pages(conn, target.staging)
    insert_only = first_load = not await _holds_rows(conn, shop_id, target.table)
    settings = _batch_settings(target)
    merged = 0
    for lo in range(0, pages + 1, batch_pages):
        bounds = {
            **params,
            **batch_ids(),
            "shop_id": shop_id,
            "lo": f"({lo},0)",
            "hi": f"({lo + batch_pages},0)",
        }
        if insert_only:
            try:
                async with connection_tenant_scope(conn, shop_id):
                    await _begin_batch(conn, settings, shop_id)
                    cur = await conn.execute(load_sql(target.insert), bounds)
                merged += max(cur.rowcount, 0)
                if on_batch is not None:
                    await on_batch(target.table, merged)
                continue
            except psycopg.errors.UniqueViolation:
                insert_only = False  # rows exist after all: newer-wins from here on
        async with connection_tenant_scope(conn, shop_id):
            await _begin_batch(conn, settings, shop_id)
            cur = await conn.execute(load_sql(target.upsert), bounds)
        merged += max(cur.rowcount, 0)
        if on_batch is not None:
            await on_batch(target.table, merged)
    return merged, first_load


@dataclass(frozen=True, slots=True)
class CatalogMerge:
    """How the catalog merges (see `merge_catalog`)."""

    metafields_complete: bool
    partial_metafields: Collection[str] = ()
    metafield_files: Sequence[str] = METAFIELD_FILES
    kept_patterns: Sequence[str] = ()
    batch_pages: int = PAGES_PER_BATCH


async def merge_catalog(
    conn: Conn,
    shop_id: UUID,
    run_id: UUID,
    plan: CatalogMerge,
    *,
    on_batch: BatchCallback | None = None,
    variants_conn: Conn | None = None,
) -> MergeStats:
    """Products (with their metafields) and variants joined by __parentId, orphans aside; each
    session folds its own metafields first. With `variants_conn` (staged split by
    `StageOptions.variants_to`) the variants merge there, side by side with the products.

    A complete metafields file replaces each stored object, except for keys matching
    `plan.kept_patterns` (LIKE patterns of owner apps that could not be read), which stay, and
    for owners named by a quarantined metafield line, whose stored object the file's is merged
    over. `plan.partial_metafields` holds the owner kinds ('P', 'V') whose metafield files had a
    quarantined line naming no owner: all of theirs are merged that way. Metafields whose owner
    has no row in the core file are quarantined under `plan.metafield_files` (the files' labels
    by source)."""
    batch_pages, metafield_files = plan.batch_pages, plan.metafield_files
    stats = MergeStats()

    async def params(session: Conn, kind: str) -> dict[str, object]:
        protected = await fetch_scalar(
            session,
            bool,
            "SELECT EXISTS (SELECT 1 FROM stg_protected WHERE kind = %s)",
            (f"M{kind}",),
        )
        return {
            "metafields_complete": plan.metafields_complete and kind not in plan.partial_metafields,
            "protected_owners": bool(protected),
            "kept": list(plan.kept_patterns),
        }

    async def orphan_metafields(session: Conn) -> int:
        async with connection_tenant_scope(session, shop_id):
            cur = await session.execute(
                load_sql("ingest/orphan_metafields.sql"),
                {"run_id": run_id, "files": list(metafield_files)},
            )
        return max(cur.rowcount, 0)

    async def products() -> tuple[int, bool]:
        await prepare(conn)
        merged = await merge_target(
            conn,
            shop_id,
            PRODUCTS,
            await params(conn, "P"),
            on_batch=on_batch,
            batch_pages=batch_pages,
        )
        # The merges leave orphans unused; checking after the products merge overlaps the
        # check with the (longer) variants merge.
        if variants_conn is not None:
            # Awaited before the sum: `stats.x += await ...` reads stats.x before the await, and
            # the other session's count, added meanwhile, would be lost.
            found = await orphan_metafields(conn)
            stats.orphan_metafields += found
        return merged

    async def variants(session: Conn) -> tuple[int, bool]:
        if session is not conn:
            await prepare(session)
        # A variant whose product is neither in the file nor stored is set aside. The file's
        # products are in this session's staging (in full, or as ids when staged split), so
        # the check does not wait for the products merge.
        async with connection_tenant_scope(session, shop_id):
            cur = await session.execute(load_sql("ingest/orphans.sql"), {"run_id": run_id})
            stats.orphans = max(cur.rowcount, 0)
        merged = await merge_target(
            session,
            shop_id,
            VARIANTS,
            await params(session, "V"),
            on_batch=on_batch,
            batch_pages=batch_pages,
        )
        # After the orphan variants were set aside: their metafields are orphans too.
        found = await orphan_metafields(session)
        stats.orphan_metafields += found
        return merged

    if variants_conn is None:
        (stats.products, products_new) = await products()
        (stats.variants, variants_new) = await variants(conn)
    else:
        (stats.products, products_new), (stats.variants, variants_new) = await side_by_side(
            products(), variants(variants_conn)
        )
    stats.first_load = products_new and variants_new
    return stats


async def merge_inventory(
    conn: Conn,
    shop_id: UUID,
    on_batch: BatchCallback | None = None,
    batch_pages: int = PAGES_PER_BATCH,
) -> tuple[int, bool]:
    """Inventory levels; returns the rows written and whether the table held none before."""
    return await merge_target(conn, shop_id, LEVELS, {}, on_batch=on_batch, batch_pages=batch_pages)


# Fewer new rows than this leave the planner's picture of the table about right. Above it the
# queries that follow a merge in the same sync (the settle of variant quantities) must not wait
# for autovacuum: a first sync of 6,000 products (18,000 variants) spent minutes in the settle on
# unanalyzed tables, against 41 s for the whole sync of 2,000. ANALYZE samples at most 30,000 rows
# a table, so it costs little at any size.
ANALYZE_AFTER_ROWS = 1_000


async def refresh_statistics(conn: Conn, tables: tuple[str, ...]) -> bool:
    """ANALYZE after a bulk load: until then the planner believes the tables are as small as
    before the sync and picks plans (nested loops over seq scans) that take minutes. Needs the
    MAINTAIN privilege (PostgreSQL 17+); older servers skip a non-owner's ANALYZE with only a
    warning, so there migration 0010's owner-run function does it."""
    try:
        if conn.info.server_version < 170000:
            await conn.execute("SELECT app_analyze_catalog(%s)", (list(tables),))
        else:
            await conn.execute(
                sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


async def mark_deleted(
    conn: Conn, shop_id: UUID, started: datetime, variants_conn: Conn | None = None
) -> int:
    """Only after a complete full sync: products and variants Shopify no longer has (each on
    the session that holds its staging), except those a quarantined line names."""
    products, variants = load_statements("ingest/mark_deleted.sql")
    marked = 0
    for session, statement in ((conn, products), (variants_conn or conn, variants)):
        async with connection_tenant_scope(session, shop_id):
            cur = await session.execute(statement, {"started": started})
            marked += max(cur.rowcount, 0)
    return marked


@dataclass(slots=True)
class Kept:
    """Stored rows a quarantined line names, kept as stored (by table, their Shopify ids)."""

    rows: dict[str, list[int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {table: len(ids) for table, ids in self.rows.items() if ids}


async def kept_catalog(
    conn: Conn, shop_id: UUID, started: datetime, variants_conn: Conn | None = None
) -> Kept:
    """After the merges of a full sync: stored products and variants missing from the file that
    quarantined lines name (not deleted), and owners whose stored metafields were kept."""
    kept = Kept()
    statements = load_statements("ingest/kept.sql")
    sides = (conn, conn, variants_conn or conn, variants_conn or conn)
    tables = ("products", "product_metafields", "variants", "variant_metafields")
    for session, table, statement in zip(sides, tables, statements, strict=True):
        async with connection_tenant_scope(session, shop_id):
            kept.rows[table] = await fetch_scalars(session, int, statement, {"started": started})
    return kept


async def kept_levels(conn: Conn, shop_id: UUID, started: datetime) -> list[int]:
    """Stored inventory levels missing from the file that quarantined lines name."""
    async with connection_tenant_scope(conn, shop_id):
        return await fetch_scalars(
            conn, int, load_sql("ingest/kept_levels.sql"), {"started": started}
        )


# The settle joins every variant to its item's summed levels. Both tables were written in item
# order, so sorting them is cheap and a merge join then holds nothing; hashed, the levels'
# sums and then the join's table outgrew work_mem and went to temporary files (3.1 -> 1.7-2.0
# CPU-s for 600k variants and 1.2M levels, measured on the backend).
_SETTLE_SETTINGS = (
    "SET LOCAL work_mem = '256MB'; SET LOCAL enable_hashagg = off; SET LOCAL enable_hashjoin = off"
)


async def settle_variant_quantities(sessions: Sequence[Conn], shop_id: UUID) -> int:
    """Variants' quantities from the stored levels, once both merges are done, the shop's range
    of inventory item ids split evenly between `sessions`, side by side; rows changed."""
    conn = sessions[0]
    async with connection_tenant_scope(conn, shop_id):
        cur = await conn.execute(
            "SELECT min(inventory_item_id), max(inventory_item_id) FROM variants"
        )
        first, last = await cur.fetchone() or (None, None)
    if first is None or last is None:
        return 0
    step = (last + 1 - first) // len(sessions) + 1
    statement = load_sql("ingest/variant_quantities.sql")

    async def settle(session: Conn, lo: int) -> int:
        async with connection_tenant_scope(session, shop_id):
            await session.execute(_SETTLE_SETTINGS)
            cur = await session.execute(statement, {"lo": lo, "hi": min(lo + step, last + 1)})
            return max(cur.rowcount, 0)

    changed = await side_by_side(
        *(settle(session, first + i * step) for i, session in enumerate(sessions))
    )
    return sum(changed)


async def delete_missing_levels(conn: Conn, shop_id: UUID, started: datetime) -> int:
    """Only after a complete full sync, on the inventory session."""
    return await _run_statements(conn, shop_id, "ingest/delete_missing_levels.sql", started)


async def _run_statements(conn: Conn, shop_id: UUID, name: str, started: datetime) -> int:
    total = 0
    async with connection_tenant_scope(conn, shop_id):
        for statement in load_statements(name):
            cur = await conn.execute(statement, {"started": started})
            total += max(cur.rowcount, 0)
    return total
