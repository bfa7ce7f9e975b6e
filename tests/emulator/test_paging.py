"""Backward paging (`last`/`before`) as Shopify pages connections, and variant sort orders paged over
HTTP: a backward walk is the forward walk reversed, whatever the order or the connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig
from tests.emulator.clients import Connect, MakeEmulator, Shop

SHAPES = {
    "products": ("ProductSortKeys", "id title"),
    "productVariants": ("ProductVariantSortKeys", "id sku title inventoryQuantity"),
    "inventoryItems": (None, "id"),
    "locations": ("LocationSortKeys", "id name"),
}


@pytest.fixture(scope="module")
def paged(make_emulator: MakeEmulator) -> RunningEmulator:
    # Paging, not the cost limit, is under test: a bucket the module's queries cannot drain (with
    # the standard 2,000 points, a fast run of them was THROTTLED).
    shop = ShopConfig(name="paged", products=23, seed=3, bucket_size=1_000_000, restore_rate=10_000)
    return make_emulator(EmulatorConfig(shops=[shop]))


@pytest.fixture
def shop(paged: RunningEmulator, connect: Connect) -> Shop:
    return connect(paged, "paged")


def _query(field: str, direction: str) -> str:
    sort_type, selection = SHAPES[field]
    count, cursor = ("first", "after") if direction == "forward" else ("last", "before")
    sort_var = f", $sort: {sort_type}" if sort_type else ""
    sort_arg = ", sortKey: $sort" if sort_type else ""
    return (
        f"query($n: Int, $c: String, $reverse: Boolean{sort_var}) {{ {field}({count}: $n, "
        f"{cursor}: $c, reverse: $reverse{sort_arg}) {{ edges {{ cursor node {{ {selection} }} }} "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
    )


def _page(shop: Any, field: str, direction: str, **variables: Any) -> dict[str, Any]:
    out = shop.gql(_query(field, direction), variables)
    assert "errors" not in out, out
    return dict(out["data"][field])


def _forward(shop: Any, field: str, size: int, **variables: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = _page(shop, field, "forward", n=size, c=cursor, **variables)
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        cursor = page["pageInfo"]["endCursor"]


def _backward(shop: Any, field: str, size: int, **variables: Any) -> list[str]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = _page(shop, field, "backward", n=size, c=cursor, **variables)
        pages.append([edge["node"]["id"] for edge in page["edges"]])
        if not page["pageInfo"]["hasPreviousPage"]:
            return [node for chunk in reversed(pages) for node in chunk]
        cursor = page["pageInfo"]["startCursor"]


@pytest.mark.parametrize(
    ("field", "sort", "reverse"),
    [
        ("products", "ID", False),
        ("products", "TITLE", True),
        ("products", "UPDATED_AT", False),
        ("productVariants", "ID", True),
        ("productVariants", "SKU", False),
        ("productVariants", "INVENTORY_QUANTITY", True),
        ("productVariants", "TITLE", False),
        ("inventoryItems", None, False),
        ("locations", "NAME", True),
    ],
)
def test_backward_walk_is_the_forward_walk(
    shop: Shop, field: str, sort: str | None, reverse: bool
) -> None:
    variables: dict[str, Any] = {"reverse": reverse}
    if sort is not None:
        variables["sort"] = sort
    forward = _forward(shop, field, 4, **variables)
    assert len(forward) == len(set(forward))
    assert len(forward) >= 2
    assert _backward(shop, field, 4, **variables) == forward
    # One big page each way holds the same rows in the same order.
    everything = _page(shop, field, "backward", n=250, **variables)
    assert [e["node"]["id"] for e in everything["edges"]] == forward
    assert everything["pageInfo"]["hasPreviousPage"] is False


def test_last_before_is_the_rows_just_before_the_cursor(shop: Shop) -> None:
    forward = _page(shop, "products", "forward", n=12, sort="TITLE")
    edges = forward["edges"]
    before = _page(shop, "products", "backward", n=3, c=edges[9]["cursor"], sort="TITLE")
    assert [e["node"]["id"] for e in before["edges"]] == [e["node"]["id"] for e in edges[6:9]]
    assert [e["cursor"] for e in before["edges"]] == [e["cursor"] for e in edges[6:9]]
    assert before["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": True,
        "startCursor": edges[6]["cursor"],
        "endCursor": edges[8]["cursor"],
    }
    first_rows = _page(shop, "products", "backward", n=5, c=edges[2]["cursor"], sort="TITLE")
    assert [e["node"]["id"] for e in first_rows["edges"]] == [e["node"]["id"] for e in edges[:2]]
    assert first_rows["pageInfo"]["hasPreviousPage"] is False


def test_last_pages_a_products_own_lists(shop: Shop) -> None:
    query = """query($after: String, $before: String, $first: Int, $last: Int) {
      products(first: 10) { nodes { id variants(first: $first, after: $after, last: $last,
        before: $before, sortKey: SKU) { edges { cursor node { id } } pageInfo { hasPreviousPage } } } } }"""
    products = shop.gql(query, {"first": 20})["data"]["products"]["nodes"]
    product = max(products, key=lambda p: len(p["variants"]["edges"]))
    edges = product["variants"]["edges"]
    assert len(edges) >= 3
    index = products.index(product)
    tail = shop.gql(query, {"last": 2})["data"]["products"]["nodes"][index]["variants"]
    assert [e["node"]["id"] for e in tail["edges"]] == [e["node"]["id"] for e in edges[-2:]]
    assert tail["pageInfo"]["hasPreviousPage"] is True
    before = shop.gql(query, {"last": 5, "before": edges[-1]["cursor"]})["data"]["products"]
    rows = before["nodes"][index]["variants"]["edges"]
    assert [e["node"]["id"] for e in rows] == [e["node"]["id"] for e in edges[-6:-1]]


def test_variant_sort_pages_equal_sorting_every_variant(shop: Shop) -> None:
    every = _page(shop, "productVariants", "forward", n=250, sort="ID")["edges"]
    nodes = [e["node"] for e in every]
    keys: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("SKU", lambda n: n["sku"] or ""),
        ("TITLE", lambda n: n["title"]),
        ("INVENTORY_QUANTITY", lambda n: n["inventoryQuantity"]),
    ]
    for sort, key in keys:
        expected = sorted(nodes, key=lambda n: (key(n), int(n["id"].rsplit("/", 1)[1])))
        assert _forward(shop, "productVariants", 7, sort=sort) == [n["id"] for n in expected]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: 2, last: 2", "Passing both `first` and `last`"),
        ('first: 2, before: "x"', "first/after or last/before"),
        ('last: 2, after: "x"', "first/after or last/before"),
        ("last: 251", "The last argument must be between 0 and 250."),
        ("", "you must provide one of first or last"),
    ],
)
def test_paging_arguments_are_validated(shop: Shop, arguments: str, message: str) -> None:
    args = f"({arguments})" if arguments else ""
    out = shop.gql(f"{{ products{args} {{ nodes {{ id }} }} }}")
    assert out["data"] is None or out["data"]["products"] is None
    assert message in out["errors"][0]["message"], out
