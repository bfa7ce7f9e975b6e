"""JSONL lines of an `inventoryItems` export (items with their inventory levels) from the draws.

After the products, the inventory file is the biggest of a full sync (an item per variant and a level
per item and location). For a plan within the fields below, the items of generated products are written
a batch of products at a time, like `bulk_fast` writes products: their ids and levels come as columns
from `bulk_draws`, each line is one f-string. `tests/emulator/test_bulk_fast.py` compares the lines with
the general path's.
"""

from __future__ import annotations

from typing import Any

from shopify_emulator import ids
from shopify_emulator.bulk_fast import ITEM, Emitter, _fields, _object, exec_emitter, root_group
from shopify_emulator.config import CatalogShape

LEVEL = {
    "id": '"gid://shopify/InventoryLevel/{level}?inventory_item_id={item}"',
    "updatedAt": '"{ua}"',
    "__typename": '"InventoryLevel"',
}
LOCATION = {"id": '"gid://shopify/Location/{location}"', "__typename": '"Location"'}
QUANTITY = {"name": '"available"', "quantity": "{quantity}", "__typename": '"InventoryQuantity"'}


def compile_emitter(root: Any, order: str, shape: CatalogShape, seed: int) -> Emitter | None:
    """An emitter for the root object plan of an `inventoryItems` bulk query, or None when the plan
    selects anything this module does not write."""
    if root.type_name != "InventoryItem" or len(root.children) != 1:
        return None
    item_fields = _fields(root)
    item_parts = None if item_fields is None else _object(item_fields, ITEM)
    child = root.children[0]
    if item_parts is None or child.args or child.node.type_name != "InventoryLevel":
        return None
    level_parts = _level_parts(child.node)
    if level_parts is None:
        return None
    if not root.typename_requested:
        item_parts.append('"__typename":"InventoryItem"')
    return _build(item_parts, level_parts, order, shape, seed)


def _level_parts(level: Any) -> list[str] | None:
    if level.children:
        return None
    parts: list[str] = []
    for key, _, name, args, nested in level.fields:
        if nested is None and not args and name in LEVEL:
            parts.append(f'"{key}":{LEVEL[name]}')
            continue
        inner = None if nested is None or nested.children else _fields(nested)
        if name == "location" and not args and inner is not None:
            fields = _object(inner, LOCATION)
            if fields is None:
                return None
            parts.append(f'"{key}":{{{{' + ",".join(fields) + "}}")
        elif name == "quantities" and args == {"names": ["available"]} and inner is not None:
            fields = _object(inner, QUANTITY)
            if fields is None:
                return None
            parts.append(f'"{key}":[{{{{' + ",".join(fields) + "}}]")
        else:
            return None
    if not level.typename_requested:
        parts.append('"__typename":"InventoryLevel"')
    parts.append('"__parentId":"gid://shopify/InventoryItem/{item}"')
    return parts


def _build(
    item_parts: list[str], level_parts: list[str], order: str, shape: CatalogShape, seed: int
) -> Emitter:
    item_template = "{{" + ",".join(item_parts) + "}}\\n"
    level_template = "{{" + ",".join(level_parts) + "}}\\n"
    lines = [
        "def emit(indexes, out):",
        "    batch = Batch(SHAPE, SEED, indexes)",
        "    items = zip(*batch.inventory())",
        "    for ua, count in zip(batch.updated_stamps(), batch.counts()):",
        "        for item, quantities in islice(items, count):",
        *root_group(
            " " * 12,
            item_template,
            "location_index, quantity in enumerate(quantities)",
            [
                # Shopify's level number is its location's (ids.level_gid).
                "location = level = LOCATION_BASE + location_index",
            ],
            level_template,
            order,
        ),
    ]
    return exec_emitter(
        lines,
        "inventory items",
        shape,
        seed,
        LOCATION_BASE=ids.LOCATION_BASE,
    )
