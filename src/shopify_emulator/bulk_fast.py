"""JSONL lines of generated products written straight from the generator's draws.

The full export every client starts with (products with their variants, in id order) is most of what a
bulk run ever writes. For a plan that selects only the fields below, the lines of *generated* products
(never ones from the overlay) are produced a batch at a time by one compiled function: the draws of the
whole batch come as columns from `bulk_draws` (vectorised), and each line is one f-string filling a line
template, with no Product or Variant object, no dict and no JSON encoder in between.
Each expression must give exactly the bytes the general path gives (msgspec over the resolver's value);
`tests/emulator/test_bulk_fast.py` compares the two for thousands of products and several shapes, and
pins the digest of a whole export.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from typing import Any

import msgspec

from shopify_emulator import bulk_draws, ids
from shopify_emulator import generator as g
from shopify_emulator.config import CatalogShape

# Writes the line groups (one list of lines per product) of the generated products whose indexes
# (ascending) it is given.
Emitter = Callable[[bulk_draws.I64, list[list[bytes]]], None]

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
_LONG = msgspec.json.encode(g.LONG_PARAGRAPH * 60).decode()


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


@functools.cache
def _option_tables(
    cap: int, option_keys: tuple[tuple[str, str], ...]
) -> tuple[bulk_draws.Column, bulk_draws.Column]:
    """The option tables of a selection, built once per process: thousands of positions, which a
    small date-windowed export paid for again on every run."""
    return bulk_draws.option_tables(cap, lambda pairs: _options_json(pairs, list(option_keys)))


# Per-line statements, each written only when the line template uses the name it sets.
_PRODUCT_STATEMENTS = (
    ("title", 'title = f"{prefix}{index}"'),
    ("pid", "pid = PRODUCT_BASE + index"),
    ("handle", 'handle = f"{hprefix}{index}"'),
    (
        "desc",
        "desc = '\"\"' if droll == 0 else (LONG if droll == 1 else f'\"<p>{title} — <b>great</b> "
        "value &amp; quality.</p><ul><li>Ünïcödé ✓</li><li>50% off</li></ul>\"')",
    ),
    ("published", "published = f'\"{ca}\"' if status == 'ACTIVE' else 'null'"),
)
_DESC_TAIL = ' — <b>great</b> value &amp; quality.</p><ul><li>Ünïcödé ✓</li><li>50% off</li></ul>"'
_DESC_BYTES = (
    "desc = b'\"\"' if droll == 0 else (LONG_BYTES if droll == 1 else "
    "b'\"<p>' + title.encode() + DESC_TAIL)"
)
_VARIANT_STATEMENTS = (
    ("sku", "sku = f'\"SKU-{index}-{p}\"' if sku_drawn else 'null'"),
    ("barcode", "barcode = f'\"{barcode}\"' if barcode else 'null'"),
    ("position", "position = p + 1"),
)


def _used(template: str, statements: tuple[tuple[str, str], ...]) -> list[str]:
    """The statements whose names the template (or a later statement) reads, in order."""
    wanted = set(_PLACEHOLDER.findall(template))
    kept: list[str] = []
    for name, statement in reversed(statements):
        if name in wanted:
            kept.append(statement)
            wanted |= set(re.findall(r"\{(\w+)\}", statement.partition("=")[2]))
    return kept[::-1]


def _build(
    product_parts: list[str],
    variant_parts: list[str] | None,
    option_keys: list[tuple[str, str]],
    order: str,
    shape: CatalogShape,
    seed: int,
) -> Emitter:
    product_template = "{{" + ",".join(product_parts) + "}}\\n"
    lines = [
        "def emit(indexes, out):",
        "    batch = Batch(SHAPE, SEED, indexes)",
    ]
    if variant_parts is not None:
        lines.append("    variants = zip(*batch.variants(OPTIONS, TITLES))")
    lines += [
        "    for index, prefix, hprefix, vendor, ptype, status, tags, droll, ca, ua, count in zip(",
        "        batch.index, batch.title_prefixes(), batch.handle_prefixes(), batch.vendors(),",
        "        batch.product_types(), batch.statuses(), batch.tags(), batch.description_rolls(),",
        "        batch.created_stamps(), batch.updated_stamps(), batch.counts(),",
        "    ):",
    ]
    shared: list[tuple[str, str]] = []
    variant_template = ""
    if variant_parts is not None:
        shared, variant_parts = _per_product_runs(variant_parts)
        variant_template = "{{" + ",".join(variant_parts) + "}}\\n"
    # `pid` for the variants' shared runs (their __parentId) counts as used by the product.
    runs = " ".join(run for _, run in shared)
    statements = _used(product_template + runs, _PRODUCT_STATEMENTS)
    if product_template.count("{desc}") == 1:
        # The description as bytes around the line's two halves: the long one (non-ASCII, 10 kB)
        # is encoded once per process, and the short one's non-ASCII tail no longer widens the
        # whole line's string before it is encoded.
        before, after = product_template.split("{desc}")
        statements = [_DESC_BYTES if s.startswith("desc =") else s for s in statements]
        lines += [f"        {s}" for s in statements]
        lines.append(f"        product = f'{before}'.encode() + desc + f'{after}'.encode()")
    else:
        lines += [f"        {s}" for s in statements]
        lines.append(f"        product = f'{product_template}'.encode()")
    if variant_parts is None:
        lines.append("        out.append([product])")
    else:
        lines += [f"        {name} = f'{run}'" for name, run in shared]
        lines += [
            "        vbase = VARIANT_BASE + index * SLOTS",
            "        group = []" if order == "children_first" else "        group = [product]",
            "        for number, item, sku_drawn, vtitle, options, price, compare, barcode, quantity"
            " in islice(variants, count):",
            "            p = number - vbase",
            *(f"            {s}" for s in _used(variant_template, _VARIANT_STATEMENTS)),
            f"            group.append(f'{variant_template}'.encode())",
        ]
        if order == "children_first":
            lines.append("        group.append(product)")
        lines.append("        out.append(group)")
    cap = max(1, min(shape.variants_max, ids.VARIANT_SLOTS))
    titles, options = _option_tables(cap, tuple(option_keys))
    return exec_emitter(
        lines,
        "products",
        shape,
        seed,
        OPTIONS=options,
        TITLES=titles,
        PRODUCT_BASE=ids.PRODUCT_BASE,
        VARIANT_BASE=ids.VARIANT_BASE,
        SLOTS=ids.VARIANT_SLOTS,
        LONG=_LONG,
        LONG_BYTES=_LONG.encode(),
        DESC_TAIL=_DESC_TAIL.encode(),
    )


def root_group(
    indent: str,
    root_template: str,
    loop: str,
    statements: list[str],
    child_template: str,
    order: str,
) -> list[str]:
    """The statements that write one root object's group: its line, then (before it when children
    come first) a line per child of `loop`, each after `statements`."""
    children_first = order == "children_first"
    lines = [
        f"{indent}line = f'{root_template}'.encode()",
        f"{indent}group = []" if children_first else f"{indent}group = [line]",
        f"{indent}for {loop}:",
        *(f"{indent}    {s}" for s in statements),
        f"{indent}    group.append(f'{child_template}'.encode())",
    ]
    if children_first:
        lines.append(f"{indent}group.append(line)")
    lines.append(f"{indent}out.append(group)")
    return lines


def exec_emitter(
    lines: list[str], name: str, shape: CatalogShape, seed: int, **names: Any
) -> Emitter:
    """Compile an emitter's source; it sees the batch draws, the catalog's shape and seed, `islice`
    and `names`. The tables the draws use are built first, so forked writers share them."""
    bulk_draws.warm()
    namespace: dict[str, Any] = {
        "Batch": bulk_draws.Batch,
        "SHAPE": shape,
        "SEED": seed,
        "islice": itertools.islice,
        **names,
    }
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<bulk fast {name}>", "exec"), namespace)  # noqa: S102 - built from the schema's field names, not from input
    emit: Emitter = namespace["emit"]
    return emit
