"""The read API: a shop's products, tenant-scoped by the caller's credentials."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from neanelu.catalog import repository
from neanelu.catalog.schemas import Product, ProductPage, ProductSummary, SelectedOption, Variant
from neanelu.db.pool import tenant_scope
from neanelu.shops.auth import CurrentShop
from neanelu.web.deps import RuntimeDep

router = APIRouter(prefix="/api/products", tags=["catalog"])
MAX_ID = (1 << 63) - 1
_CURSOR = re.compile(r"^[0-9]{1,19}$")
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid session token / API key"}
}


def _summary(row: repository.ProductSummaryRow) -> ProductSummary:
    return ProductSummary(
        id=str(row.shopify_id),
        handle=row.handle,
        title=row.title,
        vendor=row.vendor,
        product_type=row.product_type,
        status=row.status,
        tags=list(row.tags or []),
        updated_at=row.shopify_updated_at,
        deleted=bool(row.deleted),
    )


@router.get(
    "", response_model=ProductPage, responses=_AUTH_ERRORS | {400: {"description": "bad cursor"}}
)
async def list_products(
    rt: RuntimeDep,
    shop: CurrentShop,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
    after: Annotated[str | None, Query(description="cursor from the previous page")] = None,
    product_status: Annotated[
        Literal["ACTIVE", "DRAFT", "ARCHIVED"] | None, Query(alias="status")
    ] = None,
    vendor: Annotated[str | None, Query(max_length=255)] = None,
    product_type: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    updated_since: Annotated[datetime | None, Query()] = None,
    include_deleted: bool = False,
) -> ProductPage:
    """The shop's products in Shopify id order, filtered, a page at a time (keyset)."""
    cursor: int | None = None
    if after is not None:
        if not _CURSOR.match(after) or int(after) > MAX_ID:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "after is not a valid cursor")
        cursor = int(after)
    if updated_since is not None and updated_since.tzinfo is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "updated_since needs a UTC offset")
    filters = repository.ProductFilter(
        status=product_status,
        vendor=_clean(vendor),
        product_type=_clean(product_type),
        tag=_clean(tag),
        updated_since=updated_since,
        include_deleted=include_deleted,
    )
    async with tenant_scope(rt.pool, shop.shop_id) as conn:
        rows = await repository.list_products(conn, filters, after=cursor, limit=limit)
    items = [_summary(r) for r in rows[:limit]]
    next_cursor = items[-1].id if len(rows) > limit else None
    return ProductPage(items=items, next_cursor=next_cursor)


def _clean(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "filters cannot contain NUL characters")
    return value


@router.get(
    "/{product_id}",
    response_model=Product,
    responses=_AUTH_ERRORS | {404: {"description": "no such product in this shop"}},
)
async def get_product(
    rt: RuntimeDep,
    shop: CurrentShop,
    product_id: Annotated[int, Path(ge=1, le=MAX_ID, description="Shopify's numeric product id")],
) -> Product:
    """One product with its live variants."""
    async with tenant_scope(rt.pool, shop.shop_id) as conn:
        row = await repository.get_product(conn, product_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "product not found")
        variant_rows = await repository.product_variants(conn, product_id)
    summary = _summary(row)
    return Product(
        **summary.model_dump(),
        description=row.description,
        metafields=row.metafields or {},
        created_at=row.shopify_created_at,
        variants=[
            Variant(
                id=str(v.shopify_id),
                sku=v.sku,
                title=v.title,
                price=v.price,
                compare_at_price=v.compare_at_price,
                barcode=v.barcode,
                position=v.position,
                inventory_quantity=v.inventory_quantity,
                inventory_item_id=None if v.inventory_item_id is None else str(v.inventory_item_id),
                selected_options=[SelectedOption(**o) for o in v.selected_options or []],
                updated_at=v.shopify_updated_at,
            )
            for v in variant_rows
        ],
    )
