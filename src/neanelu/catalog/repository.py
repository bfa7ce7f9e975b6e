"""Read queries on the tenant's catalog (the caller's scope selects the shop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import sql

from neanelu.db.pool import Conn
from neanelu.db.product_filters import product_clauses
from neanelu.db.rows import fetch_all, fetch_one

_SUMMARY = sql.SQL(
    "shopify_id, handle, title, vendor, product_type, status, tags, shopify_updated_at, "
    "deleted_at IS NOT NULL AS deleted"
)


@dataclass(frozen=True, slots=True)
class ProductSummaryRow:
    shopify_id: int
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None
    tags: list[str] | None
    shopify_updated_at: datetime | None
    deleted: bool


@dataclass(frozen=True, slots=True)
class ProductRow(ProductSummaryRow):
    description: str | None
    metafields: dict[str, Any] | None
    shopify_created_at: datetime | None


@dataclass(frozen=True, slots=True)
class VariantRow:
    shopify_id: int
    sku: str | None
    title: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    barcode: str | None
    position: int | None
    inventory_quantity: int | None
    inventory_item_id: int | None
    selected_options: list[dict[str, str]] | None
    shopify_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProductFilter:
    status: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    tag: str | None = None
    updated_since: datetime | None = None
    include_deleted: bool = False


async def list_products(
    conn: Conn, filters: ProductFilter, *, after: int | None, limit: int
) -> list[ProductSummaryRow]:
    """One page in Shopify id order (keyset: `shopify_id > after`), `limit + 1` rows at most so
    the caller knows whether another page exists."""
    clauses, params = product_clauses(
        include_deleted=filters.include_deleted,
        status=filters.status,
        vendor=filters.vendor,
        product_type=filters.product_type,
        tag=filters.tag,
    )
    if filters.updated_since is not None:
        clauses.append(sql.SQL("shopify_updated_at >= %s"))
        params.append(filters.updated_since)
    if after is not None:
        clauses.append(sql.SQL("shopify_id > %s"))
        params.append(after)
    where = sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")
    query = sql.SQL("SELECT {} FROM products WHERE {} ORDER BY shopify_id LIMIT %s").format(
        _SUMMARY, where
    )
    return await fetch_all(conn, ProductSummaryRow, query, [*params, limit + 1])


async def get_product(conn: Conn, shopify_id: int) -> ProductRow | None:
    query = sql.SQL(
        "SELECT {}, description, metafields, shopify_created_at FROM products WHERE shopify_id = %s"
    ).format(_SUMMARY)
    return await fetch_one(conn, ProductRow, query, (shopify_id,))


async def product_variants(conn: Conn, product_shopify_id: int) -> list[VariantRow]:
    return await fetch_all(
        conn,
        VariantRow,
        "SELECT shopify_id, sku, title, price, compare_at_price, barcode, position, "
        "inventory_quantity, inventory_item_id, selected_options, shopify_updated_at "
        "FROM variants WHERE product_shopify_id = %s AND deleted_at IS NULL "
        "ORDER BY position NULLS LAST, shopify_id",
        (product_shopify_id,),
    )
