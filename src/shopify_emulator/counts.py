"""The `...Count` root fields: Shopify's `Count { count precision }`, capped at `limit`."""

from __future__ import annotations

from typing import Any

from shopify_emulator import resolvers as r
from shopify_emulator.context import Context

DEFAULT_LIMIT = 10_000


def _capped(total: int, args: dict[str, Any]) -> dict[str, Any]:
    limit = args.get("limit", DEFAULT_LIMIT)
    if limit is not None and total > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": total, "precision": "EXACT"}


def _counted(source: r.Source, args: dict[str, Any], ctx: Context) -> int:
    limit = args.get("limit", DEFAULT_LIMIT)
    total = 0
    for _ in source(None, {"query": args.get("query")}, ctx, -1):
        total += 1
        if limit is not None and total > limit:
            break
    return total


def products_count(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    r.require_scope(ctx, "read_products", "productsCount")
    if not args.get("query"):
        return _capped(ctx.catalog.product_count(), args)
    return _capped(_counted(r.products_source, args, ctx), args)


def variants_count(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    r.require_scope(ctx, "read_products", "productVariantsCount")
    if not args.get("query"):
        return _capped(ctx.catalog.counts().variants, args)
    return _capped(_counted(r.variants_root_source, args, ctx), args)


def locations_count(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _capped(_counted(r.locations_source, args, ctx), args)


def subscriptions_count(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _capped(_counted(r.subscriptions_source, args, ctx), args)
