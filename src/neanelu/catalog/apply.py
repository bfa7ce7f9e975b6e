"""Incremental writes: product versions, deletions and inventory levels, newer wins.

Every statement compares Shopify's `updated_at` with the stored one, so applying the same
delivery twice, or two deliveries in either order, leaves the same rows. A batch of changes is
written set-based, a statement per kind of row whatever its size: one `webhooks.process` job
applies its deliveries in one transaction. What applying a batch's changes one by one, in turn,
would leave is what the batch leaves: of several versions of one row the newest is written (the
later one on a tie, as the rule lets an equal version win), and a product both updated and deleted
ends deleted (a deletion always applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import msgspec

from neanelu.catalog.product_versions import InventoryLevelRecord, ProductRecord, VariantRecord
from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_scalars
from neanelu.db.sql_files import load_sql


def _sql(name: str) -> str:
    return load_sql(name, "neanelu.catalog")


@dataclass(frozen=True, slots=True)
class Deletion:
    """A `products/delete`: the product, as of the delivery's trigger time."""

    shopify_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CatalogChanges:
    """What a batch of deliveries writes, each list in the order the deliveries came."""

    products: Sequence[ProductRecord] = field(default_factory=tuple)
    deletions: Sequence[Deletion] = field(default_factory=tuple)
    levels: Sequence[InventoryLevelRecord] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Applied:
    """The products whose stored row changed (to embed again), and which versions won."""

    products: list[int]
    versions: list[int]


@dataclass(frozen=True, slots=True)
class _Upserted:
    """What `upsert_products.sql` answers for each version it wrote."""

    shopify_id: int
    live: bool


_encoder = msgspec.json.Encoder(decimal_format="string")


def _json(rows: list[dict[str, object]]) -> str:
    return _encoder.encode(rows).decode()


def _newest_products(products: Sequence[ProductRecord]) -> list[ProductRecord]:
    """One version per product, the newest; the later of equal ones (`>=`, as the rule)."""
    newest: dict[int, ProductRecord] = {}
    for p in products:
        kept = newest.get(p.shopify_id)
        if kept is None or p.shopify_updated_at >= kept.shopify_updated_at:
            newest[p.shopify_id] = p
    return sorted(newest.values(), key=lambda p: p.shopify_id)


def _variant_wins(incoming: VariantRecord, kept: VariantRecord) -> bool:
    # app_newer_wins between two versions of a live variant: an undated one never beats a dated.
    if incoming.shopify_updated_at is None:
        return kept.shopify_updated_at is None
    return kept.shopify_updated_at is None or incoming.shopify_updated_at >= kept.shopify_updated_at


def _newest_levels(levels: Sequence[InventoryLevelRecord]) -> list[InventoryLevelRecord]:
    newest: dict[tuple[int, int], InventoryLevelRecord] = {}
    for level in levels:
        key = (level.inventory_item_id, level.location_id)
        kept = newest.get(key)
        if kept is None or level.shopify_updated_at >= kept.shopify_updated_at:
            newest[key] = level
    return [newest[key] for key in sorted(newest)]


async def apply_changes(conn: Conn, shop_id: UUID, changes: CatalogChanges) -> Applied:
    """Write a batch in the caller's transaction: product versions, then levels, then deletions
    (in delivery order a level before its product's deletion goes with it, and one after it
    cannot come: Shopify deletes the item with the product)."""
    products = _newest_products(changes.products)
    levels = _newest_levels(changes.levels)
    deleted_ids = sorted({d.shopify_id for d in changes.deletions})
    product_ids = sorted({p.shopify_id for p in products} | set(deleted_ids))
    items = sorted({level.inventory_item_id for level in levels})
    if not product_ids and not items:
        return Applied([], [])
    await conn.execute(
        _sql("lock_catalog_rows.sql"),
        {"shop_id": shop_id, "products": product_ids, "items": items},
    )
    versions = await _upsert_products(conn, shop_id, products) if products else []
    if levels:
        await _upsert_levels(conn, shop_id, levels, items)
    if changes.deletions:
        await _delete_products(conn, shop_id, changes.deletions)
    return Applied(sorted(set(versions) | set(deleted_ids)), versions)


async def _upsert_products(conn: Conn, shop_id: UUID, products: list[ProductRecord]) -> list[int]:
    written = await fetch_all(
        conn,
        _Upserted,
        _sql("upsert_products.sql"),
        {
            "shop_id": shop_id,
            "products": _json(
                [
                    {
                        "shopify_id": p.shopify_id,
                        "handle": p.handle,
                        "title": p.title,
                        "vendor": p.vendor,
                        "product_type": p.product_type,
                        "status": p.status,
                        "tags": p.tags,
                        "description": p.description,
                        "created_at": p.shopify_created_at,
                        "updated_at": p.shopify_updated_at,
                    }
                    for p in products
                ]
            ),
        },
    )
    # A version that lost changes nothing; a deleted one (still deleted) keeps its variants retired.
    live = {w.shopify_id for w in written if w.live}
    won = [p for p in products if p.shopify_id in live]
    variants: dict[int, tuple[int, VariantRecord]] = {}
    for p in won:
        for v in p.variants:
            kept = variants.get(v.shopify_id)
            if kept is None or _variant_wins(v, kept[1]):
                variants[v.shopify_id] = (p.shopify_id, v)
    if variants:
        await conn.execute(
            _sql("upsert_variants.sql"),
            {
                "shop_id": shop_id,
                "variants": _json(
                    [
                        {
                            "shopify_id": v.shopify_id,
                            "product_shopify_id": product_id,
                            "sku": v.sku,
                            "title": v.title,
                            "price": v.price,
                            "compare_at_price": v.compare_at_price,
                            "barcode": v.barcode,
                            "position": v.position,
                            "inventory_quantity": v.inventory_quantity,
                            "inventory_item_id": v.inventory_item_id,
                            "selected_options": v.selected_options,
                            "created_at": v.shopify_created_at,
                            "updated_at": v.shopify_updated_at,
                        }
                        for product_id, v in (variants[k] for k in sorted(variants))
                    ]
                ),
            },
        )
    if won:
        await _retire_variants(
            conn,
            shop_id,
            [(p.shopify_id, [v.shopify_id for v in p.variants], p.shopify_updated_at) for p in won],
        )
        await conn.execute(
            _sql("product_variant_quantities.sql"),
            {"shop_id": shop_id, "products": [p.shopify_id for p in won]},
        )
    return sorted(w.shopify_id for w in written)


async def _delete_products(conn: Conn, shop_id: UUID, deletions: Sequence[Deletion]) -> None:
    """Mark the products (and their variants) deleted: as of a product's first deletion, which
    is what applying its deletions in turn keeps, with its version raised to the latest."""
    first: dict[int, datetime] = {}
    latest: dict[int, datetime] = {}
    for d in deletions:
        first.setdefault(d.shopify_id, d.at)
        latest[d.shopify_id] = max(latest.get(d.shopify_id, d.at), d.at)
    ids = sorted(first)
    await conn.execute(
        _sql("delete_products.sql"),
        {
            "shop_id": shop_id,
            "deletions": _json(
                [{"shopify_id": i, "first": first[i], "latest": latest[i]} for i in ids]
            ),
        },
    )
    await _retire_variants(conn, shop_id, [(i, [], first[i]) for i in ids])


async def _retire_variants(
    conn: Conn, shop_id: UUID, products: list[tuple[int, list[int], datetime]]
) -> None:
    """Mark each product's variants not in its keep list deleted, and drop their levels."""
    await conn.execute(
        _sql("retire_variants.sql"),
        {
            "shop_id": shop_id,
            "products": _json(
                [{"shopify_id": p, "keep": keep, "at": at} for p, keep, at in products]
            ),
        },
    )


async def _upsert_levels(
    conn: Conn, shop_id: UUID, levels: list[InventoryLevelRecord], items: list[int]
) -> None:
    await conn.execute(
        _sql("upsert_inventory_levels.sql"),
        {
            "shop_id": shop_id,
            "levels": _json(
                [
                    {
                        "shopify_id": level.shopify_id,
                        "inventory_item_id": level.inventory_item_id,
                        "location_id": level.location_id,
                        "available": level.available,
                        "updated_at": level.shopify_updated_at,
                    }
                    for level in levels
                ]
            ),
        },
    )
    await conn.execute(_sql("item_variant_quantities.sql"), {"shop_id": shop_id, "items": items})


async def apply_product(conn: Conn, shop_id: UUID, product: ProductRecord) -> bool:
    """Write the product version if it is not older than the stored one; True when applied."""
    applied = await apply_changes(conn, shop_id, CatalogChanges(products=[product]))
    return bool(applied.versions)


async def delete_product(conn: Conn, shop_id: UUID, shopify_id: int, at: datetime) -> None:
    """Mark the product (and its variants) deleted as of `at`."""
    await apply_changes(conn, shop_id, CatalogChanges(deletions=[Deletion(shopify_id, at)]))


async def apply_inventory_level(conn: Conn, shop_id: UUID, level: InventoryLevelRecord) -> None:
    await apply_changes(conn, shop_id, CatalogChanges(levels=[level]))


async def deleted_products(conn: Conn, shopify_ids: Sequence[int]) -> set[int]:
    """Which of these products (tenant-scoped) are stored and marked deleted."""
    if not shopify_ids:
        return set()
    return set(
        await fetch_scalars(
            conn,
            int,
            "SELECT shopify_id FROM products WHERE shopify_id = ANY(%s) AND deleted_at IS NOT NULL",
            (sorted(set(shopify_ids)),),
        )
    )
