"""Bulk operations: the project's three query shapes, JSONL shapes and counts, ordering, limits, files."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from shopify_emulator import EmulatorConfig, ShopConfig
from tests.emulator.clients import Connect, MakeEmulator, ReceiverFactory, Shop

CORE = (
    "{ products { edges { node { id handle title vendor productType status tags descriptionHtml createdAt updatedAt "
    "variants { edges { node { id sku title price compareAtPrice barcode position inventoryQuantity createdAt updatedAt "
    "inventoryItem { id } selectedOptions { name value } } } } } } } }"
)
PRODUCT_METAFIELDS = "{ products { edges { node { id metafields { edges { node { id namespace key type value updatedAt } } } } } } }"
VARIANT_METAFIELDS = "{ productVariants { edges { node { id metafields { edges { node { id namespace key type value updatedAt } } } } } } }"
NESTED_METAFIELDS = (
    "{ products { edges { node { id metafields { edges { node { id } } } variants { edges { node { id "
    "metafields { edges { node { id } } } } } } } } } }"
)
INVENTORY = (
    "{ inventoryItems { edges { node { id sku variant { id } inventoryLevels { edges { node { id location { id } "
    'quantities(names: ["available"]) { name quantity } updatedAt } } } } } } }'
)


def _lines(url: str) -> list[dict[str, Any]]:
    body = httpx.get(url, timeout=30).content
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]


def test_core_query_grouped_matches_counts_and_truth(alpha: Shop) -> None:
    op = alpha.wait_bulk(alpha.run_bulk(CORE, group=True))
    assert op["status"] == "COMPLETED"
    assert op["errorCode"] is None
    assert op["completedAt"]
    lines = _lines(op["url"])
    counts = alpha.control("GET", "/counts")
    assert int(op["objectCount"]) == len(lines) == counts["products"] + counts["variants"]
    assert int(op["rootObjectCount"]) == counts["products"]
    assert int(op["fileSize"]) == len(httpx.get(op["url"]).content)
    assert Counter(line["__typename"] for line in lines) == {
        "Product": 40,
        "ProductVariant": counts["variants"],
    }
    current = None
    for line in lines:
        if line["__typename"] == "Product":
            assert "__parentId" not in line
            current = line["id"]
        else:
            # groupObjects: true puts children right after their parent.
            assert line["__parentId"] == current
    product = next(line for line in lines if line["id"] == "gid://shopify/Product/8000000000005")
    truth = alpha.control("GET", "/products/8000000000005")
    for key in (
        "handle",
        "title",
        "vendor",
        "productType",
        "status",
        "tags",
        "descriptionHtml",
        "createdAt",
        "updatedAt",
    ):
        assert product[key] == truth[key]
    variant = next(line for line in lines if line["id"] == truth["variants"][0]["id"])
    for key in (
        "sku",
        "price",
        "compareAtPrice",
        "barcode",
        "position",
        "inventoryQuantity",
        "inventoryItem",
        "selectedOptions",
    ):
        assert variant[key] == truth["variants"][0][key]


def test_bulk_lines_equal_graphql_answers(alpha: Shop) -> None:
    """The bulk writer's compiled fast path must mean what the GraphQL resolvers mean."""
    lines = _lines(alpha.wait_bulk(alpha.run_bulk(CORE, group=True))["url"])
    page = alpha.gql(
        "{ products(first: 3) { nodes { id handle title vendor productType status tags descriptionHtml createdAt updatedAt "
        "variants(first: 10) { nodes { id sku title price compareAtPrice barcode position inventoryQuantity createdAt updatedAt "
        "inventoryItem { id } selectedOptions { name value } } } } } }"
    )["data"]["products"]["nodes"]
    by_id = {line["id"]: line for line in lines}
    for product in page:
        variants = product.pop("variants")["nodes"]
        line = {k: v for k, v in by_id[product["id"]].items() if not k.startswith("__")}
        assert line == product
        for variant in variants:
            assert {
                k: v for k, v in by_id[variant["id"]].items() if not k.startswith("__")
            } == variant


def test_ungrouped_orders_are_joinable_by_parent_id(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    for order in ("shuffled", "children_first"):
        emulator = make_emulator(
            EmulatorConfig(shops=[ShopConfig(name="order", products=120)], bulk_child_order=order)
        )
        shop = connect(emulator, "order")
        op = shop.wait_bulk(shop.run_bulk(CORE, group=False))
        lines = _lines(op["url"])
        assert len(lines) == int(op["objectCount"])
        position = {line["id"]: n for n, line in enumerate(lines)}
        children = [line for line in lines if "__parentId" in line]
        assert all(line["__parentId"] in position for line in children)
        before_parent = sum(
            1 for line in children if position[line["id"]] < position[line["__parentId"]]
        )
        if order == "children_first":
            assert before_parent == len(children)
        else:
            assert 0 < before_parent < len(children)


def test_metafield_queries_and_nesting_limit(alpha: Shop) -> None:
    rejected = alpha.gql(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { field message code } } }",
        {"q": NESTED_METAFIELDS},
    )["data"]["bulkOperationRunQuery"]
    assert rejected["bulkOperation"] is None
    assert rejected["userErrors"][0]["code"] == "INVALID"
    assert "nesting depth" in rejected["userErrors"][0]["message"]
    counts = alpha.control("GET", "/counts")
    products = _lines(alpha.wait_bulk(alpha.run_bulk(PRODUCT_METAFIELDS))["url"])
    variants = _lines(alpha.wait_bulk(alpha.run_bulk(VARIANT_METAFIELDS))["url"])
    product_mf = [line for line in products if line["__typename"] == "Metafield"]
    variant_mf = [line for line in variants if line["__typename"] == "Metafield"]
    assert len(product_mf) == counts["product_metafields"]
    assert len(variant_mf) == counts["variant_metafields"]
    assert all(
        line["__parentId"].startswith("gid://shopify/ProductVariant/") for line in variant_mf
    )
    assert {
        "id",
        "namespace",
        "key",
        "type",
        "value",
        "updatedAt",
        "__parentId",
        "__typename",
    } == set(product_mf[0])
    # The other app's bulk run sees no app-owned metafield.
    other = alpha.mint(client_id="other-client-id")
    theirs = _lines(
        alpha.wait_bulk(alpha.run_bulk(PRODUCT_METAFIELDS, token=other), token=other)["url"]
    )
    their_mf = [line for line in theirs if line["__typename"] == "Metafield"]
    assert len(their_mf) == counts["product_metafields"] - counts["app_owned_metafields"]
    assert not any(line["namespace"].startswith("app--") for line in their_mf)


def test_inventory_query(alpha: Shop) -> None:
    op = alpha.wait_bulk(alpha.run_bulk(INVENTORY))
    lines = _lines(op["url"])
    counts = alpha.control("GET", "/counts")
    items = [line for line in lines if line["__typename"] == "InventoryItem"]
    levels = [line for line in lines if line["__typename"] == "InventoryLevel"]
    assert len(items) == counts["inventory_items"]
    assert len(levels) == counts["inventory_levels"]
    assert int(op["rootObjectCount"]) == len(items)
    assert items[0]["variant"]["id"].startswith("gid://shopify/ProductVariant/")
    level = levels[0]
    assert level["__parentId"].startswith("gid://shopify/InventoryItem/")
    assert level["quantities"][0]["name"] == "available"
    assert isinstance(level["quantities"][0]["quantity"], int)
    assert level["location"]["id"].startswith("gid://shopify/Location/")


def test_incremental_filter_in_bulk(make_emulator: MakeEmulator, connect: Connect) -> None:
    emulator = make_emulator(EmulatorConfig(shops=[ShopConfig(name="incr", products=50)]))
    shop = connect(emulator, "incr")
    shop.control("PATCH", "/products/8000000000007", json={"title": "Changed"})
    query = (
        '{ products(query: "updated_at:>2026-01-01T00:00:00Z") { edges { node { id title } } } }'
    )
    lines = _lines(shop.wait_bulk(shop.run_bulk(query))["url"])
    assert lines == [
        {"id": "gid://shopify/Product/8000000000007", "title": "Changed", "__typename": "Product"}
    ]


def test_concurrency_limits_by_version_and_cancel(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="busy", products=400)], bulk_lines_per_s=200)
    )
    shop = connect(emulator, "busy")
    run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { code message } } }"
    ids = [shop.run_bulk(CORE) for _ in range(5)]
    sixth = shop.gql(run, {"q": CORE})["data"]["bulkOperationRunQuery"]
    assert sixth["userErrors"][0]["code"] == "LIMIT_REACHED"
    listed = shop.gql(
        '{ bulkOperations(first: 10, query: "status:RUNNING") { nodes { id status } } }'
    )["data"]["bulkOperations"]["nodes"]
    assert {n["id"] for n in listed} == set(ids)
    for op_id in ids:
        out = shop.gql(
            "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }",
            {"id": op_id},
        )
        assert out["data"]["bulkOperationCancel"]["bulkOperation"]["status"] == "CANCELING"
    assert all(shop.wait_bulk(op_id)["status"] == "CANCELED" for op_id in ids)
    old_first = shop.run_bulk(CORE, version="2025-10")
    old = shop.gql(run, {"q": CORE}, version="2025-10")["data"]["bulkOperationRunQuery"]
    assert old["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    current = shop.gql("{ currentBulkOperation { id status } }", version="2025-10")["data"][
        "currentBulkOperation"
    ]
    assert current["id"] == old_first
    assert current["status"] == "RUNNING"
    polled = shop.gql(
        "query($id: ID!) { bulkOperation(id: $id) { id } }", {"id": old_first}, version="2025-10"
    )
    assert "errors" in polled  # bulkOperation(id:) exists from 2026-01
    shop.gql(
        "mutation($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }",
        {"id": old_first},
    )


def test_file_url_is_a_signed_storage_url_expiring_with_range(alpha: Shop) -> None:
    op_id = alpha.run_bulk(CORE)
    url = alpha.wait_bulk(op_id)["url"]
    parsed = urlsplit(url)
    query = parse_qs(parsed.query)
    number = op_id.rsplit("/", 1)[1]
    # Google Cloud Storage's signed-URL shape, as Shopify's links have it.
    assert parsed.path.startswith("/shopify-tiers-assets-prod-us-east1/bulk-operation-outputs/")
    assert parsed.path.endswith("-final")
    assert set(query) == {
        "GoogleAccessId",
        "Expires",
        "Signature",
        "response-content-disposition",
        "response-content-type",
    }
    disposition = query["response-content-disposition"][0]
    assert f'filename="bulk-{number}.jsonl"' in disposition
    assert disposition.startswith("attachment")
    assert query["response-content-type"] == ["application/jsonl"]
    assert "response-content-type=application%2Fjsonl" in url
    response = httpx.get(url)
    full = response.content
    assert response.headers["content-type"].startswith("application/jsonl")
    assert response.headers["content-disposition"] == disposition
    tail = httpx.get(url, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206
    assert tail.content == full[1000:]
    assert tail.headers["content-range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
    tampered = url.replace("Signature=", "Signature=0")
    bad = httpx.get(tampered)
    assert bad.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in bad.content
    # The file name is signed too: a client cannot rename the download.
    renamed = url.replace(f"bulk-{number}.jsonl", "other.jsonl")
    assert httpx.get(renamed).status_code == 403
    expires = int(query["Expires"][0])
    assert 6 * 24 * 3600 < expires - time.time() <= 7 * 24 * 3600


def test_empty_result_completes_with_null_url(alpha: Shop) -> None:
    op = alpha.wait_bulk(
        alpha.run_bulk('{ products(query: "updated_at:>2030-01-01") { edges { node { id } } } }')
    )
    assert op["status"] == "COMPLETED"
    assert op["objectCount"] == "0"
    assert op["url"] is None


def test_finish_webhook(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    emulator = make_emulator(EmulatorConfig(shops=[ShopConfig(name="fin", products=5)]))
    shop = connect(emulator, "fin")
    receiver = receiver_factory()
    created = shop.gql(
        "mutation($u: URL!) { webhookSubscriptionCreate(topic: BULK_OPERATIONS_FINISH, webhookSubscription: {callbackUrl: $u, format: JSON}) { webhookSubscription { id topic } userErrors { message } } }",
        {"u": receiver.url},
    )["data"]["webhookSubscriptionCreate"]
    assert created["userErrors"] == []
    assert created["webhookSubscription"]["topic"] == "BULK_OPERATIONS_FINISH"
    op_id = shop.run_bulk(CORE)
    shop.wait_bulk(op_id)
    body = json.loads(receiver.wait_for(1)[0].body)
    assert body["admin_graphql_api_id"] == op_id
    assert body["status"] == "completed"
    assert body["type"] == "query"
    assert body["error_code"] is None
    assert body["completed_at"]


def test_served_file_replaces_the_next_matching_result_exactly(alpha: Shop) -> None:
    content = (
        b'{"__typename":"Product","id":"gid://shopify/Product/1","title":"\xff"}\n'
        b'{"__typename":"ProductVariant","id":"gid://shopify/ProductVariant/2",'
        b'"__parentId":"gid://shopify/Product/1"}\n'
        b'{"__typename":"Product","id":"gid://shop'
    )
    bad = alpha.http.post(
        "/_emulator/shops/alpha/bulk/served-files",
        json={"query_contains": "descriptionHtml", "content_base64": "not base64!"},
    )
    assert bad.status_code == 400
    assert "base64" in bad.json()["error"]
    listed = alpha.control(
        "POST",
        "/bulk/served-files",
        json={
            "query_contains": "descriptionHtml",
            "content_base64": base64.b64encode(content).decode(),
        },
    )
    assert listed == [{"query_contains": "descriptionHtml", "bytes": len(content)}]
    # A query that does not match keeps its own file; the matching one serves the bytes, once.
    inventory = alpha.wait_bulk(alpha.run_bulk(INVENTORY))
    assert int(inventory["objectCount"]) > 3
    op = alpha.wait_bulk(alpha.run_bulk(CORE))
    assert (op["objectCount"], op["rootObjectCount"], op["fileSize"]) == (
        "3",
        "2",
        str(len(content)),
    )
    assert httpx.get(op["url"]).content == content
    assert alpha.control("GET", "/bulk/served-files") == []
    again = alpha.wait_bulk(alpha.run_bulk(CORE))
    assert int(again["objectCount"]) > 3


def test_control_bulk_list_says_how_long_each_run_took(alpha: Shop) -> None:
    # The demo reads these durations to tell the emulator's share of a full sync from neanelu's.
    started = time.monotonic()
    op_id = alpha.run_bulk(CORE)
    alpha.wait_bulk(op_id)
    elapsed = time.monotonic() - started
    (listed,) = [op for op in alpha.control("GET", "/bulk") if op["id"] == op_id]
    assert listed["status"] == "COMPLETED"
    assert isinstance(listed["created_s"], float)
    assert isinstance(listed["finished_s"], float)
    assert 0 <= listed["finished_s"] - listed["created_s"] <= elapsed
