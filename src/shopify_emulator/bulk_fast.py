"""JSONL lines of generated products written straight from the generator's draws.

The full export every client starts with (products with their variants, in id order) is most of what a
bulk run ever writes. For a plan that selects only the fields below, the lines of a *generated* product
(never one from the overlay) are produced by one compiled function that computes the generator's draws
and fills a line template, with no Product or Variant object, no dict and no JSON encoder in between.
Each expression must give exactly the bytes the general path gives (msgspec over the resolver's value);
`tests/emulator/test_bulk_fast.py` compares the two for thousands of products and several shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from shopify_emulator import generator as g
from shopify_emulator import ids
from shopify_emulator.config import CatalogShape

Emitter = Callable[[int, list[bytes]], None]

# Template fragments per field: `{name}` placeholders are locals of the compiled function.
PRODUCT = {
    "id": '"gid://shopify/Product/{pid}"',
    "legacyResourceId": '"{pid}"',
    "handle": '"{handle}"',
    "title": '"{title}"',
    "vendor": "{vendor}",
    "productType": '"{ptype}"',
    "status": '"{status}"',
    "tags": "{tags}",
    "descriptionHtml": "{desc}",
    "createdAt": '"{ca}"',
    "updatedAt": '"{ua}"',
    "publishedAt": "{published}",
    "__typename": '"Product"',
}
VARIANT = {
    "id": '"gid://shopify/ProductVariant/{number}"',
    "legacyResourceId": '"{number}"',
    "title": "{vtitle}",
    "displayName": "{vtitle}",
    "sku": "{sku}",
    "price": '"{price}"',
    "compareAtPrice": "{compare}",
    "barcode": "{barcode}",
    "position": "{position}",
    "inventoryQuantity": "{quantity}",
    "createdAt": '"{ca}"',
    "updatedAt": '"{ua}"',
    "taxable": "true",
    "inventoryPolicy": '"DENY"',
    "__typename": '"ProductVariant"',
}
ITEM = {
    "id": '"gid://shopify/InventoryItem/{item}"',
    "legacyResourceId": '"{item}"',
    "__typename": '"InventoryItem"',
}
OPTION = {"name", "value", "__typename"}


def _plain(text: str) -> bool:
    """True when msgspec writes `text` as-is between quotes (no escapes), so it can go in a template."""
    return msgspec.json.encode(text) == b'"' + text.encode() + b'"'


# The pools fill templates unescaped; an entry that needed escaping would break the files.
assert all(_plain(t) for t in g.ADJECTIVES + g.NOUNS + g.PRODUCT_TYPES + g.TAG_WORDS)
assert all(_plain(t) for t in g.SIZES + g.COLORS)
_VENDORS = tuple(msgspec.json.encode(v).decode() for v in g.VENDORS)
_LONG = msgspec.json.encode(g.LONG_PARAGRAPH * 60).decode()
_TAGS_ALL = msgspec.json.encode(sorted({f"bulk-tag-{n:02d}" for n in range(60)})).decode()


def _fields(plan: Any) -> list[tuple[str, str, Any]] | None:
    """(key, field name, nested plan) of a plan without arguments, or None."""
    out = []
    for key, _, name, args, nested in plan.fields:
        if args:
            return None
        out.append((key, name, nested))
    return out


def _object(fields: list[tuple[str, str, Any]], table: dict[str, str]) -> list[str] | None:
    parts = []
    for key, name, nested in fields:
        if nested is not None or name not in table:
            return None
        parts.append(f'"{key}":{table[name]}')
    return parts


def compile_emitter(root: Any, order: str, shape: CatalogShape, seed: int) -> Emitter | None:
    """An emitter for the root object plan of a `products` bulk query, or None when the plan selects
    anything this module does not write."""
    if root.type_name != "Product":
        return None
    product_fields = _fields(root)
    if product_fields is None:
        return None
    product_parts = _object(product_fields, PRODUCT)
    if product_parts is None:
        return None
    if not root.typename_requested:
        product_parts.append('"__typename":"Product"')
    variant_parts: list[str] | None = None
    option_keys: list[tuple[str, str]] = []
    if root.children:
        if len(root.children) != 1:
            return None
        planned = _variant_parts(root.children[0])
        if planned is None:
            return None
        variant_parts, option_keys = planned
    return _build(product_parts, variant_parts, option_keys, order, shape, seed)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_PER_PRODUCT = {"ca", "ua", "pid"}


def _per_product_runs(parts: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Runs of variant fragments that are the same for every variant of a product (constants, the
    product's stamps and id) become one string built once per product: fewer substitutions a line."""
    shared: list[tuple[str, str]] = []
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) > 1:
            name = f"K{len(shared)}"
            shared.append((name, ",".join(run)))
            out.append("{" + name + "}")
        else:
            out.extend(run)
        run.clear()

    for part in parts:
        if set(_PLACEHOLDER.findall(part)) <= _PER_PRODUCT:
            run.append(part)
        else:
            flush()
            out.append(part)
    flush()
    return shared, out


def _mix(target: str, value: str) -> list[str]:
    """generator.mix (splitmix64) as statements: the emitter calls no function per draw."""
    return [
        f"    {target} = ({value} + 0x9E3779B97F4A7C15) & MASK",
        f"    {target} = (({target} ^ ({target} >> 30)) * 0xBF58476D1CE4E5B9) & MASK",
        f"    {target} = (({target} ^ ({target} >> 27)) * 0x94D049BB133111EB) & MASK",
        f"    {target} ^= {target} >> 31",
    ]


def _quantity_expression(locations: int) -> str:
    """`sum(variant.available)` as one expression of the generator's draws (see generator._variant)."""
    if locations <= 8:
        terms = " + ".join(f"((stock >> {7 * loc}) & 127)" for loc in range(locations))
        return f"{terms or '0'} - {10 * locations}"
    return "quantity_of(item)"


def _variant_parts(child: Any) -> tuple[list[str], list[tuple[str, str]]] | None:
    """Template fragments of the variant lines, and the selected option keys; None if unsupported."""
    variant = child.node
    if child.args or variant.children or variant.type_name != "ProductVariant":
        return None
    variant_fields = _fields(variant)
    if variant_fields is None:
        return None
    parts: list[str] = []
    option_keys: list[tuple[str, str]] = []
    for key, name, nested in variant_fields:
        if nested is None and name in VARIANT:
            parts.append(f'"{key}":{VARIANT[name]}')
        elif name == "inventoryItem" and nested is not None and not nested.children:
            inner = _fields(nested)
            item_parts = None if inner is None else _object(inner, ITEM)
            if item_parts is None:
                return None
            parts.append(f'"{key}":{{{{' + ",".join(item_parts) + "}}")
        elif name == "selectedOptions" and nested is not None and not nested.children:
            inner = _fields(nested)
            if inner is None or any(n not in OPTION or sub for _, n, sub in inner):
                return None
            option_keys = [(k, n) for k, n, _ in inner]
            parts.append(f'"{key}":{{options}}')
        else:
            return None
    if not variant.typename_requested:
        parts.append('"__typename":"ProductVariant"')
    parts.append('"__parentId":"gid://shopify/Product/{pid}"')
    return parts, option_keys


def _options_json(options: list[tuple[str, str]], keys: list[tuple[str, str]]) -> str:
    items = []
    for name, value in options:
        fields = {"name": name, "value": value, "__typename": "SelectedOption"}
        items.append("{" + ",".join(f'"{k}":"{fields[n]}"' for k, n in keys) + "}")
    return "[" + ",".join(items) + "]"


def _build(
    product_parts: list[str],
    variant_parts: list[str] | None,
    option_keys: list[tuple[str, str]],
    order: str,
    shape: CatalogShape,
    seed: int,
) -> Emitter:
    product_line = "f'{{" + ",".join(product_parts) + "}}\\n'"
    lines = ["def emit(index, out):"]
    # The draws of generator.generate_product, in its order; the asserts in the tests hold them equal.
    lines += [
        *_mix("x", "index"),
        *_mix("h", "(SALT ^ x)"),
        *_mix("h2", "h"),
        *_mix("h3", "h2"),
        "    noun = NOUNS[(h >> 4) & 15]",
        '    title = f"{ADJECTIVES[h & 15]} {noun} {index}"',
        "    created = EPOCH_START + (h2 % CREATED_SPAN_S)",
        "    updated = created + (h3 % UPDATED_SPAN_S)",
        # generator.iso_int for both stamps, inlined (cached date part, formatted time of day).
        "    day, second = divmod(created, 86400)",
        "    ca = DAYS.get(day) or day_prefix(day)",
        '    ca = f"{ca}{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"',
        "    day, second = divmod(updated, 86400)",
        "    ua = DAYS.get(day) or day_prefix(day)",
        '    ua = f"{ua}{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"',
        "    roll = (h2 >> 32) % 100",
        '    status = "ACTIVE" if roll < 93 else ("DRAFT" if roll < 98 else "ARCHIVED")',
        "    pid = PRODUCT_BASE + index",
        '    handle = f"{noun.lower()}-{index}"',
        "    vendor = VENDORS[(h >> 12) & 7]",
        "    ptype = PRODUCT_TYPES[(h >> 16) & 7]",
        "    tags = TAGS_ALL if h3 % 50 == 0 else tags_json(h3)",
        "    droll = (h3 >> 40) % 40",
        "    desc = '\"\"' if droll == 0 else (LONG if droll == 1 else f'\"<p>{title} — <b>great</b> value &amp; quality.</p><ul><li>Ünïcödé ✓</li><li>50% off</li></ul>\"')",
        "    published = f'\"{ca}\"' if status == 'ACTIVE' else 'null'",
        f"    product = {product_line}.encode()",
    ]
    if variant_parts is None:
        lines.append("    out.append(product)")
    else:
        shared, variant_parts = _per_product_runs(variant_parts)
        lines += [f"    {name} = f'{run}'" for name, run in shared]
        variant_line = "f'{{" + ",".join(variant_parts) + "}}\\n'"
        if order != "children_first":
            lines.append("    out.append(product)")
        lines += [
            "    count = CAP if HUGE and (h >> 40) % HUGE == 1 else min(CAP, 1 + (h >> 8) % SPAN)",
            "    names = option_names(count)",
            "    vbase = VARIANT_BASE + index * SLOTS",
            "    ibase = INVENTORY_ITEM_BASE + index * SLOTS",
            "    table = option_table(count, names)",
            "    for p in range(count):",
            "        number = vbase + p",
            *("    " + line for line in _mix("vh", "number")),
            "        vtitle, options = table[p]",
            "        item = ibase + p",
            "        stock = vh ^ (vh >> 17)",
            f"        quantity = {_quantity_expression(shape.locations)}",
            "        cents = 100 + vh % 99_900",
            "        sku = 'null' if (vh >> 24) % 50 == 0 else f'\"SKU-{index}-{p}\"'",
            # f"{cents / 100:.2f}" in integers: a double that close to a cent prints as that cent.
            "        price = f'{cents // 100}.{cents % 100:02d}'",
            "        compare = 'null' if (vh >> 20) % 3 else f'\"{cents * 5 // 400}.{cents * 5 // 4 % 100:02d}\"'",
            "        barcode = 'null' if (vh >> 28) & 3 == 0 else f'\"{400_000_000_000 + (vh >> 32) % 99_999_999_999}\"'",
            "        position = p + 1",
            f"        out.append({variant_line}.encode())",
        ]
        if order == "children_first":
            lines.append("    out.append(product)")
    source = "\n".join(lines) + "\n"
    tables: dict[int, list[tuple[str, str]]] = {}

    def option_table(count: int, names: list[str]) -> list[tuple[str, str]]:
        """(title JSON, selectedOptions JSON) per position, for products with `count` variants."""
        found = tables.get(count)
        if found is None:
            found = []
            for position in range(count):
                options, title = g._options_and_title(position, names)
                found.append(
                    (msgspec.json.encode(title).decode(), _options_json(options, option_keys))
                )
            tables[count] = found
        return found

    locations = shape.locations

    def quantity_of(item: int) -> int:
        return sum((g.mix(item + loc) & 127) - 10 for loc in range(locations))

    def tags_json(h: int) -> str:
        return msgspec.json.encode(g._tags(h)).decode()

    namespace: dict[str, Any] = {
        "mix": g.mix,
        "seed": seed,
        "NOUNS": g.NOUNS,
        "ADJECTIVES": g.ADJECTIVES,
        "EPOCH_START": g.EPOCH_START,
        "CREATED_SPAN_S": g.CREATED_SPAN_S,
        "UPDATED_SPAN_S": g.UPDATED_SPAN_S,
        "iso_int": g.iso_int,
        "PRODUCT_BASE": ids.PRODUCT_BASE,
        "VARIANT_BASE": ids.VARIANT_BASE,
        "INVENTORY_ITEM_BASE": ids.INVENTORY_ITEM_BASE,
        "SLOTS": ids.VARIANT_SLOTS,
        "VENDORS": _VENDORS,
        "PRODUCT_TYPES": g.PRODUCT_TYPES,
        "TAGS_ALL": _TAGS_ALL,
        "LONG": _LONG,
        "tags_json": tags_json,
        "SALT": seed * 0x100000001B3,
        "CAP": max(1, min(shape.variants_max, ids.VARIANT_SLOTS)),
        "HUGE": shape.huge_product_every if shape.huge_product_every > 0 else 0,
        "SPAN": max(1, round(2 * shape.variants_mean - 1)),
        "DAYS": g._DAYS,
        "day_prefix": g.day_prefix,
        "option_names": g._option_names,
        "option_table": option_table,
        "MASK": g.MASK,
        "quantity_of": quantity_of,
    }
    exec(compile(source, "<bulk fast products>", "exec"), namespace)  # noqa: S102 - built from the schema's field names, not from input
    emit: Emitter = namespace["emit"]
    return emit
