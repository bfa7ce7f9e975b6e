"""Incremental writes: one product version, one deletion, one inventory level, newer wins.

Every statement compares Shopify's `updated_at` with the stored one, so applying the same
delivery twice, or two deliveries in either order, leaves the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from neanelu.catalog.product_versions import InventoryLevelRecord, ProductRecord
from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalar
from neanelu.db.sql_files import load_sql


def _sql(name: str) -> str:
    return load_sql(name, "neanelu.catalog")


@dataclass(frozen=True, slots=True)
class _Applied:
    """What `upsert_product.sql` answers when the version was written."""

    live: bool


@dataclass(frozen=True, slots=True)
class _Retired:
    inventory_item_id: int | None


async def apply_product(conn: Conn, shop_id: UUID, product: ProductRecord) -> bool:
    """Write the product version if it is not older than the stored one; True when applied."""
    row = await fetch_one(
        conn,
        _Applied,
        _sql("upsert_product.sql"),
        {
            "shop_id": shop_id,
            "shopify_id": product.shopify_id,
            "handle": product.handle,
            "title": product.title,
            "vendor": product.vendor,
            "product_type": product.product_type,
            "status": product.status,
            "tags": product.tags,
            "description": product.description,
            "created_at": product.shopify_created_at,
            "updated_at": product.shopify_updated_at,
        },
    )
    if row is None:
        return False  # a newer version (or a later deletion) is already stored
    if not row.live:
        return True  # still deleted: its variants stay retired
    if product.variants:
        async with conn.cursor() as vcur:
            await vcur.executemany(
                _sql("upsert_variant.sql"),
                [
                    {
                        "shop_id": shop_id,
                        "shopify_id": v.shopify_id,
                        "product_shopify_id": product.shopify_id,
                        "sku": v.sku,
                        "title": v.title,
                        "price": v.price,
                        "compare_at_price": v.compare_at_price,
                        "barcode": v.barcode,
                        "position": v.position,
                        "inventory_quantity": v.inventory_quantity,
                        "inventory_item_id": v.inventory_item_id,
                        "selected_options": msgspec.json.encode(v.selected_options).decode(),
                        "created_at": v.shopify_created_at,
                        "updated_at": v.shopify_updated_at,
                    }
                    for v in product.variants
                ],
            )
    await _retire_variants(
        conn,
        shop_id,
        product.shopify_id,
        [v.shopify_id for v in product.variants],
        product.shopify_updated_at,
    )
    await conn.execute(
        _sql("product_variant_quantities.sql"),
        {"shop_id": shop_id, "product_shopify_id": product.shopify_id},
    )
    return True


async def delete_product(conn: Conn, shop_id: UUID, shopify_id: int, at: datetime) -> None:
    """Mark the product (and its variants) deleted as of `at`."""
    await conn.execute(
        _sql("delete_product.sql"), {"shop_id": shop_id, "shopify_id": shopify_id, "at": at}
    )
    await _retire_variants(conn, shop_id, shopify_id, [], at)


async def _retire_variants(
    conn: Conn, shop_id: UUID, product_id: int, keep: list[int], at: datetime
) -> None:
    """Mark the product's variants not in `keep` deleted, and drop their inventory levels."""
    retired = await fetch_all(
        conn,
        _Retired,
        _sql("retire_variants.sql"),
        {"shop_id": shop_id, "product_shopify_id": product_id, "keep": keep, "at": at},
    )
    items = [r.inventory_item_id for r in retired if r.inventory_item_id is not None]
    if items:
        await conn.execute(_sql("drop_retired_levels.sql"), {"shop_id": shop_id, "items": items})


async def apply_inventory_level(conn: Conn, shop_id: UUID, level: InventoryLevelRecord) -> None:
    await conn.execute(
        _sql("lock_item_variants.sql"),
        {"shop_id": shop_id, "inventory_item_id": level.inventory_item_id},
    )
    await conn.execute(
        _sql("upsert_inventory_level.sql"),
        {
            "shop_id": shop_id,
            "shopify_id": level.shopify_id,
            "inventory_item_id": level.inventory_item_id,
            "location_id": level.location_id,
            "available": level.available,
            "updated_at": level.shopify_updated_at,
        },
    )
    await conn.execute(
        _sql("variant_quantity.sql"),
        {"shop_id": shop_id, "inventory_item_id": level.inventory_item_id},
    )


async def is_deleted(conn: Conn, shopify_id: int) -> bool:
    """Whether the stored product (tenant-scoped) is marked deleted."""
    deleted = await fetch_scalar(
        conn,
        bool,
        "SELECT deleted_at IS NOT NULL FROM products WHERE shopify_id = %s",
        (shopify_id,),
    )
    return bool(deleted)
