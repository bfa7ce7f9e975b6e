"""The newer-wins rule (docs/newer-wins.md): one table of cases, each run through both write paths.

Every case starts from the same stored row (or none) and one incoming version of it, and names
the row that must be stored afterwards. The bulk path stages a one-object sync file by COPY and
runs the real merge (ingest/merge.py) under the application role in the shop's tenant scope; the
webhook path decodes a REST payload with the real decoder and applies it with the real apply
function (catalog/apply.py), as webhooks/tasks.py does. Both must end at the expected row.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.catalog import apply
from neanelu.catalog.product_versions import PayloadError, level_from_rest, product_from_rest
from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.stage import StageOptions, stage_phase
from neanelu.sync import repository as runs
from tests.factories import create_shop

T = datetime(2026, 3, 1, 12, tzinfo=UTC)
EARLIER, LATER = T - timedelta(minutes=1), T + timedelta(minutes=1)
SWEPT = T + timedelta(hours=1)  # a full sync's deletion: later than the row's last version
FIRST, SECOND = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)

PRODUCT, VARIANT, ITEM, LOCATION, LEVEL = 1, 11, 111, 1, 5
# A variant's version applies through its product's: the parent is always older when stored
# and newer in the incoming payload or file, so that only the variant's own times decide.
PARENT_STORED, PARENT_INCOMING = T - timedelta(days=1), T + timedelta(days=1)
# What the stored and the incoming version carry (title, sku, or available for a level).
STORED, INCOMING = "stored", "incoming"
AVAILABLE = {STORED: 1, INCOMING: 2}

Kind = Literal["product", "variant", "level"]
Path = Literal["bulk", "webhook"]


@dataclass(frozen=True, slots=True)
class Stored:
    updated: datetime | None
    deleted: datetime | None = None
    created: datetime | None = FIRST


@dataclass(frozen=True, slots=True)
class Row:
    """A row as read back: its content, version, whether deleted, its created_at."""

    value: str
    updated: datetime | None
    deleted: bool = False
    created: datetime | None = FIRST


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    kinds: tuple[Kind, ...]
    stored: Stored | None  # None: no row (never seen, or a level deleted)
    incoming: datetime | None  # the incoming version's updated_at
    expect: Row
    created: datetime | None = SECOND  # the incoming version's created_at


CATALOG: tuple[Kind, ...] = ("product", "variant")
ALL: tuple[Kind, ...] = ("product", "variant", "level")

CASES = [
    Case("older loses", ALL, Stored(T), EARLIER, Row(STORED, T)),
    Case("newer wins, created_at kept", ALL, Stored(T), LATER, Row(INCOMING, LATER)),
    Case("equal timestamps: the incoming content wins", ALL, Stored(T), T, Row(INCOMING, T)),
    Case("an undated version loses to a dated row", ALL, Stored(T), None, Row(STORED, T)),
    Case("an undated row takes any version", ALL, Stored(None), EARLIER, Row(INCOMING, EARLIER)),
    # Only a variant can arrive undated through both paths: the product and level decoders
    # refuse a payload without updated_at (the task records it as handled, unapplied).
    Case("undated over undated: the incoming wins", ("variant",), Stored(None), None,
         Row(INCOMING, None)),
    Case("no row (never seen, or a level deleted: no tombstone): the version is stored", ALL, None, EARLIER,
         Row(INCOMING, EARLIER, created=SECOND)),
    Case("deleted at T, revived by a newer version", CATALOG, Stored(T, deleted=T), LATER,
         Row(INCOMING, LATER)),
    Case("deleted at T, a version at T stays deleted", CATALOG, Stored(T, deleted=T), T,
         Row(STORED, T, deleted=True)),
    Case("swept after its last version, a version before the sweep stays deleted", CATALOG,
         Stored(T, deleted=SWEPT), LATER, Row(STORED, T, deleted=True)),
    Case("deleted undated row, an older version stays deleted", CATALOG,
         Stored(None, deleted=T), EARLIER, Row(STORED, None, deleted=True)),
    Case("deleted undated row, an undated version stays deleted", CATALOG,
         Stored(None, deleted=T), None, Row(STORED, None, deleted=True)),
    Case("created_at missing (a tombstone): the first sighting with one fills it", CATALOG,
         Stored(T, created=None), LATER, Row(INCOMING, LATER, created=SECOND)),
    Case("created_at kept when the winner has none", CATALOG, Stored(T), LATER,
         Row(INCOMING, LATER), created=None),
]  # fmt: skip

TABLE = [(case, kind) for case in CASES for kind in case.kinds]


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


async def store(conn: Conn, shop: uuid.UUID, kind: Kind, row: Stored | None) -> None:
    """The stored state a case starts from, written as the application role."""
    if kind == "variant":
        await conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, shopify_updated_at)"
            " VALUES (%s, %s, 'parent', %s)",
            (shop, PRODUCT, PARENT_STORED),
        )
    if row is None:
        return
    if kind == "product":
        await conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, shopify_created_at,"
            " shopify_updated_at, deleted_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (shop, PRODUCT, STORED, row.created, row.updated, row.deleted),
        )
    elif kind == "variant":
        await conn.execute(
            "INSERT INTO variants (shop_id, shopify_id, product_shopify_id, sku, inventory_item_id,"
            " shopify_created_at, shopify_updated_at, deleted_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (shop, VARIANT, PRODUCT, STORED, ITEM, row.created, row.updated, row.deleted),
        )
    else:
        await conn.execute(
            "INSERT INTO inventory_levels (shop_id, shopify_id, inventory_item_id, location_id,"
            " available, shopify_updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (shop, LEVEL, ITEM, LOCATION, AVAILABLE[STORED], row.updated),
        )


async def read(conn: Conn, kind: Kind) -> Row | None:
    if kind == "level":
        cur = await conn.execute(
            "SELECT available, shopify_updated_at FROM inventory_levels"
            " WHERE inventory_item_id = %s AND location_id = %s",
            (ITEM, LOCATION),
        )
        level = await cur.fetchone()
        if level is None:
            return None
        value = {n: label for label, n in AVAILABLE.items()}[level[0]]
        return Row(value, level[1], created=None)
    statement = {
        "product": "SELECT title, shopify_updated_at, deleted_at IS NOT NULL, shopify_created_at"
        " FROM products WHERE shopify_id = %s",
        "variant": "SELECT sku, shopify_updated_at, deleted_at IS NOT NULL, shopify_created_at"
        " FROM variants WHERE shopify_id = %s",
    }[kind]
    cur = await conn.execute(statement, (PRODUCT if kind == "product" else VARIANT,))
    got = await cur.fetchone()
    return None if got is None else Row(got[0], got[1], got[2], got[3])


def bulk_lines(kind: Kind, case: Case) -> tuple[Phase, list[dict[str, Any]]]:
    """The incoming version as the lines of a bulk operation's JSONL file."""
    created = iso(case.created)
    if kind == "level":
        return Phase.INVENTORY, [
            {"__typename": "InventoryItem", "id": gid("InventoryItem", ITEM)},
            {
                "__typename": "InventoryLevel",
                "id": f"{gid('InventoryLevel', LEVEL)}?inventory_item_id={ITEM}",
                "location": {"id": gid("Location", LOCATION)},
                "quantities": [{"name": "available", "quantity": AVAILABLE[INCOMING]}],
                "updatedAt": iso(case.incoming),
                "__parentId": gid("InventoryItem", ITEM),
            },
        ]
    if kind == "product":
        return Phase.CORE, [
            {
                "__typename": "Product",
                "id": gid("Product", PRODUCT),
                "title": INCOMING,
                "createdAt": created,
                "updatedAt": iso(case.incoming),
            }
        ]
    return Phase.CORE, [
        {
            "__typename": "Product",
            "id": gid("Product", PRODUCT),
            "title": "parent",
            "updatedAt": iso(PARENT_INCOMING),
        },
        {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", VARIANT),
            "sku": INCOMING,
            "inventoryItem": {"id": gid("InventoryItem", ITEM)},
            "createdAt": created,
            "updatedAt": iso(case.incoming),
            "__parentId": gid("Product", PRODUCT),
        },
    ]


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def through_bulk(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID, kind: Kind, case: Case
) -> None:
    """A full sync's staging and merge of a file holding only the incoming version (no sweep:
    the file is not the shop's whole catalog)."""
    phase, lines = bulk_lines(kind, case)
    async with tenant_scope(pool, shop) as conn:
        run = await runs.create_run(conn, shop, "full", None)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        staging = "ingest/staging_inventory.sql" if kind == "level" else "ingest/staging.sql"
        await conn.execute(load_sql(staging))
        try:
            sink = QuarantineSink(pool, shop, run.id, phase.value)
            body = b"\n".join(msgspec.json.encode(line) for line in lines)
            async with conn.transaction():
                stats = await stage_phase(
                    conn, phase, one_chunk(body), sink, StageOptions(max_bad_share=0.0)
                )
            assert stats.bad_lines == 0
            if kind == "level":
                await merge.merge_inventory(conn, shop)
            else:
                await merge.merge_catalog(
                    conn, shop, run.id, merge.CatalogMerge(metafields_complete=True)
                )
        finally:
            tables = merge.INVENTORY_STAGING if kind == "level" else merge.CATALOG_STAGING
            await conn.execute(f"DROP TABLE IF EXISTS {tables}")
            await conn.set_autocommit(False)


def webhook_payload(kind: Kind, case: Case) -> bytes:
    """The incoming version as a webhook delivery's REST payload."""
    created = iso(case.created)
    if kind == "level":
        level = {
            "inventory_item_id": ITEM,
            "location_id": LOCATION,
            "available": AVAILABLE[INCOMING],
            "updated_at": iso(case.incoming),
            "admin_graphql_api_id": f"{gid('InventoryLevel', LEVEL)}?inventory_item_id={ITEM}",
        }
        return msgspec.json.encode(level)
    if kind == "product":
        product = {
            "id": PRODUCT,
            "title": INCOMING,
            "created_at": created,
            "updated_at": iso(case.incoming),
        }
        return msgspec.json.encode(product)
    variant = {
        "id": VARIANT,
        "sku": INCOMING,
        "inventory_item_id": ITEM,
        "created_at": created,
        "updated_at": iso(case.incoming),
    }
    parent = {"id": PRODUCT, "title": "parent", "updated_at": iso(PARENT_INCOMING)}
    return msgspec.json.encode({**parent, "variants": [variant]})


async def through_webhook(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID, kind: Kind, case: Case
) -> None:
    raw = webhook_payload(kind, case)
    async with tenant_scope(pool, shop) as conn:
        try:
            if kind == "level":
                # No fallback time: the case is a payload with no time at all.
                await apply.apply_inventory_level(conn, shop, level_from_rest(raw, None))
            else:
                await apply.apply_product(conn, shop, product_from_rest(raw))
        except PayloadError:
            # What webhooks/tasks.py does with a payload it cannot apply: nothing is written.
            assert case.incoming is None


@pytest.mark.parametrize("path", ["bulk", "webhook"])
async def test_every_case_ends_at_the_rows_the_rule_names(
    app_pool: AsyncConnectionPool[Conn], path: Path
) -> None:
    """The whole table through one path, each case in a shop of its own (one database for all:
    a fresh one per case would cost more than the cases)."""
    expected: dict[str, Row | None] = {}
    got: dict[str, Row | None] = {}
    for case, kind in TABLE:
        label = f"{kind}: {case.name}"
        shop = await create_shop(app_pool)
        async with tenant_scope(app_pool, shop) as conn:
            await store(conn, shop, kind, case.stored)
        if path == "bulk":
            await through_bulk(app_pool, shop, kind, case)
        else:
            await through_webhook(app_pool, shop, kind, case)
        async with tenant_scope(app_pool, shop) as conn:
            got[label] = await read(conn, kind)
        expect = case.expect
        expected[label] = (
            Row(expect.value, expect.updated, created=None) if kind == "level" else expect
        )
    assert got == expected
