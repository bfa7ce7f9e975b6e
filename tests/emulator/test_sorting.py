"""Connections paged as Shopify pages them: sortKey, reverse, filters with sorting, stable cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig
from tests.emulator.clients import Connect, MakeEmulator, Shop

PAGE = """query($after: String, $sort: ProductSortKeys, $reverse: Boolean, $query: String) {
  products(first: 9, after: $after, sortKey: $sort, reverse: $reverse, query: $query) {
    edges { cursor node { id title vendor productType createdAt updatedAt totalInventory } }
    pageInfo { hasNextPage endCursor } } }"""

KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "TITLE": lambda n: n["title"],
    "VENDOR": lambda n: n["vendor"],
    "PRODUCT_TYPE": lambda n: n["productType"],
    "CREATED_AT": lambda n: n["createdAt"],
    "UPDATED_AT": lambda n: n["updatedAt"],
    "INVENTORY_TOTAL": lambda n: n["totalInventory"],
    "ID": lambda n: int(n["id"].rsplit("/", 1)[1]),
}


@pytest.fixture(scope="module")
def sorted_shop(make_emulator: MakeEmulator) -> RunningEmulator:
    return make_emulator(EmulatorConfig(shops=[ShopConfig(name="sorted", products=45, seed=5)]))


@pytest.fixture
def shop(sorted_shop: RunningEmulator, connect: Connect) -> Shop:
    return connect(sorted_shop, "sorted")


def _walk(shop: Any, **variables: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        out = shop.gql(PAGE, {**variables, "after": after})
        assert "errors" not in out, out
        page = out["data"]["products"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def _id(node: dict[str, Any]) -> int:
    return int(node["id"].rsplit("/", 1)[1])


@pytest.mark.parametrize("sort", sorted(KEYS))
@pytest.mark.parametrize("reverse", [False, True])
def test_every_product_sort_key_pages_in_shopify_order(
    shop: Shop, sort: str, reverse: bool
) -> None:
    nodes = _walk(shop, sort=sort, reverse=reverse)
    assert len(nodes) == len({n["id"] for n in nodes}) == 45
    key = KEYS[sort]
    # Ties are broken by id, in the same direction.
    expected = sorted(nodes, key=lambda n: (key(n), _id(n)), reverse=reverse)
    assert [n["id"] for n in nodes] == [n["id"] for n in expected]


def test_filter_combined_with_sort(shop: Shop) -> None:
    everything = _walk(shop, sort="ID")
    pivot = sorted(n["updatedAt"] for n in everything)[20]
    nodes = _walk(shop, sort="TITLE", query=f"updated_at:>{pivot} vendor:Acme")
    expected = sorted(
        (n for n in everything if n["updatedAt"] > pivot and n["vendor"] == "Acme"),
        key=lambda n: (n["title"], _id(n)),
    )
    assert [n["id"] for n in nodes] == [n["id"] for n in expected]


def test_cursor_names_a_row_not_a_position(shop: Shop) -> None:
    first = shop.gql(PAGE, {"sort": "UPDATED_AT"})["data"]["products"]
    cursor = first["pageInfo"]["endCursor"]
    decoded = json.loads(base64.urlsafe_b64decode(cursor))
    assert set(decoded) == {"last_id", "last_value"}
    seen = {edge["node"]["id"] for edge in first["edges"]}
    # A product already read is changed: it moves to the end of the order, and the next pages neither
    # repeat the unchanged rows nor skip any row after the cursor.
    moved = first["edges"][0]["node"]["id"]
    shop.control("PATCH", f"/products/{moved}", json={"title": "Moved to the end"})
    rest = []
    after = cursor
    while after:
        page = shop.gql(PAGE, {"sort": "UPDATED_AT", "after": after})["data"]["products"]
        rest += [edge["node"] for edge in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    ids = [n["id"] for n in rest]
    assert ids[-1] == moved
    assert len(ids) == len(set(ids))
    assert seen.isdisjoint(ids[:-1])
    assert len(seen) + len(ids) - 1 == 45
    wrong = shop.gql(PAGE, {"sort": "ID", "after": cursor})
    assert "Invalid cursor" in wrong["errors"][0]["message"]


def test_sort_key_in_bulk_query(shop: Shop) -> None:
    query = "{ products(sortKey: VENDOR, reverse: true) { edges { node { id vendor variants { edges { node { id } } } } } } }"
    op = shop.wait_bulk(shop.run_bulk(query, group=False))
    lines = [json.loads(line) for line in httpx.get(op["url"]).text.splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    assert len(roots) == 45
    assert [(r["vendor"], _id(r)) for r in roots] == sorted(
        ((r["vendor"], _id(r)) for r in roots), reverse=True
    )


def test_variant_and_item_orders(shop: Shop) -> None:
    by_sku = shop.gql("{ productVariants(first: 250, sortKey: SKU) { nodes { id sku } } }")["data"][
        "productVariants"
    ]["nodes"]
    assert [v["sku"] or "" for v in by_sku] == sorted(v["sku"] or "" for v in by_sku)
    reverse_items = shop.gql("{ inventoryItems(first: 250, reverse: true) { nodes { id } } }")[
        "data"
    ]["inventoryItems"]["nodes"]
    numbers = [int(n["id"].rsplit("/", 1)[1]) for n in reverse_items]
    assert numbers == sorted(numbers, reverse=True)
    assert len(numbers) == len(by_sku)
    # Paging reversed items with a cursor continues below it.
    page = shop.gql("{ inventoryItems(first: 5, reverse: true) { pageInfo { endCursor } } }")
    cursor = page["data"]["inventoryItems"]["pageInfo"]["endCursor"]
    after = shop.gql(
        "query($a: String) { inventoryItems(first: 5, reverse: true, after: $a) { nodes { id } } }",
        {"a": cursor},
    )["data"]["inventoryItems"]["nodes"]
    assert [int(n["id"].rsplit("/", 1)[1]) for n in after] == numbers[5:10]


def test_counts_follow_creates_and_deletes(make_emulator: MakeEmulator, connect: Connect) -> None:
    shop = connect(
        make_emulator(EmulatorConfig(shops=[ShopConfig(name="counted", products=12)])), "counted"
    )
    query = (
        "{ productsCount { count precision } limited: productsCount(limit: 5) { count precision } }"
    )
    assert shop.gql(query)["data"] == {
        "productsCount": {"count": 12, "precision": "EXACT"},
        "limited": {"count": 5, "precision": "AT_LEAST"},
    }
    shop.control("DELETE", "/products/gid://shopify/Product/8000000000003")
    shop.control("POST", "/products", json={"title": "New"})
    shop.control("POST", "/products", json={"title": "Newer"})
    truth = shop.control("GET", "/counts")["products"]
    assert shop.gql(query)["data"]["productsCount"]["count"] == truth == 13
