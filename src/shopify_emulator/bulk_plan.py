"""A bulk query compiled into a plan, and the plan written out as JSONL.

The plan keeps, per node type, the selected inline fields (with their resolvers and literal arguments)
and the nested connections. Writing walks the root connection one product at a time, so the file grows
line by line and memory stays flat whatever the catalog size.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

from shopify_emulator import (
    bulk_fast,
    bulk_fast_items,
    bulk_fast_metafields,
    catalog_index,
    graphql_api,
    query_filter,
)
from shopify_emulator import catalog_fields as cf
from shopify_emulator import resolvers as r
from shopify_emulator.context import Context
from shopify_emulator.cost import is_connection
from shopify_emulator.model import InventoryItem

BULK_ROOTS = ("products", "productVariants", "inventoryItems", "locations")


class PlanError(ValueError):
    pass


@dataclass(slots=True)
class ObjectPlan:
    type_name: str
    # (output key, resolver or None for plain dict lookup, field name, arguments, nested object plan)
    fields: list[tuple[str, Callable[..., Any] | None, str, dict[str, Any], ObjectPlan | None]]
    children: list[ChildPlan] = field(default_factory=list)
    typename_requested: bool = False
    builder: Builder | None = None
    # For an interface or union with several kinds of objects: the plan of each kind.
    alternatives: dict[str, ObjectPlan] = field(default_factory=dict)


@dataclass(slots=True)
class ChildPlan:
    source: r.Source
    args: dict[str, Any]
    node: ObjectPlan


@dataclass(slots=True)
class BulkPlan:
    root: ChildPlan
    connections: int
    root_field: str = ""


def compile_plan(document: DocumentNode, max_depth: int, max_connections: int) -> BulkPlan:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        raise PlanError("Bulk queries must contain exactly one query operation.")
    compiler = _Compiler(
        {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    )
    roots = compiler.fields(operations[0].selection_set)
    if len(roots) != 1:
        raise PlanError("Bulk queries must select exactly one top-level field.")
    root_field = roots[0]
    name = root_field.name.value
    if name in ("node", "nodes"):
        raise PlanError("The top-level node and nodes fields can't be used in bulk queries.")
    if name not in BULK_ROOTS:
        raise PlanError(
            f"Bulk queries must start with a connection field; '{name}' is not supported."
        )
    root_plan = compiler.connection(root_field, "QueryRoot", 1, max_depth)
    if compiler.connections > max_connections:
        raise PlanError(f"Bulk queries cannot contain more than {max_connections} connections.")
    return BulkPlan(root=root_plan, connections=compiler.connections, root_field=name)


class _Compiler:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.connections = 0

    def fields(
        self, selection_set: SelectionSetNode | None, on: str | None = None
    ) -> list[FieldNode]:
        """The fields selected, fragments flattened; with `on`, only fragments that apply to that
        concrete type (`... on Product` inside `owner`)."""
        out: list[FieldNode] = []
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                out.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if _applies(selection.type_condition, on):
                    out.extend(self.fields(selection.selection_set, on))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and _applies(fragment.type_condition, on):
                    out.extend(self.fields(fragment.selection_set, on))
        return out

    def connection(
        self, node: FieldNode, parent_type: str, depth: int, max_depth: int
    ) -> ChildPlan:
        if depth > max_depth:
            raise PlanError(
                f"Bulk queries cannot contain connections with a nesting depth greater than {max_depth}."
            )
        self.connections += 1
        source = cf.SOURCES.get(parent_type, {}).get(node.name.value)
        if source is None:
            raise PlanError(f"The connection '{node.name.value}' is not supported in bulk queries.")
        gtype = graphql_api.schema().type_map[parent_type]
        assert isinstance(gtype, GraphQLObjectType)
        connection_type = get_named_type(gtype.fields[node.name.value].type)
        assert isinstance(connection_type, GraphQLObjectType)
        node_type = get_named_type(connection_type.fields["nodes"].type)
        selections: list[FieldNode] = []
        for child in self.fields(node.selection_set):
            if child.name.value == "edges":
                for grandchild in self.fields(child.selection_set):
                    if grandchild.name.value == "node":
                        selections.extend(self.fields(grandchild.selection_set))
            elif child.name.value == "nodes":
                selections.extend(self.fields(child.selection_set))
        plan = self.object_plan(
            node_type.name, selections, depth, max_depth, allow_connections=True
        )
        plan.builder = compile_builder(plan, True)
        return ChildPlan(source=source, args=_arguments(node), node=plan)

    def nested_plan(
        self, type_name: str, node: FieldNode, depth: int, max_depth: int
    ) -> ObjectPlan:
        schema = graphql_api.schema()
        gtype = schema.type_map[type_name]
        if isinstance(gtype, (GraphQLInterfaceType, GraphQLUnionType)):
            possible = [t.name for t in schema.get_possible_types(gtype) if t.name in cf.FIELDS]
            if len(possible) > 1:
                # One plan per object kind the value can be; the line takes the one it is.
                plan = ObjectPlan(type_name=type_name, fields=[])
                plan.alternatives = {
                    name: self.object_plan(
                        name,
                        self.fields(node.selection_set, name),
                        depth,
                        max_depth,
                        allow_connections=False,
                    )
                    for name in possible
                }
                return plan
        return self.object_plan(
            type_name, self.fields(node.selection_set), depth, max_depth, allow_connections=False
        )

    def object_plan(
        self,
        type_name: str,
        selections: list[FieldNode],
        depth: int,
        max_depth: int,
        *,
        allow_connections: bool,
    ) -> ObjectPlan:
        schema = graphql_api.schema()
        gtype = schema.type_map[type_name]
        if isinstance(gtype, (GraphQLInterfaceType, GraphQLUnionType)):
            # An interface the emulator fills with one kind of object (Media: MediaImage) is planned
            # as that object; the fragments on it are already flattened into `selections`.
            possible = [t for t in schema.get_possible_types(gtype) if t.name in cf.FIELDS]
            if len(possible) != 1:
                raise PlanError(f"Abstract type '{type_name}' is not supported in bulk queries.")
            gtype = possible[0]
            type_name = gtype.name
        plan = ObjectPlan(type_name=type_name, fields=[])
        if not isinstance(gtype, GraphQLObjectType):
            raise PlanError(f"Abstract type '{type_name}' is not supported in bulk queries.")
        resolvers = cf.FIELDS.get(type_name, {})
        for node in selections:
            name = node.name.value
            key = node.alias.value if node.alias else name
            if name == "__typename":
                plan.typename_requested = True
                plan.fields.append((key, None, name, {}, None))
                continue
            if name not in gtype.fields:
                # A field of another member of a flattened fragment (`... on Video { ... }`).
                continue
            named = get_named_type(gtype.fields[name].type)
            if is_connection(named.name):
                if not allow_connections:
                    raise PlanError(
                        "Connections inside nested objects are not supported in bulk queries."
                    )
                plan.children.append(self.connection(node, type_name, depth + 1, max_depth))
                continue
            nested = None
            if not is_leaf_type(named):
                nested = self.nested_plan(named.name, node, depth, max_depth)
            plan.fields.append((key, resolvers.get(name), name, _arguments(node), nested))
        return plan


def _arguments(node: FieldNode) -> dict[str, Any]:
    return {arg.name.value: value_from_ast_untyped(arg.value) for arg in node.arguments or ()}


# -- writing ---------------------------------------------------------------------------------------------


# Direct expressions for the hottest fields: the bulk writer compiles each plan into one function that
# builds a line as a dict literal, skipping a resolver call per field. Every expression must mean exactly
# what the resolver of the same field means (tests compare bulk lines with GraphQL answers).
FAST: dict[str, dict[str, str]] = {
    "Product": {
        "id": 'f"gid://shopify/Product/{o.id}"',
        "legacyResourceId": "str(o.id)",
        "handle": "o.handle",
        "title": "o.title",
        "vendor": "o.vendor",
        "productType": "o.product_type",
        "status": "o.status",
        "tags": "o.tags",
        "descriptionHtml": "o.description_html",
        "createdAt": "o.created_at",
        "updatedAt": "o.updated_at",
    },
    "ProductVariant": {
        "id": 'f"gid://shopify/ProductVariant/{o.id}"',
        "legacyResourceId": "str(o.id)",
        "title": "o.title",
        "displayName": "o.title",
        "sku": "o.sku",
        "price": "o.price",
        "compareAtPrice": "o.compare_at_price",
        "barcode": "o.barcode",
        "position": "o.position",
        "inventoryQuantity": "sum(o.available)",
        "createdAt": "o.created_at",
        "updatedAt": "o.updated_at",
    },
    "InventoryItem": {
        "id": 'f"gid://shopify/InventoryItem/{o.variant.inventory_item_id}"',
        "sku": "o.variant.sku",
    },
    "Metafield": {
        "id": 'f"gid://shopify/Metafield/{o.id}"',
        "namespace": "o.namespace",
        "key": "o.key",
        "type": "o.type",
        "value": "o.value",
        "createdAt": "o.created_at",
        "updatedAt": "o.updated_at",
    },
}
# Nested objects built straight from the parent, skipping the resolver's intermediate objects.
# Each applies only when the nested selection stays within the listed fields.
FAST_NESTED: dict[tuple[str, str], tuple[str, frozenset[str] | None]] = {
    ("ProductVariant", "inventoryItem"): ("InventoryItem(o)", None),
    ("ProductVariant", "selectedOptions"): (
        '[{"name": n, "value": v} for n, v in o.options]',
        frozenset({"name", "value"}),
    ),
}


def _within(nested: ObjectPlan | None, allowed: frozenset[str] | None) -> bool:
    if allowed is None or nested is None:
        return True
    return all(name in allowed for _, _, name, _, _ in nested.fields)


Builder = Callable[[Any, Context], dict[str, Any]]


def _nested(sub: Builder) -> Callable[[Any, Context], Any]:
    def apply(value: Any, ctx: Context) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [sub(item, ctx) for item in value]
        return sub(value, ctx)

    return apply


def _applies(condition: Any, on: str | None) -> bool:
    if condition is None or on is None:
        return True
    wanted = condition.name.value
    if wanted == on:
        return True
    schema = graphql_api.schema()
    abstract = schema.type_map.get(wanted)
    concrete = schema.type_map.get(on)
    if isinstance(abstract, (GraphQLInterfaceType, GraphQLUnionType)) and isinstance(
        concrete, GraphQLObjectType
    ):
        return schema.is_sub_type(abstract, concrete)
    return False


def compile_builder(plan: ObjectPlan, add_typename: bool) -> Builder:
    """Turn an object plan into one function returning the line (or nested object) as a dict."""
    if plan.alternatives:
        builders = {
            name: compile_builder(alt, add_typename) for name, alt in plan.alternatives.items()
        }

        def build_one_of(o: Any, ctx: Context) -> dict[str, Any]:
            return builders[str(cf.type_name_of(o))](o, ctx)

        return build_one_of
    namespace: dict[str, Any] = {"InventoryItem": InventoryItem}
    parts: list[str] = []
    fast = FAST.get(plan.type_name, {})
    for n, (key, resolver, name, args, nested) in enumerate(plan.fields):
        if name == "__typename":
            expression = repr(plan.type_name)
        elif nested is None and name in fast:
            expression = fast[name]
        elif plan.type_name not in cf.FIELDS:
            # Objects without resolvers are plain dicts (SelectedOption, MoneyV2, SEO...).
            expression = f"o.get({name!r})"
        else:
            namespace[f"R{n}"] = resolver
            namespace[f"A{n}"] = args
            expression = f"R{n}(o, A{n}, ctx)"
            fast_nested = FAST_NESTED.get((plan.type_name, name))
            if fast_nested is not None and not args and _within(nested, fast_nested[1]):
                expression = fast_nested[0]
        if nested is not None:
            namespace[f"N{n}"] = _nested(compile_builder(nested, False))
            expression = f"N{n}({expression}, ctx)"
        parts.append(f"{key!r}: {expression}")
    if add_typename and not plan.typename_requested:
        # Shopify adds __typename only when selected; the emulator always adds it so parsers can rely on it.
        parts.append(f"'__typename': {plan.type_name!r}")
    source = "def build(o, ctx):\n    return {" + ", ".join(parts) + "}\n"
    exec(compile(source, f"<bulk {plan.type_name}>", "exec"), namespace)  # noqa: S102 - code built from the schema, not from input
    builder: Builder = namespace["build"]
    return builder


def _gid_of(plan: ObjectPlan, obj: Any, ctx: Context) -> str:
    return str(cf.FIELDS[plan.type_name]["id"](obj, {}, ctx))


def _lines(
    plan: ObjectPlan, obj: Any, parent_gid: str | None, ctx: Context, children_first: bool
) -> Iterator[dict[str, Any]]:
    assert plan.builder is not None
    line = plan.builder(obj, ctx)
    if parent_gid is not None:
        line["__parentId"] = parent_gid
    if not children_first:
        yield line
    if plan.children:
        own_gid = _gid_of(plan, obj, ctx)
        for child in plan.children:
            for _, node in child.source(obj, child.args, ctx, -1):
                yield from _lines(child.node, node, own_gid, ctx, children_first)
    if children_first:
        yield line


def root_objects(plan: BulkPlan, ctx: Context) -> Iterator[Any]:
    for _, obj in plan.root.source(None, plan.root.args, ctx, -1):
        yield obj


Group = tuple[
    list[bytes], int
]  # one root object's lines (each ending in a newline), root lines among them


def _encoded(plan: ObjectPlan, obj: Any, ctx: Context, children_first: bool) -> list[bytes]:
    encode = ENCODER.encode
    return [encode(line) + b"\n" for line in _lines(plan, obj, None, ctx, children_first)]


def object_groups(
    plan: BulkPlan, ctx: Context, order: str, objects: Iterator[Any] | None = None
) -> Iterator[Group]:
    node = plan.root.node
    children_first = order == "children_first"
    for obj in root_objects(plan, ctx) if objects is None else objects:
        yield _encoded(node, obj, ctx, children_first), 1


def product_groups(
    plan: BulkPlan, ctx: Context, order: str, start: int, end: int
) -> Iterator[Group] | None:
    """The line groups of products [start, end) in id order (of their variants or inventory items
    for a `productVariants` or `inventoryItems` export), generated ones through a fast emitter; None when the plan is not a
    plain export an emitter can write. A `products(query:)` export whose terms are all on the
    products' timestamps is written the same way, for the products the terms select."""
    terms = _date_terms(plan)
    if plan.root.args and terms is None:
        return None
    catalog = ctx.catalog
    node = plan.root.node
    children_first = order == "children_first"
    changed: Callable[[Any], Iterator[Group]]
    if plan.root_field == "products":
        emit = bulk_fast.compile_emitter(node, order, catalog.shape, catalog.seed)
        scope = ("read_products", "products")

        def changed(product: Any) -> Iterator[Group]:
            yield _encoded(node, product, ctx, children_first), 1

    elif plan.root_field == "inventoryItems":
        emit = bulk_fast_items.compile_emitter(node, order, catalog.shape, catalog.seed)
        scope = ("read_inventory", "inventoryItems")

        def changed(product: Any) -> Iterator[Group]:
            for variant in product.variants:
                yield _encoded(node, InventoryItem(variant), ctx, children_first), 1

    elif plan.root_field == "productVariants":
        emit = bulk_fast_metafields.compile_emitter(node, order, catalog.shape, catalog.seed)
        scope = ("read_products", "productVariants")

        def changed(product: Any) -> Iterator[Group]:
            for variant in product.variants:
                yield _encoded(node, variant, ctx, children_first), 1

    else:
        return None
    if emit is None:
        return None
    r.require_scope(ctx, *scope)
    if terms is not None:
        return _dated_groups(ctx, emit, changed, terms)
    return _product_groups(ctx, emit, changed, start, end)


def _date_terms(plan: BulkPlan) -> list[query_filter.Term] | None:
    """The terms of a `products(query:)` export that compares only the products' timestamps with
    whole stamps (what incremental syncs ask), or None for any other arguments."""
    args = plan.root.args
    if plan.root_field != "products" or set(args) != {"query"}:
        return None
    try:
        terms = query_filter.parse(args["query"])
    except query_filter.FilterError:
        return None  # the general path reports it as the products connection does
    if not terms or not all(catalog_index.exact_date(term) for term in terms):
        return None
    return terms


# Products generated per call of the emitter: enough for its vector draws to cost little per line,
# few enough that a batch's lines are a few MB.
BATCH = 1024


def _product_groups(
    ctx: Context,
    emit: bulk_fast.Emitter,
    changed_groups: Callable[[Any], Iterator[Group]],
    start: int,
    end: int,
) -> Iterator[Group]:
    catalog = ctx.catalog
    overlay, generated = catalog.overlay, catalog.generated
    stop = min(end, catalog.upper)
    for low in range(start, stop, BATCH):
        high = min(stop, low + BATCH)
        # Changed products interrupt the batch: the runs between them are generated.
        changed = [index for index in range(low, high) if index in overlay]
        cursor = low
        for index in [*changed, high]:
            run_end = min(index, generated)
            if cursor < run_end:
                groups: list[list[bytes]] = []
                emit(np.arange(cursor, run_end, dtype=np.int64), groups)
                for group in groups:
                    yield group, 1
            if index < high:
                product = overlay.get(index)
                if product is not None:
                    yield from changed_groups(product)
            cursor = index + 1


def _dated_groups(
    ctx: Context,
    emit: bulk_fast.Emitter,
    changed_groups: Callable[[Any], Iterator[Group]],
    terms: list[query_filter.Term],
) -> Iterator[Group]:
    """The groups of the products `terms` select, in id order: generated ones found by their stamps
    in the catalog's index, changed and created ones checked by their current values."""
    catalog = ctx.catalog
    overlay = dict(catalog.overlay)
    generated = catalog.index.matching(terms)
    if overlay:
        generated = generated[~np.isin(generated, np.fromiter(overlay, dtype=np.int64))]
    changed = sorted(
        index
        for index, product in overlay.items()
        if product is not None and r.matches(terms, r.product_values(product))
    )
    cursor = 0
    for index in [*changed, catalog.upper]:
        # The generated products before the next changed one, a batch at a time.
        run_end = int(np.searchsorted(generated, index))
        for low in range(cursor, run_end, BATCH):
            groups: list[list[bytes]] = []
            emit(generated[low : min(run_end, low + BATCH)], groups)
            for group in groups:
                yield group, 1
        cursor = run_end
        if index < catalog.upper:
            yield from changed_groups(overlay[index])


def root_lines(
    plan: BulkPlan,
    ctx: Context,
    order: str,
    seed: int,
    groups: Iterator[Group] | None = None,
) -> Iterator[Group]:
    """Lines grouped per root object (or per shuffle window), in the order the file gets them."""
    if groups is None:
        groups = product_groups(plan, ctx, order, 0, ctx.catalog.upper)
    if groups is None:
        groups = object_groups(plan, ctx, order)
    if order != "shuffled":
        yield from groups
        return
    # Shuffle the children inside windows of 64 roots: a child lands before, after or away from its
    # parent, while root lines keep the connection's order (a client may resume from the last root it
    # read, e.g. by the highest updatedAt under sortKey: UPDATED_AT). The children of a window are
    # permuted by a permutation drawn once per window size: as far from the written order as a fresh
    # shuffle, at a fraction of its cost per line.
    rng = random.Random(seed)
    permutations: dict[int, list[int]] = {}
    roots: list[bytes] = []
    children: list[bytes] = []
    for lines, _ in groups:
        roots.append(lines[0])
        children.extend(lines[1:])
        if len(roots) >= 64:
            yield _interleave(roots, children, permutations, rng), len(roots)
            roots, children = [], []
    if roots:
        yield _interleave(roots, children, permutations, rng), len(roots)


def _interleave(
    roots: list[bytes],
    children: list[bytes],
    permutations: dict[int, list[int]],
    rng: random.Random,
) -> list[bytes]:
    permutation = permutations.get(len(children))
    if permutation is None:
        permutation = list(range(len(children)))
        rng.shuffle(permutation)
        permutations[len(children)] = permutation
    mixed = [children[i] for i in permutation]
    # Each root takes an equal run of the mixed children after it (the first run goes before it).
    step = -(-len(mixed) // (len(roots) + 1))
    out = mixed[:step]
    for n, root in enumerate(roots, start=1):
        out.append(root)
        out.extend(mixed[n * step : (n + 1) * step])
    return out


ENCODER = msgspec.json.Encoder()
