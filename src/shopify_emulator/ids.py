"""Numeric ids and GIDs.

Ids are derived arithmetically from a product's index so any product, variant or metafield can be found
(and generated) without generating anything before it. Bases are large on purpose: real Shopify ids exceed
2^53, which breaks clients that parse them as doubles.
"""

from __future__ import annotations

PRODUCT_BASE = 8_000_000_000_000
VARIANT_BASE = 40_000_000_000_000
INVENTORY_ITEM_BASE = 50_000_000_000_000
PRODUCT_METAFIELD_BASE = 30_000_000_000_000
VARIANT_METAFIELD_BASE = 9_100_000_000_000_000  # above 2^53 on purpose
IMAGE_BASE = 60_000_000_000_000
LOCATION_BASE = 70_000_000_000
OPTION_VALUE_BASE = 80_000_000_000_000
SHOP_BASE = 60_000_000_000

VARIANT_SLOTS = 2048  # the hard Shopify maximum of variants per product
PRODUCT_METAFIELD_SLOTS = 64
VARIANT_METAFIELD_SLOTS = 8
IMAGE_SLOTS = 16

GID_PREFIX = "gid://shopify/"


def gid(kind: str, number: int) -> str:
    return f"{GID_PREFIX}{kind}/{number}"


def level_gid(item_id: int, location_index: int) -> str:
    """Shopify's form: the number is the location's, the item rides in the query string (its
    own webhook samples read `InventoryLevel/24826418?inventory_item_id=...` for location
    24826418). So every level at one location shares the number: only the pair names a level."""
    return f"{GID_PREFIX}InventoryLevel/{location_id(location_index)}?inventory_item_id={item_id}"


def parse_level_gid(value: str) -> tuple[int, int] | None:
    """An InventoryLevel GID -> (inventory item id, location index); None when malformed or
    when it lacks the item (the number alone does not name a level)."""
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != "InventoryLevel":
        return None
    _, _, query = value.partition("?")
    item = query.removeprefix("inventory_item_id=")
    if item == query or not item.isdigit():
        return None
    return int(item), parsed[1] - LOCATION_BASE


def variant_id(product_index: int, position: int) -> int:
    return VARIANT_BASE + product_index * VARIANT_SLOTS + position


def inventory_item_id(product_index: int, position: int) -> int:
    return INVENTORY_ITEM_BASE + product_index * VARIANT_SLOTS + position


def location_id(location_index: int) -> int:
    return LOCATION_BASE + location_index


def parse_gid(value: str) -> tuple[str, int] | None:
    """`gid://shopify/Product/8000000000001` -> ("Product", 8000000000001); None when malformed."""
    if not value.startswith(GID_PREFIX):
        return None
    rest = value[len(GID_PREFIX) :].split("?", 1)[0]
    kind, _, number = rest.partition("/")
    if not kind or not number.isdigit():
        return None
    return kind, int(number)


def split_variant_number(number: int) -> tuple[int, int] | None:
    """Variant (or inventory item) number -> (product index, position)."""
    for base in (VARIANT_BASE, INVENTORY_ITEM_BASE):
        offset = number - base
        if 0 <= offset < 10_000_000_000_000:
            return divmod(offset, VARIANT_SLOTS)
    return None
