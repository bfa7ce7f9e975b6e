"""The Admin GraphQL endpoint's core: schema, resolver wiring, cost and the leaky bucket.

HTTP concerns (host, token, faults) live in `admin.py`; this module turns a parsed request body into
Shopify's response body.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)

from shopify_emulator import catalog_fields, counts, mutations
from shopify_emulator import resolvers as r
from shopify_emulator.catalog import now_iso
from shopify_emulator.context import Context, ResolveError
from shopify_emulator.cost import CostCalculator
from shopify_emulator.state import WebhookSubscription

MAX_PAGE = 250
BULK_POLLING_VERSION = "2026-01"


@functools.cache
def schema() -> GraphQLSchema:
    sdl = resources.files("shopify_emulator").joinpath("schema.graphql").read_text("utf-8")
    built = build_schema(sdl)
    _wire(built)
    return built


def _as_graphql_error(exc: ResolveError) -> GraphQLError:
    return GraphQLError(str(exc), extensions={"code": exc.code})


def _object_field(fn: r.Resolver, counts: bool) -> Callable[..., Any]:
    def resolve(obj: Any, info: Any, **args: Any) -> Any:
        ctx: Context = info.context
        try:
            value = fn(obj, args, ctx)
        except ResolveError as exc:
            raise _as_graphql_error(exc) from exc
        if counts and value is not None:
            ctx.actual_cost += len(value) if isinstance(value, list) else 1
        return value

    return resolve


def _page_size(args: dict[str, Any]) -> tuple[int, bool]:
    """(page size, whether the page runs backward) from first/after or last/before, Shopify's errors
    otherwise."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError(
            "you must provide one of first or last", extensions={"code": "BAD_REQUEST"}
        )
    if first is not None and last is not None:
        raise GraphQLError(
            "Passing both `first` and `last` to paginate the connection is not supported.",
            extensions={"code": "BAD_REQUEST"},
        )
    name, size = ("first", first) if first is not None else ("last", last)
    assert size is not None
    if size > MAX_PAGE or size < 0:
        raise GraphQLError(f"The {name} argument must be between 0 and {MAX_PAGE}.")
    backward = last is not None
    # A page is a run of rows on one side of one cursor: `after` bounds a forward page, `before` a
    # backward one. The emulator does not cut a page from both ends.
    if args.get("before" if not backward else "after") is not None:
        raise GraphQLError(
            "The emulator pages with first/after or last/before, not first/before or last/after.",
            extensions={"code": "BAD_REQUEST"},
        )
    return size, backward


def _backward(
    source: r.Source, obj: Any, args: dict[str, Any], ctx: Context, size: int
) -> list[tuple[Any, Any]]:
    """Up to `size + 1` rows immediately before the `before` cursor (all rows from the end without
    it), in the connection's own order. A source whose order `reverse` flips is read flipped from
    the cursor, so a backward page costs what a forward one does; the short per-object lists (a
    product's variants, images, metafields, an item's levels, subscriptions) are read whole."""
    before = r.decode_cursor(args.get("before"))
    if source in r.REVERSIBLE:
        flipped = {**args, "reverse": not args.get("reverse")}
        items = list(itertools.islice(source(obj, flipped, ctx, before), size + 1))
        items.reverse()
        return items
    items = [
        (key, node) for key, node in source(obj, args, ctx, -1) if before == -1 or key < before
    ]
    return items[-(size + 1) :]


def _connection_field(source: r.Source) -> Callable[..., Any]:
    def resolve(obj: Any, info: Any, **args: Any) -> Any:
        ctx: Context = info.context
        size, backward = _page_size(args)
        try:
            if backward:
                items = _backward(source, obj, args, ctx, size)
                more = len(items) > size
                items = items[max(0, len(items) - size) :]
            else:
                after = r.decode_cursor(args.get("after"))
                items = list(itertools.islice(source(obj, args, ctx, after), size + 1))
                more = len(items) > size
                items = items[:size]
        except ResolveError as exc:
            raise _as_graphql_error(exc) from exc
        ctx.actual_cost += 2 + len(items)
        edges = [{"cursor": r.encode_cursor(key), "node": node} for key, node in items]
        # The side the page was read towards is known exactly; the side it came from is known to
        # hold rows when a cursor was given (the cursor's own row, at least, as Shopify reports it).
        has_next = (args.get("before") is not None) if backward else more
        has_previous = more if backward else args.get("after") is not None
        return {
            "edges": edges,
            "nodes": [node for _, node in items],
            "pageInfo": {
                "hasNextPage": has_next,
                "hasPreviousPage": has_previous,
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    return resolve


def _wire(built: GraphQLSchema) -> None:
    for type_name, fields in catalog_fields.FIELDS.items():
        gtype = built.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType)
        for name, fn in fields.items():
            named = get_named_type(gtype.fields[name].type)
            gtype.fields[name].resolve = _object_field(fn, not is_leaf_type(named))
    for type_name, sources in catalog_fields.SOURCES.items():
        gtype = built.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType)
        for name, source in sources.items():
            gtype.fields[name].resolve = _connection_field(source)
    query = built.type_map["QueryRoot"]
    assert isinstance(query, GraphQLObjectType)
    for name, fn in ROOT_FIELDS.items():
        query.fields[name].resolve = _object_field(fn, True)
    mutation = built.type_map["Mutation"]
    assert isinstance(mutation, GraphQLObjectType)
    for name, fn in MUTATIONS.items():
        mutation.fields[name].resolve = _mutation_field(fn)
    for abstract in (
        "Node",
        "Media",
        "HasMetafields",
        "MetafieldReference",
        "LegacyInteroperability",
    ):
        built.type_map[abstract].resolve_type = (  # type: ignore[attr-defined]
            lambda obj, info, kind: catalog_fields.type_name_of(obj)
        )


def _mutation_field(fn: r.Resolver) -> Callable[..., Any]:
    def resolve(obj: Any, info: Any, **args: Any) -> Any:
        ctx: Context = info.context
        ctx.actual_cost += 10
        try:
            return fn(obj, args, ctx)
        except ResolveError as exc:
            raise _as_graphql_error(exc) from exc

    return resolve


# -- root fields --------------------------------------------------------------------------------------


def _product(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    r.require_scope(ctx, "read_products", "product")
    return r.find_typed(args["id"], "Product", ctx)


def _variant(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    r.require_scope(ctx, "read_products", "productVariant")
    return r.find_typed(args["id"], "ProductVariant", ctx)


def _inventory_item(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    r.require_scope(ctx, "read_inventory", "inventoryItem")
    return r.find_typed(args["id"], "InventoryItem", ctx)


def _node(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    return r.find_node(args["id"], ctx)


def _nodes(_: Any, args: dict[str, Any], ctx: Context) -> list[Any]:
    if len(args["ids"]) > MAX_PAGE:
        raise ResolveError(f"The ids argument accepts at most {MAX_PAGE} ids.")
    return [r.find_node(value, ctx) for value in args["ids"]]


def _require_version(ctx: Context, field: str) -> None:
    if ctx.api_version < BULK_POLLING_VERSION:
        raise ResolveError(f"Field '{field}' doesn't exist on type 'QueryRoot'", "undefinedField")


def _current_bulk(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    ops = [
        op
        for op in ctx.shop.bulk_operations.values()
        if op.client_id == ctx.app.client_id and op.type == args.get("type", "QUERY")
    ]
    return max(ops, key=lambda op: op.number) if ops else None


def _bulk_by_id(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    _require_version(ctx, "bulkOperation")
    return r.find_typed(args["id"], "BulkOperation", ctx)


def _inventory_level(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    r.require_scope(ctx, "read_inventory", "inventoryLevel")
    return r.find_typed(args["id"], "InventoryLevel", ctx)


def _location(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    if args.get("id") is None:
        # No id: the shop's primary location.
        return ctx.catalog.locations[0] if ctx.catalog.locations else None
    return r.find_typed(args["id"], "Location", ctx)


def _subscription(_: Any, args: dict[str, Any], ctx: Context) -> Any:
    return r.find_typed(args["id"], "WebhookSubscription", ctx)


ROOT_FIELDS: dict[str, r.Resolver] = {
    "shop": lambda _, a, ctx: ctx.shop,
    "inventoryLevel": _inventory_level,
    "location": _location,
    "webhookSubscription": _subscription,
    "productsCount": counts.products_count,
    "productVariantsCount": counts.variants_count,
    "locationsCount": counts.locations_count,
    "webhookSubscriptionsCount": counts.subscriptions_count,
    "product": _product,
    "productVariant": _variant,
    "inventoryItem": _inventory_item,
    "node": _node,
    "nodes": _nodes,
    "currentBulkOperation": _current_bulk,
    "bulkOperation": _bulk_by_id,
}


# -- mutations ----------------------------------------------------------------------------------------


def _subscription_create(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    endpoint = args["webhookSubscription"]
    uri = endpoint.get("uri") or endpoint.get("callbackUrl")
    if not uri or not str(uri).startswith(("http://", "https://")):
        return {
            "webhookSubscription": None,
            "userErrors": [
                {"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"}
            ],
        }
    topic = args["topic"]
    for existing in ctx.shop.subscriptions.values():
        if (
            existing.client_id == ctx.app.client_id
            and existing.topic == topic
            and existing.uri == uri
        ):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
    sub = WebhookSubscription(
        id=ctx.state.next_id(),
        topic=topic,
        uri=str(uri),
        client_id=ctx.app.client_id,
        api_version=ctx.api_version,
        created_at=now_iso(ctx.state.clock),
        format=endpoint.get("format") or "JSON",
    )
    ctx.shop.subscriptions[sub.id] = sub
    return {"webhookSubscription": sub, "userErrors": []}


def _subscription_delete(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    sub = r.find_typed(args["id"], "WebhookSubscription", ctx)
    if sub is None:
        return {
            "deletedWebhookSubscriptionId": None,
            "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
        }
    del ctx.shop.subscriptions[sub.id]
    return {"deletedWebhookSubscriptionId": args["id"], "userErrors": []}


def _bulk_run(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    assert ctx.bulk is not None
    op, errors = ctx.bulk.start(ctx, args["query"], args.get("groupObjects"))
    return {"bulkOperation": op, "userErrors": errors}


def _bulk_cancel(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    assert ctx.bulk is not None
    op = r.find_typed(args["id"], "BulkOperation", ctx)
    if op is None:
        return {
            "bulkOperation": None,
            "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
        }
    errors = ctx.bulk.cancel(ctx, op)
    return {"bulkOperation": op, "userErrors": errors}


def _bulk_run_mutation(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    assert ctx.bulk is not None
    op, errors = ctx.bulk.start_mutation(ctx, args["mutation"], args["stagedUploadPath"])
    return {"bulkOperation": op, "userErrors": errors}


def _staged_uploads(_: Any, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
    assert ctx.bulk is not None
    return ctx.bulk.staged.targets(ctx, args["input"])


MUTATIONS: dict[str, r.Resolver] = {
    **mutations.MUTATIONS,
    "bulkOperationRunMutation": _bulk_run_mutation,
    "stagedUploadsCreate": _staged_uploads,
    "webhookSubscriptionCreate": _subscription_create,
    "webhookSubscriptionDelete": _subscription_delete,
    "bulkOperationRunQuery": _bulk_run,
    "bulkOperationCancel": _bulk_cancel,
}

# -- request execution --------------------------------------------------------------------------------


def _error(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extra}}


def parse_and_validate(query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    document, errors = _parsed(query)
    # The errors go into answers, which callers may extend: each gets its own copies.
    return document, [dict(error) for error in errors]


@functools.lru_cache(maxsize=512)
def _parsed(query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
    """Parsing and validating cost milliseconds, and clients send the same few query texts again and
    again (every poll of a bulk operation): each text is checked once. Nothing mutates a document."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (dict(exc.formatted),)
    errors = validate(schema(), document)
    if errors:
        return None, tuple(dict(error.formatted) for error in errors)
    return document, ()


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)


def requested_cost(
    document: DocumentNode, operation: OperationDefinitionNode, variables: dict[str, Any]
) -> int:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return CostCalculator(schema(), fragments, variables).operation(operation)


def run(ctx: Context, body: dict[str, Any], max_cost: int) -> dict[str, Any]:
    """Execute one Admin GraphQL request body; always returns Shopify's JSON shape."""
    query = body.get("query")
    if not isinstance(query, str):
        return {"errors": [_error("Parameter Missing or Invalid", "BAD_REQUEST")]}
    variables = body.get("variables") or {}
    document, errors = parse_and_validate(query)
    if document is None:
        return {"errors": errors}
    operation = _operation(document, body.get("operationName"))
    if operation is None:
        return {"errors": [_error("An operation name is required", "BAD_REQUEST")]}
    cost = requested_cost(document, operation, variables)
    bucket = ctx.shop.bucket(ctx.app.client_id)
    if cost > max_cost:
        return {
            "errors": [
                _error(
                    f"Query cost is {cost}, which exceeds the single query max cost limit ({max_cost}).",
                    "MAX_COST_EXCEEDED",
                    cost=cost,
                    maxCost=max_cost,
                )
            ],
            "extensions": {"cost": _cost_block(cost, None, bucket.status())},
        }
    forced = ctx.shop.faults.take("throttled") is not None
    if forced or not bucket.try_take(cost):
        bucket.refuse()
        return {
            "errors": [
                _error(
                    "Throttled",
                    "THROTTLED",
                    documentation="https://shopify.dev/api/usage/rate-limits",
                )
            ],
            "extensions": {"cost": _cost_block(cost, None, bucket.status())},
        }
    result: ExecutionResult = execute(
        schema(),
        document,
        context_value=ctx,
        variable_values=variables,
        operation_name=body.get("operationName"),
    )  # type: ignore[assignment]
    actual = min(ctx.actual_cost, cost)
    bucket.refund(cost - actual)
    payload: dict[str, Any] = {}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    payload["data"] = result.data
    payload["extensions"] = {"cost": _cost_block(cost, actual, bucket.status())}
    return payload


def _cost_block(requested: int, actual: int | None, status: dict[str, float]) -> dict[str, Any]:
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}
