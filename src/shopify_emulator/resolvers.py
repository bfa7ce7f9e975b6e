"""Field resolvers, shared by GraphQL execution and the bulk writer.

A resolver takes (object, arguments, context) and returns plain data. Connections are described by a
*source*: an iterator of (sort key, node) from a starting key, which GraphQL pages with first/after and the
bulk writer drains whole. One table therefore decides what every field means, whichever path reads it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from shopify_emulator import catalog_index, ids, query_filter, variant_index
from shopify_emulator.catalog import visible_to
from shopify_emulator.context import Context, ResolveError
from shopify_emulator.model import (
    BulkOperation,
    Image,
    InventoryItem,
    InventoryLevel,
    Location,
    Metafield,
    Product,
    Variant,
)
from shopify_emulator.state import ShopState, WebhookSubscription
from shopify_emulator.variant_index import VARIANT_SORT_VALUES

Resolver = Callable[[Any, dict[str, Any], Context], Any]
Source = Callable[[Any, dict[str, Any], Context, int], Iterator[tuple[int, Any]]]

QUANTITY_NAMES = (
    "available",
    "on_hand",
    "committed",
    "incoming",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
)


def require_scope(ctx: Context, scope: str, field_name: str) -> None:
    read = scope
    write = scope.replace("read_", "write_")
    if ctx.shop.faults.take("access_denied") is not None or (
        read not in ctx.scopes and write not in ctx.scopes
    ):
        raise ResolveError(
            f"Access denied for {field_name} field. Required access: `{read}` access scope.",
            "ACCESS_DENIED",
        )


# -- cursors --------------------------------------------------------------------------------------
# Shopify's cursors are base64 JSON naming the last row: `{"last_id": 123, "last_value": "..."}`. A
# cursor is therefore stable: it names a row, not a position, so rows added or changed before it do not
# shift the next page.


def encode_cursor(key: Any) -> str:
    if isinstance(key, tuple):
        payload: dict[str, Any] = {"last_id": key[1], "last_value": key[0]}
    else:
        payload = {"last_id": key}
    return base64.urlsafe_b64encode(msgspec.json.encode(payload)).decode()


def decode_cursor(cursor: str | None) -> Any:
    """-1 without a cursor, the last id for id-ordered cursors, (last value, last id) otherwise."""
    if cursor is None:
        return -1
    try:
        payload = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
        last_id = payload["last_id"]
        if not isinstance(last_id, int):
            raise ValueError(cursor)
    except (ValueError, TypeError, KeyError, binascii.Error, msgspec.DecodeError) as exc:
        raise ResolveError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc
    if "last_value" in payload:
        return (payload["last_value"], last_id)
    return last_id


# -- sources (connections) ---------------------------------------------------------------------------


def _terms(args: dict[str, Any]) -> list[query_filter.Term]:
    try:
        return query_filter.parse(args.get("query"))
    except query_filter.FilterError as exc:
        raise ResolveError(str(exc)) from exc


def product_values(product: Product) -> dict[str, Any]:
    return {
        "updated_at": product.updated_at,
        "created_at": product.created_at,
        "published_at": product.created_at,
        "status": product.status,
        "id": product.id,
        "title": product.title,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "handle": product.handle,
        "tag": product.tags,
    }


def _after_entry(after: Any, sort_key: str, base: int) -> catalog_index.Entry | None:
    """A decoded cursor as a (sort value, product index) entry of the requested order."""
    if after == -1:
        return None
    if sort_key == "ID":
        if isinstance(after, tuple):
            raise ResolveError("Invalid cursor for current pagination sort.")
        return (after - base, after - base)
    if not isinstance(after, tuple):
        raise ResolveError("Invalid cursor for current pagination sort.")
    return (after[0], after[1] - base)


def _ordered_products(
    ctx: Context, args: dict[str, Any], terms: list[query_filter.Term], after: Any
) -> Iterator[tuple[Any, Product]]:
    """(cursor key, product) of every product matching `terms` in the requested order."""
    catalog = ctx.catalog
    sort_key = catalog_index.normalise_sort_key(args.get("sortKey"))
    reverse = bool(args.get("reverse"))
    entry = _after_entry(after, sort_key, ids.PRODUCT_BASE)
    if sort_key == "ID" and not reverse and not terms:
        # The full id-ordered walk (the core bulk export): no merge, no per-product entries.
        for product in catalog.iter_products(0 if entry is None else entry[1] + 1):
            yield product.id, product
        return
    for value, index in catalog_index.ordered_indexes(catalog, terms, sort_key, reverse, entry):
        found = catalog.product(index)
        if found is None or (terms and not matches(terms, product_values(found))):
            continue
        yield (found.id if sort_key == "ID" else (value, found.id)), found


def products_source(
    _: Any, args: dict[str, Any], ctx: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    require_scope(ctx, "read_products", "products")
    return _ordered_products(ctx, args, _terms(args), after)


def matches(terms: list[query_filter.Term], values: dict[str, Any]) -> bool:
    try:
        return query_filter.matches(terms, values)
    except query_filter.FilterError as exc:
        raise ResolveError(str(exc)) from exc


# Product-level terms that hold for every variant of a generated product: they narrow the products read.
_PRODUCT_LEVEL = ("updated_at", "created_at")


def _variant_values(product: Product, variant: Variant) -> dict[str, Any]:
    return {
        "updated_at": variant.updated_at,
        "created_at": variant.created_at,
        "product_id": product.id,
        "product_ids": product.id,
        "sku": variant.sku or "",
        "id": variant.id,
        "title": variant.title,
        "barcode": variant.barcode or "",
        "status": product.status,
        "product_status": product.status,
        "inventory_quantity": variant.inventory_quantity,
    }


def _variant_rows(
    ctx: Context, args: dict[str, Any], after_product: int, reverse: bool
) -> Iterator[Variant]:
    terms = _terms(args)
    narrowing = [t for t in terms if t.field in _PRODUCT_LEVEL]
    after: Any = -1 if after_product < 0 else ids.PRODUCT_BASE + after_product
    products = (
        _narrowed(ctx, narrowing, reverse, after)
        if narrowing
        else _ordered_products(ctx, {"reverse": reverse}, [], after)
    )
    for _, product in products:
        variants = reversed(product.variants) if reverse else product.variants
        for variant in variants:
            if not terms or matches(terms, _variant_values(product, variant)):
                yield variant


def _narrowed(
    ctx: Context, terms: list[query_filter.Term], reverse: bool, after: Any
) -> Iterator[tuple[Any, Product]]:
    """Products whose generated timestamps can match `terms` (variants and items share them)."""
    catalog = ctx.catalog
    entry = _after_entry(after, "ID", ids.PRODUCT_BASE)
    for _, index in catalog_index.ordered_indexes(catalog, terms, "ID", reverse, entry):
        product = catalog.product(index)
        if product is not None:
            yield product.id, product


def _variant_after(after: Any, reverse: bool) -> tuple[int, int]:
    """(product index to resume after, variant or item number) from an id cursor."""
    if after == -1:
        return -1, -1
    if isinstance(after, tuple):
        raise ResolveError("Invalid cursor for current pagination sort.")
    split = ids.split_variant_number(after)
    if split is None:
        raise ResolveError("Invalid cursor for current pagination sort.")
    # Resume inside the cursor's product: start the walk one product before (after, when reversed) it.
    return (split[0] + 1 if reverse else split[0] - 1), after


def variants_root_source(
    _: Any, args: dict[str, Any], ctx: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    require_scope(ctx, "read_products", "productVariants")
    reverse = bool(args.get("reverse"))
    sort_key = args.get("sortKey") or "ID"
    if sort_key in VARIANT_SORT_VALUES:
        return _sorted_variants(ctx, args, after, sort_key, reverse)
    product_after, number = _variant_after(after, reverse)
    return (
        (v.id, v)
        for v in _variant_rows(ctx, args, product_after, reverse)
        if number < 0 or (v.id < number if reverse else v.id > number)
    )


def _sorted_variants(
    ctx: Context, args: dict[str, Any], after: Any, sort_key: str, reverse: bool
) -> Iterator[tuple[Any, Any]]:
    # Variant orders other than id walk the catalog's variant index from the cursor; each variant
    # read is still checked against the query's terms.
    if after != -1 and not isinstance(after, tuple):
        raise ResolveError("Invalid cursor for current pagination sort.")
    terms = _terms(args)
    entry = None if after == -1 else (after[0], after[1])
    catalog = ctx.catalog
    for value, number in variant_index.ordered_variants(catalog, sort_key, reverse, entry):
        variant = catalog.variant_by_number(number)
        if variant is None:
            continue
        if terms:
            product = catalog.product(variant.product_index)
            if product is None or not matches(terms, _variant_values(product, variant)):
                continue
        yield (value, number), variant


def inventory_items_source(
    _: Any, args: dict[str, Any], ctx: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    require_scope(ctx, "read_inventory", "inventoryItems")
    reverse = bool(args.get("reverse"))
    product_after, number = _variant_after(after, reverse)
    for variant in _variant_rows(ctx, args, product_after, reverse):
        item = variant.inventory_item_id
        if number < 0 or (item < number if reverse else item > number):
            yield item, InventoryItem(variant)


def listed(items: list[Any], after: Any) -> Iterator[tuple[int, Any]]:
    """A short list paged by position (a product's variants, images, metafields)."""
    if isinstance(after, tuple):
        raise ResolveError("Invalid cursor for current pagination sort.")
    for position in range(after + 1, len(items)):
        yield position, items[position]


def _maybe_reversed(items: list[Any], args: dict[str, Any]) -> list[Any]:
    return list(reversed(items)) if args.get("reverse") else items


def product_variants_source(
    product: Product, args: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    variants = product.variants
    sort_key = args.get("sortKey")
    if sort_key in VARIANT_SORT_VALUES:
        variants = sorted(variants, key=lambda v: (VARIANT_SORT_VALUES[sort_key](v), v.id))
    return listed(_maybe_reversed(variants, args), after)


def product_images_source(
    product: Product, args: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    return listed(_maybe_reversed(product.images, args), after)


def _resolve_namespace(namespace: str | None, ctx: Context) -> str | None:
    if namespace is None:
        return None
    if namespace == "$app":
        return f"app--{ctx.app.api_client_id}"
    if namespace.startswith("$app:"):
        return f"app--{ctx.app.api_client_id}--{namespace[5:]}"
    return namespace


def _visible_metafields(
    fields: list[Metafield], args: dict[str, Any], ctx: Context
) -> list[Metafield]:
    namespace = _resolve_namespace(args.get("namespace"), ctx)
    keys = args.get("keys")
    app_id = ctx.app.api_client_id
    out = []
    for metafield in fields:
        if not visible_to(metafield.namespace, app_id):
            continue
        if namespace is not None and metafield.namespace != namespace:
            continue
        if keys is not None and f"{metafield.namespace}.{metafield.key}" not in keys:
            continue
        out.append(metafield)
    return out


def product_metafields_source(
    product: Product, args: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    fields = _visible_metafields(ctx.catalog.metafields(product), args, ctx)
    return listed(_maybe_reversed(fields, args), after)


def variant_metafields_source(
    variant: Variant, args: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    fields = _visible_metafields(ctx.catalog.variant_metafields(variant), args, ctx)
    return listed(_maybe_reversed(fields, args), after)


def levels_source(
    item: InventoryItem, _: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    for loc in range(after + 1, len(item.variant.available)):
        yield loc, InventoryLevel(item.variant, loc)


def locations_source(
    _: Any, args: dict[str, Any], ctx: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    # Every emulated location is active and none is a legacy (fulfillment-app) location, so
    # includeInactive and includeLegacy add nothing. Shopify's default order is by name.
    terms = _terms(args)
    sort_key = args.get("sortKey") or "NAME"
    rows = []
    for location in ctx.catalog.locations:
        values = {"id": location.id, "name": location.name, "active": "true", "legacy": "false"}
        if not terms or matches(terms, values):
            rows.append(
                ((location.name, location.id) if sort_key == "NAME" else location.id, location)
            )
    rows.sort(key=lambda row: row[0], reverse=bool(args.get("reverse")))
    for key, location in rows:
        if after == -1 or (key < after if args.get("reverse") else key > after):
            yield key, location


def subscriptions_source(
    _: Any, __: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    for sub_id in sorted(ctx.shop.subscriptions):
        sub = ctx.shop.subscriptions[sub_id]
        if sub_id > after and sub.client_id == ctx.app.client_id:
            yield sub_id, sub


def bulk_operations_source(
    _: Any, args: dict[str, Any], ctx: Context, after: int
) -> Iterator[tuple[int, Any]]:
    terms = _terms(args)
    ops = [op for op in ctx.shop.bulk_operations.values() if op.client_id == ctx.app.client_id]
    reverse = bool(args.get("reverse"))
    ops.sort(key=lambda op: op.number, reverse=reverse)
    for op in ops:
        values = {
            "status": op.status,
            "operation_type": op.type,
            "created_at": op.created_at,
            "id": op.number,
        }
        past = after < 0 or (op.number < after if reverse else op.number > after)
        if past and matches(terms, values):
            yield op.number, op


SOURCES: dict[str, dict[str, Source]] = {
    "QueryRoot": {
        "products": products_source,
        "productVariants": variants_root_source,
        "inventoryItems": inventory_items_source,
        "locations": locations_source,
        "webhookSubscriptions": subscriptions_source,
        "bulkOperations": bulk_operations_source,
    },
    "Product": {
        "variants": product_variants_source,
        "images": product_images_source,
        "metafields": product_metafields_source,
    },
    "ProductVariant": {"metafields": variant_metafields_source},
    "InventoryItem": {"inventoryLevels": levels_source},
}

# Sources whose `reverse` argument flips their order with the cursor still naming a row, so a backward
# page (`last`/`before`) is the flipped order read from the cursor. The others are short per-object
# lists whose cursors are positions (paged backward by reading them whole).
REVERSIBLE: frozenset[Source] = frozenset(
    {
        products_source,
        variants_root_source,
        inventory_items_source,
        locations_source,
        bulk_operations_source,
    }
)

# -- object fields -----------------------------------------------------------------------------------


def _product_gid(p: Product, _: dict[str, Any], __: Context) -> str:
    return ids.gid("Product", p.id)


def _options(p: Product, args: dict[str, Any], __: Context) -> list[dict[str, Any]]:
    out = []
    for position, name in enumerate(p.option_names):
        values: list[str] = []
        for variant in p.variants:
            value = next(v for n, v in variant.options if n == name)
            if value not in values:
                values.append(value)
        out.append(
            {
                "id": ids.gid("ProductOption", p.id * 4 + position),
                "name": name,
                "position": position + 1,
                "values": values,
                "linkedMetafield": None,
                "optionValues": [
                    {
                        "id": ids.gid(
                            "ProductOptionValue",
                            ids.OPTION_VALUE_BASE
                            + (p.index * 4 + position) * ids.VARIANT_SLOTS
                            + n,
                        ),
                        "name": value,
                        "hasVariants": True,
                        "linkedMetafieldValue": None,
                    }
                    for n, value in enumerate(values)
                ],
            }
        )
    limit = args.get("first")
    return out if limit is None else out[:limit]


def _single_metafield(
    fields: list[Metafield], args: dict[str, Any], ctx: Context
) -> Metafield | None:
    namespace = _resolve_namespace(args.get("namespace"), ctx)
    for metafield in _visible_metafields(fields, {}, ctx):
        if metafield.key == args["key"] and (namespace is None or metafield.namespace == namespace):
            return metafield
    return None


PRODUCT_FIELDS: dict[str, Resolver] = {
    "id": _product_gid,
    "legacyResourceId": lambda p, a, c: str(p.id),
    "handle": lambda p, a, c: p.handle,
    "title": lambda p, a, c: p.title,
    "vendor": lambda p, a, c: p.vendor,
    "productType": lambda p, a, c: p.product_type,
    "status": lambda p, a, c: p.status,
    "tags": lambda p, a, c: p.tags,
    "descriptionHtml": lambda p, a, c: p.description_html,
    "createdAt": lambda p, a, c: p.created_at,
    "updatedAt": lambda p, a, c: p.updated_at,
    "totalInventory": lambda p, a, c: sum(v.inventory_quantity for v in p.variants),
    "options": _options,
    "variantsCount": lambda p, a, c: {"count": len(p.variants), "precision": "EXACT"},
    "metafield": lambda p, a, c: _single_metafield(c.catalog.metafields(p), a, c),
}


def _variant_gid(v: Variant, _: dict[str, Any], __: Context) -> str:
    return ids.gid("ProductVariant", v.id)


def _selected_options(v: Variant, _: dict[str, Any], __: Context) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in v.options]


def _variant_product(v: Variant, _: dict[str, Any], ctx: Context) -> Product | None:
    return ctx.catalog.product(v.product_index)


VARIANT_FIELDS: dict[str, Resolver] = {
    "id": _variant_gid,
    "legacyResourceId": lambda v, a, c: str(v.id),
    "title": lambda v, a, c: v.title,
    "displayName": lambda v, a, c: v.title,
    "sku": lambda v, a, c: v.sku,
    "price": lambda v, a, c: v.price,
    "compareAtPrice": lambda v, a, c: v.compare_at_price,
    "barcode": lambda v, a, c: v.barcode,
    "position": lambda v, a, c: v.position,
    "inventoryQuantity": lambda v, a, c: v.inventory_quantity,
    "createdAt": lambda v, a, c: v.created_at,
    "updatedAt": lambda v, a, c: v.updated_at,
    "selectedOptions": _selected_options,
    "inventoryItem": lambda v, a, c: InventoryItem(v),
    "product": _variant_product,
    "metafield": lambda v, a, c: _single_metafield(c.catalog.variant_metafields(v), a, c),
}


def _level_for(item: InventoryItem, args: dict[str, Any], ctx: Context) -> InventoryLevel | None:
    parsed = ids.parse_gid(args["locationId"])
    if parsed is None or parsed[0] != "Location":
        return None
    loc = parsed[1] - ids.LOCATION_BASE
    return InventoryLevel(item.variant, loc) if 0 <= loc < len(item.variant.available) else None


INVENTORY_ITEM_FIELDS: dict[str, Resolver] = {
    "id": lambda i, a, c: ids.gid("InventoryItem", i.variant.inventory_item_id),
    "legacyResourceId": lambda i, a, c: str(i.variant.inventory_item_id),
    "sku": lambda i, a, c: i.variant.sku,
    "tracked": lambda i, a, c: True,
    "createdAt": lambda i, a, c: i.variant.created_at,
    "updatedAt": lambda i, a, c: max(i.variant.level_updated_at, default=i.variant.updated_at),
    "variant": lambda i, a, c: i.variant,
    "inventoryLevel": _level_for,
}


def _quantities(level: InventoryLevel, args: dict[str, Any], _: Context) -> list[dict[str, Any]]:
    available = level.variant.available[level.location_index]
    stamp = level.variant.level_updated_at[level.location_index]
    item = level.variant.inventory_item_id
    location = ids.location_id(level.location_index)
    out = []
    for name in args.get("names", ()):
        if name not in QUANTITY_NAMES:
            raise ResolveError(f"Invalid quantity name {name!r}.")
        quantity = available if name in ("available", "on_hand") else 0
        out.append(
            {
                "id": f"gid://shopify/InventoryQuantity/{location}"
                f"?inventory_item_id={item}&quantity_name={name}",
                "name": name,
                "quantity": quantity,
                "updatedAt": stamp,
            }
        )
    return out


LEVEL_FIELDS: dict[str, Resolver] = {
    "id": lambda lv, a, c: ids.level_gid(lv.variant.inventory_item_id, lv.location_index),
    "location": lambda lv, a, c: c.catalog.locations[lv.location_index],
    "item": lambda lv, a, c: InventoryItem(lv.variant),
    "quantities": _quantities,
    "createdAt": lambda lv, a, c: lv.variant.created_at,
    "updatedAt": lambda lv, a, c: lv.variant.level_updated_at[lv.location_index],
}

LOCATION_FIELDS: dict[str, Resolver] = {
    "id": lambda loc, a, c: ids.gid("Location", loc.id),
    "name": lambda loc, a, c: loc.name,
    "isActive": lambda loc, a, c: True,
}

METAFIELD_FIELDS: dict[str, Resolver] = {
    "id": lambda m, a, c: ids.gid("Metafield", m.id),
    "namespace": lambda m, a, c: m.namespace,
    "key": lambda m, a, c: m.key,
    "type": lambda m, a, c: m.type,
    "value": lambda m, a, c: m.value,
    "jsonValue": lambda m, a, c: _json_value(m),
    "ownerType": lambda m, a, c: "PRODUCTVARIANT" if "ProductVariant" in m.owner_gid else "PRODUCT",
    "createdAt": lambda m, a, c: m.created_at,
    "updatedAt": lambda m, a, c: m.updated_at,
}


def _json_value(metafield: Metafield) -> Any:
    if metafield.type == "json":
        return msgspec.json.decode(metafield.value)
    if metafield.type == "number_integer":
        return int(metafield.value)
    if metafield.type == "boolean":
        return metafield.value == "true"
    return metafield.value


IMAGE_FIELDS: dict[str, Resolver] = {
    "id": lambda i, a, c: ids.gid("ProductImage", i.id),
    "url": lambda i, a, c: i.url,
    "altText": lambda i, a, c: i.alt_text,
    "width": lambda i, a, c: i.width,
    "height": lambda i, a, c: i.height,
}

SHOP_FIELDS: dict[str, Resolver] = {
    "id": lambda s, a, c: ids.gid("Shop", s.shop_id),
    "name": lambda s, a, c: s.shop_json()["name"],
    "email": lambda s, a, c: s.shop_json()["email"],
    "myshopifyDomain": lambda s, a, c: s.domain,
    "url": lambda s, a, c: f"https://{s.domain}",
    "currencyCode": lambda s, a, c: "EUR",
    "ianaTimezone": lambda s, a, c: "Europe/Bucharest",
    "plan": lambda s, a, c: {
        "displayName": s.config.plan.title(),
        "partnerDevelopment": False,
        "shopifyPlus": s.config.plan in ("plus", "enterprise"),
        "publicDisplayName": s.config.plan.title(),
    },
}


def _bulk_url(op: BulkOperation, partial: bool, ctx: Context) -> str | None:
    if ctx.bulk is None:
        return None
    return ctx.bulk.url_for(op, partial=partial, base_url=ctx.base_url)


BULK_FIELDS: dict[str, Resolver] = {
    "id": lambda o, a, c: o.gid,
    "status": lambda o, a, c: o.status_now(c.state.config.bulk_url_ttl_s, c.state.clock.time()),
    "errorCode": lambda o, a, c: o.error_code,
    "createdAt": lambda o, a, c: o.created_at,
    "completedAt": lambda o, a, c: o.completed_at,
    # UnsignedInt64 serialises as a string in Shopify's schema.
    "objectCount": lambda o, a, c: str(o.object_count),
    "rootObjectCount": lambda o, a, c: str(o.root_object_count),
    "fileSize": lambda o, a, c: None if o.file_size is None else str(o.file_size),
    "url": lambda o, a, c: _bulk_url(o, False, c),
    "partialDataUrl": lambda o, a, c: _bulk_url(o, True, c),
    "query": lambda o, a, c: o.query,
    "type": lambda o, a, c: o.type,
}

SUBSCRIPTION_FIELDS: dict[str, Resolver] = {
    "id": lambda s, a, c: ids.gid("WebhookSubscription", s.id),
    "topic": lambda s, a, c: s.topic,
    "format": lambda s, a, c: s.format,
    "uri": lambda s, a, c: s.uri,
    "callbackUrl": lambda s, a, c: s.uri,
    "endpoint": lambda s, a, c: {"__typename": "WebhookHttpEndpoint", "callbackUrl": s.uri},
    "apiVersion": lambda s, a, c: s.api_version,
    "createdAt": lambda s, a, c: s.created_at,
}

FIELDS: dict[str, dict[str, Resolver]] = {
    "Product": PRODUCT_FIELDS,
    "ProductVariant": VARIANT_FIELDS,
    "InventoryItem": INVENTORY_ITEM_FIELDS,
    "InventoryLevel": LEVEL_FIELDS,
    "Location": LOCATION_FIELDS,
    "Metafield": METAFIELD_FIELDS,
    "Image": IMAGE_FIELDS,
    "Shop": SHOP_FIELDS,
    "BulkOperation": BULK_FIELDS,
    "WebhookSubscription": SUBSCRIPTION_FIELDS,
}

TYPE_NAMES: dict[type, str] = {
    Product: "Product",
    Variant: "ProductVariant",
    InventoryItem: "InventoryItem",
    InventoryLevel: "InventoryLevel",
    Location: "Location",
    Metafield: "Metafield",
    Image: "Image",
    ShopState: "Shop",
    WebhookSubscription: "WebhookSubscription",
    BulkOperation: "BulkOperation",
}


def type_name_of(obj: Any) -> str | None:
    return TYPE_NAMES.get(type(obj))


# -- lookups by id ------------------------------------------------------------------------------------


def find_node(gid_value: str, ctx: Context) -> Any:
    parsed = ids.parse_gid(gid_value)
    if parsed is None:
        raise ResolveError(f"Invalid global id '{gid_value}'", "BAD_REQUEST")
    kind, number = parsed
    catalog = ctx.catalog
    if kind == "Product":
        return catalog.product_by_id(number)
    if kind == "ProductVariant":
        return catalog.variant_by_number(number)
    if kind == "InventoryItem":
        variant = catalog.variant_by_number(number)
        return None if variant is None else InventoryItem(variant)
    if kind == "InventoryLevel":
        level = ids.parse_level_gid(gid_value)
        if level is None:
            raise ResolveError(f"Invalid global id '{gid_value}'", "BAD_REQUEST")
        item_id, loc = level
        variant = catalog.variant_by_number(item_id)
        return (
            None
            if variant is None or not 0 <= loc < len(variant.available)
            else InventoryLevel(variant, loc)
        )
    if kind == "Location":
        loc = number - ids.LOCATION_BASE
        return catalog.locations[loc] if 0 <= loc < len(catalog.locations) else None
    if kind == "Metafield":
        return _find_metafield(number, ctx)
    if kind == "BulkOperation":
        op = ctx.shop.bulk_operations.get(number)
        return op if op is not None and op.client_id == ctx.app.client_id else None
    if kind == "WebhookSubscription":
        sub = ctx.shop.subscriptions.get(number)
        return sub if sub is not None and sub.client_id == ctx.app.client_id else None
    if kind == "Shop":
        return ctx.shop if number == ctx.shop.shop_id else None
    return None


def _find_metafield(number: int, ctx: Context) -> Metafield | None:
    catalog = ctx.catalog
    fields: list[Metafield] = []
    if number >= ids.VARIANT_METAFIELD_BASE:
        slot = (number - ids.VARIANT_METAFIELD_BASE) // ids.VARIANT_METAFIELD_SLOTS
        variant = catalog.variant_by_number(ids.VARIANT_BASE + slot)
        fields = catalog.variant_metafields(variant) if variant else []
    elif number >= ids.PRODUCT_METAFIELD_BASE:
        index = (number - ids.PRODUCT_METAFIELD_BASE) // ids.PRODUCT_METAFIELD_SLOTS
        product = catalog.product(index)
        fields = catalog.metafields(product) if product else []
    for metafield in fields:
        if metafield.id == number and visible_to(metafield.namespace, ctx.app.api_client_id):
            return metafield
    return None


def find_typed(gid_value: str, kind: str, ctx: Context) -> Any:
    parsed = ids.parse_gid(gid_value)
    if parsed is None or parsed[0] != kind:
        raise ResolveError(f"Invalid id: {gid_value}", "BAD_REQUEST")
    return find_node(gid_value, ctx)
