"""Catalog write mutations: `productUpdate`, `productSet` and `metafieldsSet`.

They change products through the catalog overlay, exactly as the control API does, and fire
`products/update`. They run alone or as the lines of a bulk mutation (`bulkOperationRunMutation`), where
each line of the staged JSONL is one call's variables.
"""

from __future__ import annotations

from typing import Any

from shopify_emulator import ids
from shopify_emulator import resolvers as r
from shopify_emulator.context import Context, ResolveError
from shopify_emulator.model import Product
from shopify_emulator.webhooks import product_payload

_PRODUCT_INPUTS = {
    "title": "title",
    "handle": "handle",
    "descriptionHtml": "description_html",
    "vendor": "vendor",
    "productType": "product_type",
    "status": "status",
    "tags": "tags",
}
METAFIELD_TYPES = (
    "single_line_text_field",
    "multi_line_text_field",
    "number_integer",
    "number_decimal",
    "json",
    "boolean",
    "date",
    "date_time",
    "url",
)


def _require_write(ctx: Context, field: str) -> None:
    if "write_products" not in ctx.scopes:
        raise ResolveError(
            f"Access denied for {field} field. Required access: `write_products` access scope.",
            "ACCESS_DENIED",
        )


def _changes(data: dict[str, Any]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name, target in _PRODUCT_INPUTS.items():
        if data.get(name) is not None:
            fields[target] = data[name]
    metafields = data.get("metafields")
    if metafields:
        fields["metafields"] = [
            {
                "namespace": m.get("namespace") or "custom",
                "key": m["key"],
                "value": m["value"],
                "type": m.get("type") or "single_line_text_field",
            }
            for m in metafields
        ]
    return fields


def _apply(ctx: Context, index: int, fields: dict[str, object]) -> Product | None:
    product = ctx.catalog.update_product(index, fields)
    if product is not None and ctx.dispatcher is not None:
        ctx.dispatcher.fire(ctx.shop, "PRODUCTS_UPDATE", product_payload(product))
    return product


def _product_index(ctx: Context, gid_value: str | None) -> int | None:
    parsed = ids.parse_gid(gid_value or "")
    if parsed is None or parsed[0] != "Product":
        return None
    index = parsed[1] - ids.PRODUCT_BASE
    return index if ctx.catalog.product(index) is not None else None


def product_update(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    _require_write(ctx, "productUpdate")
    data = args.get("product") or args.get("input") or {}
    index = _product_index(ctx, data.get("id"))
    if index is None:
        return {
            "product": None,
            "userErrors": [{"field": ["id"], "message": "Product does not exist"}],
        }
    try:
        product = _apply(ctx, index, _changes(data))
    except ValueError as exc:
        return {"product": None, "userErrors": [{"field": ["product"], "message": str(exc)}]}
    return {"product": product, "userErrors": []}


def product_set(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    _require_write(ctx, "productSet")
    data = args["input"]
    identifier = args.get("identifier") or {}
    index = _product_index(ctx, identifier.get("id") or data.get("id"))
    if index is None and identifier.get("handle"):
        index = _by_handle(ctx, str(identifier["handle"]))
    fields = _changes(data)
    product: Product | None
    try:
        if index is None:
            if not data.get("title"):
                return _set_error(["input", "title"], "Title can't be blank", "INVALID_INPUT")
            product = ctx.catalog.create_product(str(data["title"]), fields)
            if ctx.dispatcher is not None:
                ctx.dispatcher.fire(ctx.shop, "PRODUCTS_CREATE", product_payload(product))
        else:
            product = _apply(ctx, index, fields)
    except ValueError as exc:
        return _set_error(["input"], str(exc), "INVALID_INPUT")
    return {"product": product, "productSetOperation": None, "userErrors": []}


def _by_handle(ctx: Context, handle: str) -> int | None:
    """The product with `handle`: changed products first, then the generated one the handle names."""
    for index, product in ctx.catalog.overlay.items():
        if product is not None and product.handle == handle:
            return index
    _, _, suffix = handle.rpartition("-")
    if suffix.isdigit():
        product = ctx.catalog.product(int(suffix))
        if (
            product is not None
            and product.handle == handle
            and int(suffix) not in ctx.catalog.overlay
        ):
            return int(suffix)
    return None


def _set_error(field: list[str], message: str, code: str) -> dict[str, Any]:
    return {
        "product": None,
        "productSetOperation": None,
        "userErrors": [{"field": field, "message": message, "code": code}],
    }


def metafields_set(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    _require_write(ctx, "metafieldsSet")
    items = args["metafields"]
    if len(items) > 25:
        return _metafield_error(
            0,
            ["metafields"],
            "Exceeded the maximum metafields input limit of 25.",
            "LESS_THAN_OR_EQUAL_TO",
        )
    by_owner: dict[int, list[dict[str, Any]]] = {}
    for n, item in enumerate(items):
        index = _product_index(ctx, item["ownerId"])
        if index is None:
            return _metafield_error(
                n, ["metafields", str(n), "ownerId"], "Owner does not exist.", "INVALID"
            )
        kind = item.get("type") or "single_line_text_field"
        if kind not in METAFIELD_TYPES:
            return _metafield_error(
                n,
                ["metafields", str(n), "type"],
                f"Type '{kind}' is not a valid type.",
                "INVALID_TYPE",
            )
        by_owner.setdefault(index, []).append(
            {
                "namespace": item.get("namespace") or "custom",
                "key": item["key"],
                "value": item["value"],
                "type": kind,
            }
        )
    written = []
    for index, metafields in by_owner.items():
        product = _apply(ctx, index, {"metafields": metafields})
        assert product is not None
        wanted = {(m["namespace"], m["key"]) for m in metafields}
        written += [m for m in ctx.catalog.metafields(product) if (m.namespace, m.key) in wanted]
    return {"metafields": written, "userErrors": []}


def _metafield_error(index: int, field: list[str], message: str, code: str) -> dict[str, Any]:
    return {
        "metafields": [],
        "userErrors": [{"field": field, "message": message, "code": code, "elementIndex": index}],
    }


MUTATIONS: dict[str, r.Resolver] = {
    "productUpdate": product_update,
    "productSet": product_set,
    "metafieldsSet": metafields_set,
}
