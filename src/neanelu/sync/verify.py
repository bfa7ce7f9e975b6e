"""Parity: a deterministic sample of stored products compared field by field with Shopify.

The sample is chosen by a hash of the Shopify id (plan addendum D), never by random draws, so two
runs over the same catalog check the same products and a difference can be chased down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalars
from neanelu.shopify.errors import Throttled
from neanelu.shopify.graphql import AdminClient, GraphQLResult
from neanelu.sync.owner_metafields import owned_by

# Shopify prices nested connections multiplicatively (variants x their metafields): one product
# per query keeps each call under the 1,000-point ceiling.
BATCH = 1
VARIANTS_FIRST = 50
METAFIELDS_FIRST = 50
VARIANT_METAFIELDS_FIRST = 10
MAX_THROTTLED_WAITS = 50

QUERY = f"""
query Parity($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Product {{
      id handle title vendor productType status tags descriptionHtml updatedAt
      variantsCount {{ count }}
      metafields(first: {METAFIELDS_FIRST}) {{ edges {{ node {{ namespace key type value }} }} }}
      variants(first: {VARIANTS_FIRST}) {{ edges {{ node {{
        id sku title price compareAtPrice barcode position inventoryQuantity updatedAt
        metafields(first: {VARIANT_METAFIELDS_FIRST}) {{ edges {{ node {{ namespace key type value }} }} }}
      }} }} }}
    }}
  }}
}}
"""


@dataclass(frozen=True, slots=True)
class Difference:
    shopify_id: int
    field: str
    stored: Any
    shopify: Any


@dataclass(slots=True)
class ParityReport:
    sampled: int = 0
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.sampled > 0 and self.compared == self.sampled and not self.differences


async def sample_ids(conn: Conn, size: int) -> list[int]:
    return await fetch_scalars(
        conn,
        int,
        "SELECT shopify_id FROM products WHERE deleted_at IS NULL"
        " ORDER BY md5(shopify_id::text), shopify_id LIMIT %s",
        (size,),
    )


async def verify_sample(
    pool: AsyncConnectionPool[Conn],
    client: AdminClient,
    shop_id: UUID,
    size: int,
    *,
    owner_namespaces: tuple[str, ...] = (),
) -> ParityReport:
    """`owner_namespaces`: other apps' `app--{id}` namespaces, read with their tokens and
    invisible to `client`, so left out of the comparison."""
    report = ParityReport()
    async with tenant_scope(pool, shop_id) as conn:
        ids = await sample_ids(conn, size)
    report.sampled = len(ids)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        result = await _execute_patiently(
            client, {"ids": [f"gid://shopify/Product/{i}" for i in batch]}
        )
        remote = {
            int(str(node["id"]).rsplit("/", 1)[1]): node
            for node in result.data.get("nodes") or []
            if node
        }
        async with tenant_scope(pool, shop_id) as conn:
            for shopify_id in batch:
                node = remote.get(shopify_id)
                if node is None:
                    report.differences.append(Difference(shopify_id, "exists", True, False))
                    continue
                report.compared += 1
                report.differences.extend(await _compare(conn, shopify_id, node, owner_namespaces))
    return report


async def _execute_patiently(client: AdminClient, variables: dict[str, Any]) -> GraphQLResult:
    """A check runs outside the queue: when throttled it waits for the bucket and asks again."""
    for _ in range(MAX_THROTTLED_WAITS):
        try:
            return await client.execute(QUERY, variables, estimated_cost=650)
        except Throttled as exc:
            await asyncio.sleep(exc.retry_after)
    raise Throttled(1.0, f"still throttled after {MAX_THROTTLED_WAITS} waits")


@dataclass(frozen=True, slots=True)
class _StoredProduct:
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None
    tags: list[str]
    description: str | None
    metafields: dict[str, Any]
    shopify_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class _StoredVariant:
    shopify_id: int
    sku: str | None
    title: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    barcode: str | None
    position: int | None
    inventory_quantity: int | None
    metafields: dict[str, Any]
    shopify_updated_at: datetime | None


async def _compare(
    conn: Conn, shopify_id: int, node: dict[str, Any], owner_namespaces: tuple[str, ...]
) -> list[Difference]:
    diffs: list[Difference] = []
    product = await fetch_one(
        conn,
        _StoredProduct,
        "SELECT handle, title, vendor, product_type, status, tags, description, metafields,"
        " shopify_updated_at FROM products WHERE shopify_id = %s",
        (shopify_id,),
    )
    stored_variants = await fetch_all(
        conn,
        _StoredVariant,
        "SELECT shopify_id, sku, title, price, compare_at_price, barcode, position,"
        " inventory_quantity, metafields, shopify_updated_at FROM variants"
        " WHERE product_shopify_id = %s AND deleted_at IS NULL",
        (shopify_id,),
    )
    variants = {int(v.shopify_id): v for v in stored_variants}
    assert product is not None

    def check(name: str, stored: Any, remote: Any) -> None:
        if _norm(stored) != _norm(remote):
            diffs.append(Difference(shopify_id, name, stored, remote))

    for column, key in (
        ("handle", "handle"),
        ("title", "title"),
        ("vendor", "vendor"),
        ("product_type", "productType"),
        ("status", "status"),
        ("tags", "tags"),
        ("description", "descriptionHtml"),
        ("shopify_updated_at", "updatedAt"),
    ):
        # Columns by name: each is a field of the stored row.
        check(column, getattr(product, column), node.get(key))
    check("metafields", _visible(product.metafields, owner_namespaces), _metafields(node))
    count = (node.get("variantsCount") or {}).get("count")
    if count is not None:
        check("variants.count", len(variants), count)
    for edge in (node.get("variants") or {}).get("edges") or []:
        remote_variant = edge["node"]
        vid = int(str(remote_variant["id"]).rsplit("/", 1)[1])
        stored = variants.get(vid)
        if stored is None:
            diffs.append(Difference(shopify_id, f"variant {vid}", None, "present"))
            continue
        for column, key in (
            ("sku", "sku"),
            ("title", "title"),
            ("price", "price"),
            ("compare_at_price", "compareAtPrice"),
            ("barcode", "barcode"),
            ("position", "position"),
            ("inventory_quantity", "inventoryQuantity"),
            ("shopify_updated_at", "updatedAt"),
        ):
            check(f"variant {vid}.{column}", getattr(stored, column), remote_variant.get(key))
        check(
            f"variant {vid}.metafields",
            _visible(stored.metafields, owner_namespaces),
            _metafields(remote_variant),
        )
    return diffs


def _visible(stored: dict[str, Any], owner_namespaces: tuple[str, ...]) -> dict[str, Any]:
    """Stored metafields (`namespace.key`) without those of the given owner apps."""
    if not owner_namespaces:
        return stored
    return {
        k: v
        for k, v in stored.items()
        if not any(owned_by(owner, k.split(".", 1)[0]) for owner in owner_namespaces)
    }


def _metafields(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    edges = (node.get("metafields") or {}).get("edges") or []
    return {
        f"{e['node']['namespace']}.{e['node']['key']}": {
            "type": e["node"].get("type"),
            "value": e["node"].get("value"),
        }
        for e in edges
    }


def _norm(value: Any) -> Any:
    """Compare meaning, not representation: prices as decimals, times as instants."""
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            if len(value) >= 20 and value[4] == "-" and value[10] == "T":
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            if value.replace(".", "", 1).replace("-", "", 1).isdigit() and "." in value:
                return Decimal(value).normalize()
        except (ValueError, ArithmeticError):
            return value
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value
