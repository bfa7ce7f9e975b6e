"""A product as the incremental path sees it, decoded from a webhook (REST shape) or from
`product(id:)` (GraphQL shape), in the column meanings the full sync writes too:
status UPPERCASE, tags a list, description = descriptionHtml, selected_options [{name, value}]."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

GID_PREFIX = "gid://shopify/"


class PayloadError(ValueError):
    """A webhook payload or a GraphQL answer lacks what the update needs."""


@dataclass(frozen=True, slots=True)
class VariantRecord:
    shopify_id: int
    sku: str | None
    title: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    barcode: str | None
    position: int | None
    inventory_quantity: int | None
    inventory_item_id: int | None
    selected_options: list[dict[str, str]]
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    shopify_id: int
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None
    tags: list[str]
    description: str | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime
    variants: list[VariantRecord]


@dataclass(frozen=True, slots=True)
class InventoryLevelRecord:
    shopify_id: int
    inventory_item_id: int
    location_id: int
    available: int | None
    shopify_updated_at: datetime


class _RestVariant(msgspec.Struct, kw_only=True):
    id: int
    title: str | None = None
    price: str | float | None = None
    compare_at_price: str | float | None = None
    sku: str | None = None
    barcode: str | None = None
    position: int | None = None
    inventory_item_id: int | None = None
    inventory_quantity: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None


class _RestOption(msgspec.Struct, kw_only=True):
    name: str
    position: int | None = None


class _RestProduct(msgspec.Struct, kw_only=True):
    id: int
    title: str | None = None
    body_html: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    handle: str | None = None
    status: str | None = None
    tags: str | list[str] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    variants: list[_RestVariant] = msgspec.field(default_factory=list)
    options: list[_RestOption] = msgspec.field(default_factory=list)


class _RestDelete(msgspec.Struct, kw_only=True):
    id: int


class _RestLevel(msgspec.Struct, kw_only=True):
    inventory_item_id: int
    location_id: int
    available: int | None = None
    updated_at: str | None = None
    admin_graphql_api_id: str | None = None


def parse_time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"{what} is not an ISO 8601 time: {value[:40]!r}") from None
    if stamp.tzinfo is None:
        raise PayloadError(f"{what} has no UTC offset: {value[:40]!r}")
    return stamp


def _decimal(value: str | float | None, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(f"{what} is not a number: {str(value)[:40]!r}") from None


def _tags(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [t.strip() for t in items if t and t.strip()]


def _decode(raw: bytes | str, kind: type[Any], topic: str) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(f"{topic} payload: {exc}") from None


def product_from_rest(raw: bytes | str) -> ProductRecord:
    """A `products/create|update` webhook payload (REST product)."""
    p: _RestProduct = _decode(raw, _RestProduct, "products/update")
    updated = parse_time(p.updated_at, "updated_at")
    if updated is None:
        raise PayloadError("products/update payload has no updated_at")
    names = [o.name for o in sorted(p.options, key=lambda o: o.position or 0)]
    variants = []
    for v in p.variants:
        values = [v.option1, v.option2, v.option3]
        options = [
            {"name": names[i], "value": values[i]}
            for i in range(min(3, len(names)))
            if values[i] is not None
        ]
        variants.append(
            VariantRecord(
                shopify_id=v.id,
                sku=v.sku,
                title=v.title,
                price=_decimal(v.price, "variant price"),
                compare_at_price=_decimal(v.compare_at_price, "variant compare_at_price"),
                barcode=v.barcode,
                position=v.position,
                inventory_quantity=v.inventory_quantity,
                inventory_item_id=v.inventory_item_id,
                selected_options=options,  # type: ignore[arg-type]
                shopify_created_at=parse_time(v.created_at, "variant created_at"),
                shopify_updated_at=parse_time(v.updated_at, "variant updated_at"),
            )
        )
    return ProductRecord(
        shopify_id=p.id,
        handle=p.handle,
        title=p.title,
        vendor=p.vendor,
        product_type=p.product_type,
        status=p.status.upper() if p.status else None,
        tags=_tags(p.tags),
        description=p.body_html,
        shopify_created_at=parse_time(p.created_at, "created_at"),
        shopify_updated_at=updated,
        variants=variants,
    )


def deleted_product_id(raw: bytes | str) -> int:
    deleted: _RestDelete = _decode(raw, _RestDelete, "products/delete")
    return deleted.id


def level_from_rest(raw: bytes | str, fallback_time: datetime | None) -> InventoryLevelRecord:
    """An `inventory_levels/update` payload. The level's own id is the number in its GID."""
    level: _RestLevel = _decode(raw, _RestLevel, "inventory_levels/update")
    updated = parse_time(level.updated_at, "updated_at") or fallback_time
    if updated is None:
        raise PayloadError("inventory_levels/update payload has no updated_at")
    if level.admin_graphql_api_id is None:
        raise PayloadError("inventory_levels/update payload has no admin_graphql_api_id")
    return InventoryLevelRecord(
        shopify_id=gid_number(level.admin_graphql_api_id, "InventoryLevel"),
        inventory_item_id=level.inventory_item_id,
        location_id=level.location_id,
        available=level.available,
        shopify_updated_at=updated,
    )


def gid_number(gid: str, kind: str) -> int:
    prefix = f"{GID_PREFIX}{kind}/"
    if not gid.startswith(prefix):
        raise PayloadError(f"expected a {kind} id, got {gid[:80]!r}")
    tail = gid[len(prefix) :].split("?", 1)[0]
    if not tail.isdigit() or len(tail) > 19 or int(tail) >= 1 << 63:
        raise PayloadError(f"malformed {kind} id {gid[:80]!r}")
    return int(tail)


PRODUCT_QUERY = """
query Product($id: ID!) {
  product(id: $id) {
    id handle title vendor productType status tags descriptionHtml createdAt updatedAt
    variants(first: 250) {
      nodes {
        id sku title price compareAtPrice barcode position inventoryQuantity createdAt updatedAt
        selectedOptions { name value }
        inventoryItem { id }
      }
    }
  }
}
"""
# A product with 250 variants: 1 + 250 * 3 objects; Shopify refunds what it does not charge.
PRODUCT_QUERY_COST = 760


def product_from_graphql(node: dict[str, Any]) -> ProductRecord:
    """`product(id:)` as fetched when a webhook payload may be stale."""
    try:
        updated = parse_time(node["updatedAt"], "updatedAt")
        assert updated is not None
        variants = [
            VariantRecord(
                shopify_id=gid_number(v["id"], "ProductVariant"),
                sku=v.get("sku"),
                title=v.get("title"),
                price=_decimal(v.get("price"), "price"),
                compare_at_price=_decimal(v.get("compareAtPrice"), "compareAtPrice"),
                barcode=v.get("barcode"),
                position=v.get("position"),
                inventory_quantity=v.get("inventoryQuantity"),
                inventory_item_id=(
                    gid_number(v["inventoryItem"]["id"], "InventoryItem")
                    if v.get("inventoryItem")
                    else None
                ),
                selected_options=[
                    {"name": o["name"], "value": o["value"]} for o in v.get("selectedOptions") or []
                ],
                shopify_created_at=parse_time(v.get("createdAt"), "createdAt"),
                shopify_updated_at=parse_time(v.get("updatedAt"), "updatedAt"),
            )
            for v in (node.get("variants") or {}).get("nodes") or []
        ]
        return ProductRecord(
            shopify_id=gid_number(node["id"], "Product"),
            handle=node.get("handle"),
            title=node.get("title"),
            vendor=node.get("vendor"),
            product_type=node.get("productType"),
            status=node.get("status"),
            tags=list(node.get("tags") or []),
            description=node.get("descriptionHtml"),
            shopify_created_at=parse_time(node.get("createdAt"), "createdAt"),
            shopify_updated_at=updated,
            variants=variants,
        )
    except (KeyError, TypeError, AssertionError) as exc:
        raise PayloadError(f"product answer lacks a field: {exc}") from None
