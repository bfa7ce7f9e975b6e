"""Orders and windows over the generated catalog, without generating the products they skip.

Generated product *i* is a pure function of the seed, so its timestamps and sort keys can be computed from
a few hashes instead of building the product. This module keeps, per catalog and only once asked, compact
arrays of those values and the product indexes sorted by them; a date-windowed query then bisects the
sorted array and generates only the products inside the window, and `sortKey:` pages walk an order
array. Products in the overlay (created, changed or deleted) are never read from the arrays: they are
merged in by their current values, so an answer is always what scanning every product would give.
"""

from __future__ import annotations

import bisect
import calendar
import heapq
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from shopify_emulator import bulk_draws, generator, ids, query_filter
from shopify_emulator.config import CatalogShape
from shopify_emulator.model import Product

_ALIASES = {"RELEVANCE": "ID", "PUBLISHED_AT": "CREATED_AT"}
# Above this share of the catalog a window is cheaper to scan than to sort.
WINDOW_SHARE = 0.5

SortValue = Any
Entry = tuple[SortValue, int]  # (sort value, product index)


class SeededCatalog(Protocol):
    """What the index reads of its catalog (catalog.Catalog, which owns the index, imports this
    module, so the index names the catalog by what it needs, not by its class)."""

    @property
    def shape(self) -> CatalogShape: ...

    @property
    def seed(self) -> int: ...

    @property
    def generated(self) -> int: ...


class IndexedCatalog(SeededCatalog, Protocol):
    """A catalog with its index and its overlay of created, changed (and, as None, deleted) products."""

    @property
    def index(self) -> GeneratedIndex: ...

    @property
    def overlay(self) -> dict[int, Product | None]: ...


_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def epoch(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, _STAMP))


class GeneratedIndex:
    """Timestamps and sort orders of a catalog's generated products (indexes 0..size-1)."""

    def __init__(self, catalog: SeededCatalog) -> None:
        self.catalog = catalog
        self.size = catalog.generated
        self._lock = threading.Lock()
        self._created: array[int] | None = None
        self._updated: array[int] | None = None
        self._orders: dict[str, array[int]] = {}
        self._totals: array[int] | None = None
        # True while `warm` runs (the control API's health answer lists such shops).
        self.warming = False

    def warm(self) -> None:
        """Build the timestamp orders now (a big shop's first date-filtered query then finds them)."""
        self.warming = True
        try:
            self.order("UPDATED_AT")
            self.order("CREATED_AT")
        finally:
            self.warming = False

    # -- per-product values -------------------------------------------------------------------------

    def _stamps(self) -> tuple[array[int], array[int]]:
        with self._lock:
            if self._created is None or self._updated is None:
                # The same draws as generator.generate_product, nothing else, for every product
                # at once.
                created_np, updated_np = bulk_draws.stamps(self.catalog.seed, self.size)
                created = array("q", created_np.tobytes())
                updated = array("q", updated_np.tobytes())
                self._created, self._updated = created, updated
            return self._created, self._updated

    def created(self) -> array[int]:
        return self._stamps()[0]

    def updated(self) -> array[int]:
        return self._stamps()[1]

    def totals(self) -> array[int]:
        with self._lock:
            if self._totals is None:
                shape, seed = self.catalog.shape, self.catalog.seed
                totals = array("q", bytes(8 * self.size))
                for index in range(self.size):
                    totals[index] = generator.inventory_total(shape, seed, index)
                self._totals = totals
            return self._totals

    def value_fn(self, key: str) -> Callable[[int], SortValue]:
        """The sort value of generated product `index` under `key`, as compared with overlay values."""
        shape, seed = self.catalog.shape, self.catalog.seed
        if key == "ID":
            return lambda index: index
        if key == "UPDATED_AT":
            return self.updated().__getitem__
        if key == "CREATED_AT":
            return self.created().__getitem__
        if key == "INVENTORY_TOTAL":
            return self.totals().__getitem__
        if key == "TITLE":
            return lambda index: generator.product_title(seed, index)
        if key == "VENDOR":
            return lambda index: generator.product_vendor(seed, index)
        if key == "PRODUCT_TYPE":
            return lambda index: generator.product_type(seed, index)
        del shape
        raise ValueError(f"unknown sort key {key}")

    # -- orders -------------------------------------------------------------------------------------

    def order(self, key: str) -> Sequence[int]:
        """Generated indexes sorted by (value, index)."""
        if key == "ID":
            return range(self.size)
        cached = self._orders.get(key)
        if cached is not None:
            return cached
        built = self._build_order(key)
        with self._lock:
            self._orders.setdefault(key, built)
            return self._orders[key]

    def _build_order(self, key: str) -> array[int]:
        seed = self.catalog.seed
        if key in ("UPDATED_AT", "CREATED_AT"):
            stamps = self.updated() if key == "UPDATED_AT" else self.created()
            # A stable sort keeps equal stamps in index order, as sorted() does.
            ordered = np.argsort(np.frombuffer(stamps, dtype=np.int64), kind="stable")
            return array("q", ordered.astype(np.int64).tobytes())
        if key == "INVENTORY_TOTAL":
            values = self.value_fn(key)
            return array("q", sorted(range(self.size), key=values))
        if key in ("VENDOR", "PRODUCT_TYPE"):
            # Eight possible values: a bucket pass keeps each bucket in index order, no sort needed.
            of = generator.product_vendor if key == "VENDOR" else generator.product_type
            buckets: dict[str, array[int]] = {}
            for index in range(self.size):
                buckets.setdefault(of(seed, index), array("q")).append(index)
            out = array("q")
            for value in sorted(buckets):
                out.extend(buckets[value])
            return out
        # TITLE: "Adjective Noun index"; bucket by the 256 prefixes, then sort each bucket's titles.
        prefixes: dict[str, list[int]] = {}
        for index in range(self.size):
            prefixes.setdefault(generator.title_prefix(seed, index), []).append(index)
        out = array("q")
        for prefix in sorted(prefixes):
            out.extend(sorted(prefixes[prefix], key=lambda i: generator.product_title(seed, i)))
        return out

    def window(self, terms: list[query_filter.Term]) -> list[int] | None:
        """Generated indexes whose timestamps can satisfy the date terms, in index order; None when the
        terms do not narrow the catalog enough to beat a scan."""
        windows = [(f, b) for f in ("updated_at", "created_at") if (b := _bounds(terms, f))]
        if not windows:
            return None
        for _, (low, high) in windows:
            # Generated stamps all lie in [EPOCH_START, GENERATED_HORIZON): no index needed to say none.
            if low >= generator.GENERATED_HORIZON or high < generator.EPOCH_START or low > high:
                return []
        best: tuple[int, int, str] | None = None
        for field, (low, high) in windows:
            key = "UPDATED_AT" if field == "updated_at" else "CREATED_AT"
            order = self.order(key)
            values = (self.updated() if field == "updated_at" else self.created()).__getitem__
            first = bisect.bisect_left(order, low, key=values)
            last = bisect.bisect_right(order, high, key=values)
            if best is None or last - first < best[1] - best[0]:
                best = (first, last, key)
        assert best is not None
        if best[1] - best[0] > WINDOW_SHARE * max(1, self.size):
            return None
        return sorted(self.order(best[2])[best[0] : best[1]])

    def matching(self, terms: list[query_filter.Term]) -> NDArray[np.int64]:
        """Generated indexes, ascending, whose timestamps satisfy every term; the terms must all be
        `exact_date` ones. Only the window's products are compared (all of them for a wide window)."""
        window = self.window(terms)
        candidates = (
            np.arange(self.size, dtype=np.int64)
            if window is None
            else np.asarray(window, dtype=np.int64)
        )
        keep = np.ones(len(candidates), dtype=bool)
        for term in terms:
            stamps = self.updated() if term.field == "updated_at" else self.created()
            values = np.frombuffer(stamps, dtype=np.int64)[candidates]
            wanted = epoch(term.value)
            hit = {
                ">": values > wanted,
                ">=": values >= wanted,
                "<": values < wanted,
                "<=": values <= wanted,
            }.get(term.op, values == wanted)
            keep &= hit != term.negate
        matched: NDArray[np.int64] = candidates[keep]
        return matched


def exact_date(term: query_filter.Term) -> bool:
    """True for a term on a product timestamp whose value is a whole stamp in the catalog's own form:
    comparing epoch seconds then answers what the filter's comparison of the strings answers."""
    if term.field not in ("updated_at", "created_at"):
        return False
    try:
        stamp = time.strftime(_STAMP, time.gmtime(epoch(term.value)))
    except ValueError:
        return False
    return stamp == term.value


def _bounds(terms: list[query_filter.Term], field: str) -> tuple[int, int] | None:
    """The closed epoch interval the (non-negated) terms on `field` allow, or None without such terms."""
    low, high = -(1 << 62), 1 << 62
    found = False
    for term in terms:
        if term.field != field or term.negate:
            continue
        try:
            value = epoch(term.value)
        except ValueError:
            return None
        found = True
        if term.op == ">":
            low = max(low, value + 1)
        elif term.op == ">=":
            low = max(low, value)
        elif term.op == "<":
            high = min(high, value - 1)
        elif term.op == "<=":
            high = min(high, value)
        else:
            low, high = max(low, value), min(high, value)
    return (low, high) if found else None


def product_value(product: Product, key: str) -> SortValue:
    if key == "ID":
        return product.index
    if key == "UPDATED_AT":
        return epoch(product.updated_at)
    if key == "CREATED_AT":
        return epoch(product.created_at)
    if key == "INVENTORY_TOTAL":
        return sum(v.inventory_quantity for v in product.variants)
    if key == "TITLE":
        return product.title
    if key == "VENDOR":
        return product.vendor
    return product.product_type


def normalise_sort_key(key: str | None) -> str:
    key = key or "ID"
    return _ALIASES.get(key, key)


def ordered_indexes(
    catalog: IndexedCatalog,
    terms: list[query_filter.Term],
    sort_key: str,
    reverse: bool,
    after: Entry | None,
) -> Iterator[Entry]:
    """(sort value, index) of every product that may match `terms`, in Shopify's order for `sort_key`
    (ties broken by id), starting after the entry `after`. Date terms are answered from the index;
    the caller still checks every term on the products it reads."""
    index = catalog.index
    overlay = catalog.overlay
    window = (
        index.window(terms) if any(t.field in ("updated_at", "created_at") for t in terms) else None
    )
    value_of = index.value_fn(sort_key) if sort_key != "ID" else None
    generated: Iterable[Entry]
    if window is not None:
        candidates = [i for i in window if i not in overlay]
        if value_of is None:
            entries = [(i, i) for i in candidates]
        else:
            entries = sorted((value_of(i), i) for i in candidates)
        if reverse:
            entries.reverse()
        generated = _after_list(entries, after, reverse)
    else:
        generated = _walk_order(index, sort_key, value_of, reverse, after, overlay)
    changed = _overlay_entries(catalog, sort_key, reverse, after)
    return heapq.merge(generated, changed, reverse=reverse)


def _after_list(entries: list[Entry], after: Entry | None, reverse: bool) -> Iterator[Entry]:
    if after is None:
        return iter(entries)
    if reverse:
        # Descending: a window is small, so a filter is as good as a bisect.
        return iter([e for e in entries if e < after])
    return iter(entries[bisect.bisect_right(entries, after) :])


def _walk_order(
    index: GeneratedIndex,
    sort_key: str,
    value_of: Callable[[int], SortValue] | None,
    reverse: bool,
    after: Entry | None,
    overlay: dict[int, Product | None],
) -> Iterator[Entry]:
    order = index.order(sort_key)
    size = len(order)
    if value_of is None:
        # ID order: the order is the index itself, so the cursor is the position.
        if reverse:
            start = size - 1 if after is None else min(size, after[1]) - 1
            positions: Iterable[int] = range(start, -1, -1)
        else:
            positions = range(0 if after is None else max(0, after[1] + 1), size)
        for i in positions:
            if i not in overlay:
                yield i, i
        return
    key = value_of

    def entry(i: int) -> Entry:
        return (key(i), i)

    if reverse:
        stop = size if after is None else bisect.bisect_left(order, after, key=entry)
        for position in range(stop - 1, -1, -1):
            i = order[position]
            if i not in overlay:
                yield key(i), i
    else:
        start = 0 if after is None else bisect.bisect_right(order, after, key=entry)
        for position in range(start, size):
            i = order[position]
            if i not in overlay:
                yield key(i), i


def _overlay_entries(
    catalog: IndexedCatalog, sort_key: str, reverse: bool, after: Entry | None
) -> list[Entry]:
    entries = []
    for i, product in list(catalog.overlay.items()):
        if product is None:
            continue
        entries.append((product_value(product, sort_key), i))
    entries.sort(reverse=reverse)
    if after is not None:
        entries = [e for e in entries if (e < after if reverse else e > after)]
    return entries


def gid_number(index: int) -> int:
    return ids.PRODUCT_BASE + index
