"""JSONL lines of a `productVariants` export with the variants' metafields, from the draws.

The full sync reads variant metafields with their own query (connections nest two levels deep at most),
and the file has a line per variant and per metafield. For a plan within the fields below, the variants
of generated products and their metafields are written a batch of products at a time, like `bulk_fast`
writes products. `tests/emulator/test_bulk_fast.py` compares the lines with the general path's.
"""

from __future__ import annotations

from typing import Any

from shopify_emulator.bulk_fast import Emitter, _fields, _object, exec_emitter, root_group
from shopify_emulator.config import CatalogShape

VARIANT = {
    "id": '"gid://shopify/ProductVariant/{number}"',
    "legacyResourceId": '"{number}"',
    "__typename": '"ProductVariant"',
}
METAFIELD = {
    "id": '"gid://shopify/Metafield/{field}"',
    "namespace": '"variant"',
    "key": '"vkey_{k}"',
    "type": '"{kind}"',
    "value": "{value}",
    "createdAt": '"{ca}"',
    "updatedAt": '"{ua}"',
    "__typename": '"Metafield"',
}


def compile_emitter(root: Any, order: str, shape: CatalogShape, seed: int) -> Emitter | None:
    """An emitter for the root object plan of a `productVariants { metafields }` bulk query, or None
    when the plan selects anything this module does not write (metafield arguments included)."""
    if root.type_name != "ProductVariant" or len(root.children) != 1:
        return None
    variant_fields = _fields(root)
    variant_parts = None if variant_fields is None else _object(variant_fields, VARIANT)
    child = root.children[0]
    field_plan = child.node
    if variant_parts is None or child.args or field_plan.type_name != "Metafield":
        return None
    inner = None if field_plan.children else _fields(field_plan)
    field_parts = None if inner is None else _object(inner, METAFIELD)
    if field_parts is None:
        return None
    if not root.typename_requested:
        variant_parts.append('"__typename":"ProductVariant"')
    if not field_plan.typename_requested:
        field_parts.append('"__typename":"Metafield"')
    field_parts.append('"__parentId":"gid://shopify/ProductVariant/{number}"')
    variant_template = "{{" + ",".join(variant_parts) + "}}\\n"
    field_template = "{{" + ",".join(field_parts) + "}}\\n"
    lines = [
        "def emit(indexes, out):",
        "    batch = Batch(SHAPE, SEED, indexes)",
        "    per_variant, per_field = batch.variant_metafields()",
        "    variants, fields = zip(*per_variant), zip(*per_field)",
        "    for ca, ua, count in zip(batch.created_stamps(), batch.updated_stamps(), batch.counts()):",
        "        for number, metafields in islice(variants, count):",
        *root_group(
            " " * 12,
            variant_template,
            "field, k, kind, value in islice(fields, metafields)",
            [],
            field_template,
            order,
        ),
    ]
    return exec_emitter(lines, "variant metafields", shape, seed)
