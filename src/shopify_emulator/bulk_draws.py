"""The generator's draws for a range of products at once, as columns.

`generator` computes one product at a time in Python integers, a dozen bigint operations per splitmix64
draw. The fast bulk writer needs the same draws for thousands of products per batch: numpy's uint64
arithmetic wraps modulo 2**64, which is exactly splitmix64's `& MASK`, so each draw is a few vector
operations over the whole batch. What the lines hold that depends only on a small number (a price in
cents, a time of day, a set of tags, a variant's position) comes from tables built once per process and
indexed by the drawn numbers, so no line formats more than its ids.

Every column must equal what `generator.generate_product` draws for the same product;
`tests/emulator/test_bulk_fast.py` compares the lines built from them with the general path's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from shopify_emulator import generator as g
from shopify_emulator import ids
from shopify_emulator.config import CatalogShape

U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
Column = NDArray[np.object_]


def _u(value: int) -> np.uint64:
    return np.uint64(value & g.MASK)


_GOLDEN, _MUL1, _MUL2 = _u(0x9E3779B97F4A7C15), _u(0xBF58476D1CE4E5B9), _u(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix(values: U64) -> U64:
    """generator.mix over an array (uint64 wraps as `& MASK` does)."""
    value = values + _GOLDEN
    value = (value ^ (value >> _S30)) * _MUL1
    value = (value ^ (value >> _S27)) * _MUL2
    out: U64 = value ^ (value >> _S31)
    return out


def _objects(values: list[str]) -> Column:
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table


@functools.cache
def _time_of_day() -> Column:
    """`HH:MM:SSZ` by second of the day."""
    return _objects([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)])


_FIRST_DAY = g.EPOCH_START // 86400


@functools.cache
def _days() -> Column:
    """`YYYY-MM-DDT` of every day a generated stamp can fall on, from the first."""
    last = g.GENERATED_HORIZON // 86400
    return _objects([g.day_prefix(day) for day in range(_FIRST_DAY, last + 1)])


@functools.cache
def prices() -> Column:
    """`D.CC` by amount in cents (f"{cents / 100:.2f}" for every cents a variant can draw)."""
    return _objects([f"{c // 100}.{c % 100:02d}" for c in range(100_000)])


@functools.cache
def quoted_prices() -> Column:
    """`"D.CC"` by amount in cents, up to the largest compare-at price (5/4 of the largest price)."""
    return _objects([f'"{c // 100}.{c % 100:02d}"' for c in range(125_000)])


@functools.cache
def tag_sets() -> Column:
    """The JSON of `generator._tags`' sorted set, by the bit mask of the TAG_WORDS it holds."""
    words = g.TAG_WORDS
    return _objects(
        [
            msgspec.json.encode(
                sorted({words[n] for n in range(len(words)) if mask >> n & 1})
            ).decode()
            for mask in range(1 << len(words))
        ]
    )


TAGS_ALL = msgspec.json.encode(sorted({f"bulk-tag-{n:02d}" for n in range(60)})).decode()
_STATUS = _objects(
    ["ACTIVE" if r < 93 else ("DRAFT" if r < 98 else "ARCHIVED") for r in range(100)]
)
# Title prefix by the low byte of the product's hash: ADJECTIVES[h & 15], NOUNS[(h >> 4) & 15].
_TITLE_PREFIX = _objects([f"{g.ADJECTIVES[k & 15]} {g.NOUNS[k >> 4]} " for k in range(256)])
_HANDLE_PREFIX = _objects([f"{noun.lower()}-" for noun in g.NOUNS])
_VENDORS = _objects([msgspec.json.encode(v).decode() for v in g.VENDORS])
_PRODUCT_TYPES = _objects(list(g.PRODUCT_TYPES))


def _stamps(epoch_s: I64) -> Column:
    day, second = np.divmod(epoch_s, 86400)
    stamps: Column = _days()[day - _FIRST_DAY] + _time_of_day()[second]
    return stamps


def stamps(seed: int, size: int) -> tuple[I64, I64]:
    """(createdAt, updatedAt) in epoch seconds of generated products 0..size-1."""
    h2 = mix(mix(_u(seed * 0x100000001B3) ^ mix(np.arange(size, dtype=np.uint64))))
    created = (g.EPOCH_START + h2 % np.uint64(g.CREATED_SPAN_S)).astype(np.int64)
    updated = created + (mix(h2) % np.uint64(g.UPDATED_SPAN_S)).astype(np.int64)
    return created, updated


class Batch:
    """Draws of the generated products `indexes` of a catalog (ascending: a range of the catalog, or
    the products a date window selects), product columns first.

    Columns are Python lists (what the emitter's loop iterates); `variant_*` columns hold every variant
    of the batch, product after product, in position order.
    """

    def __init__(self, shape: CatalogShape, seed: int, indexes: I64) -> None:
        self.shape = shape
        index = indexes.astype(np.uint64)
        self.index: list[int] = index.tolist()
        h = mix(_u(seed * 0x100000001B3) ^ mix(index))
        h2 = mix(h)
        h3 = mix(h2)
        self.h, self.h2, self.h3 = h, h2, h3
        cap = max(1, min(shape.variants_max, ids.VARIANT_SLOTS))
        span = max(1, round(2 * shape.variants_mean - 1))
        counts = np.minimum(cap, 1 + (h >> np.uint64(8)) % np.uint64(span)).astype(np.int64)
        if shape.huge_product_every > 0:
            huge = (h >> np.uint64(40)) % np.uint64(shape.huge_product_every) == 1
            counts[huge] = cap
        self.cap = cap
        self.count_array = counts

    # -- products ------------------------------------------------------------------------------

    def counts(self) -> list[int]:
        out: list[int] = self.count_array.tolist()
        return out

    def title_prefixes(self) -> list[str]:
        return _list(_TITLE_PREFIX[(self.h & np.uint64(255)).astype(np.intp)])

    def handle_prefixes(self) -> list[str]:
        return _list(_HANDLE_PREFIX[((self.h >> np.uint64(4)) & np.uint64(15)).astype(np.intp)])

    def vendors(self) -> list[str]:
        return _list(_VENDORS[((self.h >> np.uint64(12)) & np.uint64(7)).astype(np.intp)])

    def product_types(self) -> list[str]:
        return _list(_PRODUCT_TYPES[((self.h >> np.uint64(16)) & np.uint64(7)).astype(np.intp)])

    def statuses(self) -> list[str]:
        roll = (self.h2 >> np.uint64(32)) % np.uint64(100)
        return _list(_STATUS[roll.astype(np.intp)])

    def _created(self) -> I64:
        created: I64 = (g.EPOCH_START + self.h2 % np.uint64(g.CREATED_SPAN_S)).astype(np.int64)
        return created

    def created_stamps(self) -> list[str]:
        return _list(_stamps(self._created()))

    def updated_stamps(self) -> list[str]:
        updated = self._created() + (self.h3 % np.uint64(g.UPDATED_SPAN_S)).astype(np.int64)
        return _list(_stamps(updated))

    def tags(self) -> list[str]:
        """generator._tags as JSON: the set of its draws as a bit mask, looked up."""
        h3 = self.h3
        count = (h3 >> np.uint64(8)) % np.uint64(6)
        mask = np.zeros(len(h3), dtype=np.uint64)
        words = np.uint64(len(g.TAG_WORDS))
        for n in range(5):
            word = (h3 >> np.uint64(12 + 4 * n)) % words
            mask |= np.where(count > n, np.left_shift(np.uint64(1), word), np.uint64(0))
        tags = tag_sets()[mask.astype(np.intp)]
        tags[h3 % np.uint64(50) == 0] = TAGS_ALL
        return _list(tags)

    def description_rolls(self) -> list[int]:
        rolls: list[int] = ((self.h3 >> np.uint64(40)) % np.uint64(40)).tolist()
        return rolls

    # -- variants ------------------------------------------------------------------------------

    def _positions(self) -> tuple[I64, I64]:
        """(product index, position) of every variant of the batch."""
        counts = self.count_array
        first = np.cumsum(counts) - counts
        product = np.repeat(np.asarray(self.index, dtype=np.int64), counts)
        position = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
        return product, position

    def variants(self, options: Column, titles: Column) -> list[list[object]]:
        """Per variant column: number, item id, sku drawn (bool), title JSON, options JSON, price,
        compare-at price JSON, barcode (0 for null), inventory quantity. `options` and `titles` are
        `option_tables` for the plan's option keys."""
        product, position = self._positions()
        slot = product * ids.VARIANT_SLOTS + position
        number = (ids.VARIANT_BASE + slot).astype(np.uint64)
        item = (ids.INVENTORY_ITEM_BASE + slot).astype(np.uint64)
        vh = mix(number)
        sku_drawn = (vh >> np.uint64(24)) % np.uint64(50) != 0
        cents = (np.uint64(100) + vh % np.uint64(99_900)).astype(np.intp)
        compare = quoted_prices()[cents * 5 // 4]
        compare[(vh >> np.uint64(20)) % np.uint64(3) != 0] = "null"
        barcode = np.uint64(400_000_000_000) + (vh >> np.uint64(32)) % np.uint64(99_999_999_999)
        barcode[(vh >> np.uint64(28)) & np.uint64(3) == 0] = 0
        counts = self.count_array
        kind = np.repeat((counts > 1).astype(np.intp) + (counts > 8) + (counts > 128), counts)
        option_slot = kind * self.cap + position
        return [
            number.tolist(),
            item.tolist(),
            sku_drawn.tolist(),
            _list(titles[option_slot]),
            _list(options[option_slot]),
            _list(prices()[cents]),
            _list(compare),
            barcode.tolist(),
            self._quantities(vh, item).tolist(),
        ]

    def inventory(self) -> list[list[Any]]:
        """Per variant column: item id, and the available quantity at each location."""
        product, position = self._positions()
        slot = product * ids.VARIANT_SLOTS + position
        item = (ids.INVENTORY_ITEM_BASE + slot).astype(np.uint64)
        vh = mix((ids.VARIANT_BASE + slot).astype(np.uint64))
        return [item.tolist(), self._levels(vh, item).tolist()]

    def _levels(self, vh: U64, item: U64) -> I64:
        """variant.available: one column per location, as generator._variant draws the levels."""
        locations = self.shape.locations
        levels = np.empty((len(vh), locations), dtype=np.int64)
        stock = vh ^ (vh >> np.uint64(17))
        for location in range(locations):
            if locations <= 8:
                drawn = (stock >> np.uint64(7 * location)) & np.uint64(127)
            else:
                drawn = mix(item + np.uint64(location)) & np.uint64(127)
            levels[:, location] = drawn.astype(np.int64) - 10
        return levels

    def variant_metafields(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """(per variant: number, metafield count; per metafield, variant after variant: id,
        position k, type, value JSON), as generator.variant_metafields draws them."""
        product, position = self._positions()
        number = (ids.VARIANT_BASE + product * ids.VARIANT_SLOTS + position).astype(np.uint64)
        span = round(2 * self.shape.metafields_per_variant) + 1
        counts = np.zeros(len(number), dtype=np.int64)
        if span > 0:
            drawn = mix(number ^ np.uint64(0x5A5A)) % np.uint64(span)
            counts = np.minimum(ids.VARIANT_METAFIELD_SLOTS, drawn.astype(np.int64))
        first = np.cumsum(counts) - counts
        k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
        owner = np.repeat((number - np.uint64(ids.VARIANT_BASE)).astype(np.int64), counts)
        field = (ids.VARIANT_METAFIELD_BASE + owner * ids.VARIANT_METAFIELD_SLOTS + k).astype(
            np.uint64
        )
        types, values = _metafield_values(mix(field))
        return (
            [number.tolist(), counts.tolist()],
            [field.tolist(), k.tolist(), types, values],
        )

    def _quantities(self, vh: U64, item: U64) -> I64:
        """sum(variant.available)."""
        quantity: I64 = self._levels(vh, item).sum(axis=1)
        return quantity


_TYPES = _objects(list(g.METAFIELD_TYPES))


@functools.cache
def _value_table() -> tuple[Column, list[int]]:
    """The JSON of every value `generator._metafield_value` can give, kind after kind, and where
    each kind's values start; a kind's values are indexed by what it takes of its draw."""
    sizes = {
        "single_line_text_field": 1000,
        "multi_line_text_field": 97,
        "number_integer": 100_000,
        "json": 10,
        "boolean": 2,
    }
    values: list[str] = []
    offsets: list[int] = []
    for kind in g.METAFIELD_TYPES:
        offsets.append(len(values))
        for n in range(sizes[kind]):
            values.append(msgspec.json.encode(g._metafield_value(kind, n)).decode())
    return _objects(values), offsets


def _metafield_values(h: U64) -> tuple[list[str], list[str]]:
    """(type, value JSON) of generated metafields with hashes `h` (the draws of
    generator.product_metafields and variant_metafields)."""
    kind = (h % np.uint64(len(g.METAFIELD_TYPES))).astype(np.intp)
    draw = h >> np.uint64(8)
    # Each kind's share of the draw (see generator._metafield_value): n stands for value n.
    shares = [draw % np.uint64(1000), draw % np.uint64(97), draw % np.uint64(100_000)]
    shares += [draw % np.uint64(10), draw & np.uint64(1)]
    table, offsets = _value_table()
    index = np.choose(kind, [share.astype(np.intp) + offsets[n] for n, share in enumerate(shares)])
    return _list(_TYPES[kind]), _list(table[index])


def option_tables(
    cap: int, encode_options: Callable[[list[tuple[str, str]]], str]
) -> tuple[Column, Column]:
    """(title JSON, selectedOptions JSON) by `kind * cap + position`, where kind is 0 for a product
    with one variant (Title), 1 for up to 8 (Size), 2 for up to 128 (Size, Color), 3 above.
    `encode_options` turns a variant's option pairs into its selectedOptions JSON."""
    names = (["Title"], ["Size"], ["Size", "Color"], ["Size", "Color", "Material"])
    limits = (1, len(g.SIZES), len(g.SIZES) * len(g.COLORS), cap)
    titles = np.full(4 * cap, None, dtype=object)
    options = np.full(4 * cap, None, dtype=object)
    for kind, (kind_names, limit) in enumerate(zip(names, limits, strict=True)):
        for position in range(min(limit, cap)):
            pairs, title = g._options_and_title(position, kind_names)
            titles[kind * cap + position] = msgspec.json.encode(title).decode()
            options[kind * cap + position] = encode_options(pairs)
    return titles, options


def warm() -> None:
    """Build the tables now: a writer forked afterwards shares them instead of building its own."""
    _time_of_day(), _days(), prices(), quoted_prices(), tag_sets(), _value_table()


def _list(column: Column) -> list[str]:
    out: list[str] = column.tolist()
    return out
