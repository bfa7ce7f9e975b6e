"""The variant sort index: its values are the generated ones, and its orders equal sorting every variant,
overlay included."""

from __future__ import annotations

from typing import Any

import pytest

from shopify_emulator import generator, ids
from shopify_emulator.catalog import Catalog
from shopify_emulator.config import CatalogShape
from shopify_emulator.variant_index import VARIANT_SORT_VALUES, ordered_variants, product_of

KEYS = sorted(VARIANT_SORT_VALUES)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog = Catalog(CatalogShape(locations=3), seed=4, size=1500, owner_app_id=1)
    catalog.update_product(11, {"variants_count": 1})  # fewer variants than generated
    catalog.delete_product(12)  # its variants leave every order
    # A changed quantity moves the variant in the INVENTORY_QUANTITY orders.
    catalog.set_inventory(ids.inventory_item_id(13, 0), 0, 9_999)
    catalog.create_product("Created")
    return catalog


def _every_variant(catalog: Catalog, key: str) -> list[tuple[Any, int]]:
    value_of = VARIANT_SORT_VALUES[key]
    return sorted((value_of(v), v.id) for p in catalog.iter_products() for v in p.variants)


def test_sort_values_are_the_generated_variants() -> None:
    for shape in (CatalogShape(), CatalogShape(locations=12, variants_mean=40, variants_max=300)):
        for index in range(300):
            product = generator.generate_product(shape, 3, index)
            rows = generator.variant_sort_values(shape, 3, index)
            assert rows == [
                (v.id, v.sku or "", v.title, v.inventory_quantity) for v in product.variants
            ]


@pytest.mark.parametrize("key", KEYS)
def test_orders_equal_sorting_every_variant(catalog: Catalog, key: str) -> None:
    expected = _every_variant(catalog, key)
    assert len(expected) > 3000
    assert list(ordered_variants(catalog, key, False, None)) == expected
    assert list(ordered_variants(catalog, key, True, None)) == expected[::-1]
    # Resuming after (or, reversed, before) any entry gives exactly the rest.
    cut = expected[1234]
    assert list(ordered_variants(catalog, key, False, cut)) == expected[1235:]
    assert list(ordered_variants(catalog, key, True, cut)) == expected[:1234][::-1]


def test_overlay_changes_are_in_the_orders(catalog: Catalog) -> None:
    by_quantity = list(ordered_variants(catalog, "INVENTORY_QUANTITY", True, None))
    changed = catalog.product(13)
    assert changed is not None
    assert by_quantity[0] == (changed.variants[0].inventory_quantity, changed.variants[0].id)
    every = {number for _, number in ordered_variants(catalog, "SKU", False, None)}
    assert not any(product_of(number) == 12 for number in every)
    shortened = catalog.product(11)
    assert shortened is not None
    assert len(shortened.variants) == 1
    assert [n for n in every if product_of(n) == 11] == [shortened.variants[0].id]
    created = catalog.product(catalog.upper - 1)
    assert created is not None
    assert {v.id for v in created.variants} <= every
