"""The generated-timestamp index: windows and orders equal a scan of every product, overlay included."""

from __future__ import annotations

import random

import pytest

from shopify_emulator import generator
from shopify_emulator.catalog import Catalog
from shopify_emulator.catalog_index import ordered_indexes, product_value
from shopify_emulator.config import CatalogShape
from shopify_emulator.query_filter import matches, parse


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog = Catalog(CatalogShape(), seed=9, size=3000, owner_app_id=1)
    catalog.update_product(17, {"title": "Changed"})
    catalog.delete_product(18)
    catalog.create_product("Created")
    return catalog


def _values(catalog: Catalog, index: int) -> dict[str, str]:
    product = catalog.product(index)
    assert product is not None
    return {"updated_at": product.updated_at, "created_at": product.created_at}


def test_index_values_are_the_generated_ones() -> None:
    shape = CatalogShape(locations=3)
    for seed in (1, 9):
        catalog = Catalog(shape, seed=seed, size=400, owner_app_id=1)
        for index in range(400):
            product = generator.generate_product(shape, seed, index)
            assert generator.product_title(seed, index) == product.title
            assert generator.product_vendor(seed, index) == product.vendor
            assert generator.product_type(seed, index) == product.product_type
            assert generator.inventory_total(shape, seed, index) == sum(
                v.inventory_quantity for v in product.variants
            )
            assert catalog.index.updated()[index] == product_value(product, "UPDATED_AT")
            assert catalog.index.created()[index] == product_value(product, "CREATED_AT")


@pytest.mark.parametrize(
    "sort", ["ID", "TITLE", "UPDATED_AT", "CREATED_AT", "VENDOR", "PRODUCT_TYPE", "INVENTORY_TOTAL"]
)
def test_orders_equal_sorting_every_product(catalog: Catalog, sort: str) -> None:
    products = [p for p in catalog.iter_products()]
    expected = sorted((product_value(p, sort), p.index) for p in products)
    assert list(ordered_indexes(catalog, [], sort, False, None)) == expected
    assert list(ordered_indexes(catalog, [], sort, True, None)) == expected[::-1]
    # Resuming after any entry gives exactly the rest.
    cut = expected[1234]
    assert list(ordered_indexes(catalog, [], sort, False, cut)) == expected[1235:]


def test_date_windows_equal_a_scan(catalog: Catalog) -> None:
    rng = random.Random(3)
    # One scan of the catalog (generating a product is the slow part), then every window is checked
    # against it.
    scanned = [
        (p.index, {"updated_at": p.updated_at, "created_at": p.created_at})
        for p in catalog.iter_products()
    ]
    values = dict(scanned)
    stamps = sorted(v["updated_at"] for _, v in scanned)
    for _ in range(20):
        low, high = sorted(rng.sample(stamps, 2))
        for text in (
            f"updated_at:>={low} updated_at:<{high}",
            f"updated_at:>{low}",
            f"created_at:<={high} updated_at:>={low}",
        ):
            terms = parse(text)
            got = [
                i
                for _, i in ordered_indexes(catalog, terms, "ID", False, None)
                if matches(terms, values[i])
            ]
            assert got == [i for i, v in scanned if matches(terms, v)]


def test_a_narrow_window_reads_only_its_products(catalog: Catalog) -> None:
    stamps = sorted(p.updated_at for p in catalog.iter_products())
    terms = parse(f"updated_at:>={stamps[1500]} updated_at:<={stamps[1529]}")
    candidates = list(ordered_indexes(catalog, terms, "ID", False, None))
    # 30 products match; the candidates are those plus at most the overlay, never the catalog.
    assert 30 <= len(candidates) <= 30 + len(catalog.overlay)
    future = parse("updated_at:>2026-06-01T00:00:00Z")
    assert [i for _, i in ordered_indexes(catalog, future, "ID", False, None)] == sorted(
        i for i, p in catalog.overlay.items() if p is not None
    )
