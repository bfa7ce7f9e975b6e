"""Variant sort orders (`productVariants(sortKey: SKU | TITLE | NAME | INVENTORY_QUANTITY | ...)`) over
the generated catalog, without building the products they pass.

A generated variant's sku, title and inventory quantity are draws from its id (see
`generator.variant_sort_values`), so each order is built once per catalog and key, only when first asked,
as an array of variant ids sorted by (value, id), and a page bisects it from its cursor. Variants of
products in the overlay are never read from the arrays: they are merged in by their current values, as
the product orders in `catalog_index` do, so a page is what sorting every variant would give.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from array import array
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from shopify_emulator import generator, ids
from shopify_emulator.catalog_index import SeededCatalog
from shopify_emulator.model import Product, Variant

Entry = tuple[Any, int]  # (sort value, variant id)

# Which value of `generator.variant_sort_values` each sort key orders by. Shopify's NAME is the
# variant's display name, which for the emulator's variants is their title.
_SKU, _TITLE, _QUANTITY = 1, 2, 3
VARIANT_SORT_COLUMNS: dict[str, int] = {
    "SKU": _SKU,
    "TITLE": _TITLE,
    "NAME": _TITLE,
    "INVENTORY_QUANTITY": _QUANTITY,
    "INVENTORY_LEVELS_AVAILABLE": _QUANTITY,
}
# The same values read off a variant object (overlay variants, and a product's own variant list).
VARIANT_SORT_VALUES: dict[str, Callable[[Variant], Any]] = {
    "SKU": lambda v: v.sku or "",
    "TITLE": lambda v: v.title,
    "NAME": lambda v: v.title,
    "INVENTORY_QUANTITY": lambda v: v.inventory_quantity,
    "INVENTORY_LEVELS_AVAILABLE": lambda v: v.inventory_quantity,
}


class VariantCatalog(SeededCatalog, Protocol):
    @property
    def variant_index(self) -> VariantIndex: ...

    @property
    def overlay(self) -> dict[int, Product | None]: ...


def product_of(number: int) -> int:
    return (number - ids.VARIANT_BASE) // ids.VARIANT_SLOTS


class VariantIndex:
    """The variant orders of a catalog's generated products (indexes 0..size-1)."""

    def __init__(self, catalog: SeededCatalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._orders: dict[int, array[int]] = {}

    def value(self, column: int, number: int) -> Any:
        """The sort value of generated variant `number` under `column`."""
        index, position = divmod(number - ids.VARIANT_BASE, ids.VARIANT_SLOTS)
        row = generator.variant_sort_value(self.catalog.shape, self.catalog.seed, index, position)
        return row[column]

    def order(self, column: int) -> array[int]:
        """Generated variant ids sorted by (value, id)."""
        with self._lock:
            found = self._orders.get(column)
            if found is None:
                found = self._orders[column] = self._build(column)
            return found

    def _build(self, column: int) -> array[int]:
        shape, seed, size = self.catalog.shape, self.catalog.seed, self.catalog.generated
        if column == _SKU:
            return self._sku_order()
        # Titles and quantities take few distinct values: one pass into per-value buckets, each in
        # id order (the tie-break), then the buckets in value order. No sort of every variant.
        buckets: dict[Any, array[int]] = {}
        for index in range(size):
            count = generator.variant_count(shape, seed, index)
            base = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS
            if column == _TITLE:
                values: list[Any] = generator.variant_titles(count)
            else:
                values = [generator.variant_quantity(shape, index, p) for p in range(count)]
            for position, value in enumerate(values):
                bucket = buckets.get(value)
                if bucket is None:
                    bucket = buckets[value] = array("q")
                bucket.append(base + position)
        out = array("q")
        for value in sorted(buckets):
            out.extend(buckets[value])
        return out

    def _sku_order(self) -> array[int]:
        # SKUs are `SKU-{index}-{position}` (or none, sorted as ""): their string order is the
        # products' indexes in string order, then each product's positions in string order, so two
        # small sorts of numbers replace a sort of every SKU string.
        shape, seed, size = self.catalog.shape, self.catalog.seed, self.catalog.generated
        counts = array("q", (generator.variant_count(shape, seed, i) for i in range(size)))
        without = array("q")
        for index in range(size):
            base = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS
            for position in range(counts[index]):
                if generator.variant_sku(index, position) is None:
                    without.append(base + position)
        skipped = set(without)
        out = array("q", without)
        by_string: dict[int, list[int]] = {}
        for index in sorted(range(size), key=str):
            count = counts[index]
            positions = by_string.get(count)
            if positions is None:
                positions = by_string[count] = sorted(range(count), key=str)
            base = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS
            out.extend(base + p for p in positions if base + p not in skipped)
        return out


def ordered_variants(
    catalog: VariantCatalog, sort_key: str, reverse: bool, after: Entry | None
) -> Iterator[Entry]:
    """(sort value, variant id) of every variant in Shopify's order for `sort_key` (ties by id),
    starting after the entry `after` (before it, reading `reverse`)."""
    column = VARIANT_SORT_COLUMNS[sort_key]
    generated = _walk(catalog, column, reverse, after)
    changed = _overlay_entries(catalog, VARIANT_SORT_VALUES[sort_key], reverse, after)
    return heapq.merge(generated, changed, reverse=reverse)


def _walk(
    catalog: VariantCatalog, column: int, reverse: bool, after: Entry | None
) -> Iterator[Entry]:
    index = catalog.variant_index
    order = index.order(column)
    overlay = catalog.overlay

    def entry(number: int) -> Entry:
        return (index.value(column, number), number)

    if reverse:
        stop = len(order) if after is None else bisect.bisect_left(order, after, key=entry)
        positions: range = range(stop - 1, -1, -1)
    else:
        start = 0 if after is None else bisect.bisect_right(order, after, key=entry)
        positions = range(start, len(order))
    for position in positions:
        number = order[position]
        if product_of(number) not in overlay:
            yield entry(number)


def _overlay_entries(
    catalog: VariantCatalog,
    value_of: Callable[[Variant], Any],
    reverse: bool,
    after: Entry | None,
) -> list[Entry]:
    entries = [
        (value_of(variant), variant.id)
        for product in list(catalog.overlay.values())
        if product is not None
        for variant in product.variants
    ]
    entries.sort(reverse=reverse)
    if after is not None:
        entries = [e for e in entries if (e < after if reverse else e > after)]
    return entries
