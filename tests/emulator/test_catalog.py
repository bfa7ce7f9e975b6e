"""The generated catalog: deterministic, O(1) per product, large ids, counts that match what is served."""

from __future__ import annotations

from shopify_emulator import CatalogShape, EmulatorConfig, ShopConfig, ids
from shopify_emulator.catalog import Catalog
from shopify_emulator.generator import generate_product
from tests.emulator.clients import Connect, MakeEmulator


def test_product_is_a_pure_function_of_seed_and_index() -> None:
    shape = CatalogShape()
    catalog = Catalog(shape, seed=3, size=1_000_000, owner_app_id=1)
    far = catalog.product(987_654)
    assert far is not None
    # Generated directly, without anything before it, and identical on a second call.
    assert far == generate_product(shape, 3, 987_654)
    assert (
        generate_product(shape, 4, 987_654).title != far.title
        or generate_product(shape, 4, 987_654).updated_at != far.updated_at
    )
    assert far.id == 8_000_000_000_000 + 987_654
    # Variant-metafield ids exceed 2^53: a client parsing them as doubles would corrupt them.
    assert ids.VARIANT_METAFIELD_BASE > 2**53
    # As on Shopify, a level's number is its location's: two items at one location share it,
    # and only the item in the query string tells their levels apart.
    first, second = (v.inventory_item_id for v in far.variants[:2])
    assert ids.level_gid(first, 1).split("?")[0] == ids.level_gid(second, 1).split("?")[0]
    assert ids.parse_level_gid(ids.level_gid(second, 1)) == (second, 1)
    assert ids.parse_level_gid(ids.level_gid(second, 1).split("?")[0]) is None
    iterated = list(Catalog(shape, seed=3, size=5, owner_app_id=1).iter_products())
    assert [p.id for p in iterated] == [generate_product(shape, 3, i).id for i in range(5)]


def test_shapes_are_realistic() -> None:
    shape = CatalogShape(huge_product_every=50)
    products = [generate_product(shape, 1, i) for i in range(400)]
    assert any(len(p.variants) == 2048 for p in products), "huge products appear"
    assert any(any(ord(c) > 127 for c in p.title) for p in products), "unicode titles"
    assert any(p.description_html == "" for p in products)
    assert any(len(p.description_html) > 5000 for p in products)
    assert any(len(p.tags) >= 50 for p in products)
    variants = [v for p in products for v in p.variants]
    assert any(v.sku is None for v in variants)
    assert any(v.compare_at_price is None for v in variants)
    assert all(len(v.available) == shape.locations for v in variants)
    normal = [len(p.variants) for p in products if len(p.variants) < 2048]
    assert 2.5 < sum(normal) / len(normal) < 3.5
    assert all(len({v.id for v in p.variants}) == len(p.variants) for p in products)


def test_counts_match_the_served_catalog(make_emulator: MakeEmulator, connect: Connect) -> None:
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="counted", products=23, seed=11)])
    )
    shop = connect(emulator, "counted")
    counts = shop.control("GET", "/counts")
    seen_products = seen_variants = seen_metafields = 0
    after = None
    while True:
        page = shop.gql(
            "query($after: String) { products(first: 5, after: $after) { pageInfo { hasNextPage endCursor } "
            "nodes { id metafields(first: 10) { nodes { id } } variants(first: 10) { nodes { id metafields(first: 3) { nodes { id } } } } } } }",
            {"after": after},
        )["data"]["products"]
        for product in page["nodes"]:
            seen_products += 1
            seen_metafields += len(product["metafields"]["nodes"])
            seen_variants += len(product["variants"]["nodes"])
            seen_metafields += sum(
                len(v["metafields"]["nodes"]) for v in product["variants"]["nodes"]
            )
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen_products == counts["products"] == 23
    assert seen_variants == counts["variants"] == counts["inventory_items"]
    # The primary app owns the app-owned metafields, so its token sees all of them.
    assert seen_metafields == counts["metafields"]
    assert counts["app_owned_metafields"] >= 4
    assert counts["inventory_levels"] == counts["variants"] * counts["locations"]


def test_overlay_changes_are_reflected_in_counts_and_state(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    emulator = make_emulator(EmulatorConfig(shops=[ShopConfig(name="overlay", products=10)]))
    shop = connect(emulator, "overlay")
    before = shop.control("GET", "/counts")
    victim = shop.control("GET", "/products/8000000000002")
    created = shop.control("POST", "/products", json={"title": "Brand new ☕", "tags": ["x", "y"]})[
        "product"
    ]
    shop.control("DELETE", "/products/gid://shopify/Product/8000000000002")
    after = shop.control("GET", "/counts")
    assert after["products"] == before["products"]  # one created, one deleted
    assert after["variants"] == before["variants"] - len(victim["variants"]) + len(
        created["variants"]
    )
    assert created["id"] == "gid://shopify/Product/8000000000010"
    assert created["title"] == "Brand new ☕"
    assert created["tags"] == ["x", "y"]
    assert shop.http.get("/_emulator/shops/overlay/products/8000000000002").status_code == 404
    updated = shop.control("PATCH", "/products/8000000000003", json={"title": "Renamed"})["product"]
    original = shop.control("GET", "/products/8000000000004")
    assert updated["title"] == "Renamed"
    assert updated["updatedAt"] > original["updatedAt"]
