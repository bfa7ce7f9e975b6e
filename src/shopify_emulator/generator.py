"""Deterministic product generation: product i is a pure function of (seed, i, shape).

Nothing here looks at any other product, so generating product 999,999 costs the same as product 0 and a
million-product catalog never has to exist in memory. Randomness comes from splitmix64 over the index,
which is cheaper than seeding a `random.Random` per product.
"""

from __future__ import annotations

import time

from shopify_emulator import ids
from shopify_emulator.config import CatalogShape
from shopify_emulator.model import Image, Metafield, Product, Variant

MASK = (1 << 64) - 1

# Every generated timestamp lies before this horizon; overlay changes happen after it. Filters such as
# `updated_at:>2026-...` can then skip generated products without generating them.
EPOCH_START = 1_546_300_800  # 2019-01-01T00:00:00Z
CREATED_SPAN_S = 6 * 365 * 24 * 3600
UPDATED_SPAN_S = 360 * 24 * 3600
GENERATED_HORIZON = EPOCH_START + CREATED_SPAN_S + UPDATED_SPAN_S + 1

ADJECTIVES = (
    "Classic",
    "Ünïcödé",
    "Café",
    "Über",
    "Rustic",
    "日本製",
    "Ergonomic",
    "Handmade",
    "Vintage",
    "Señorita's",
    "Ultra-light",
    "Eco “green”",
    "Zürich",
    "🌟 Stellar",
    "Δέλτα",
    "Modern",
)
NOUNS = (
    "Shirt",
    "Mug",
    "Backpack",
    "Lamp",
    "Chair",
    "Sneaker",
    "Notebook",
    "Teapot",
    "Jacket",
    "Bottle",
    "Scarf",
    "Candle",
    "Blanket",
    "Watch",
    "Knife",
    "Bowl",
)
VENDORS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark & Sons",
    "Müller GmbH",
    "株式会社テスト",
    "O'Brien",
)
PRODUCT_TYPES = ("Apparel", "Home", "Kitchen", "Outdoor", "", "Accessories", "Stationery", "Toys")
TAG_WORDS = (
    "sale",
    "new",
    "summer",
    "winter",
    "bestseller",
    "eco",
    "limited",
    "gift",
    "ünïcode",
    "tag with spaces",
    "b2b",
    "clearance",
)
SIZES = ("XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL")
COLORS = (
    "Red",
    "Blue",
    "Green",
    "Black",
    "White",
    "Grün",
    "Noir",
    "赤",
    "Teal",
    "Olive",
    "Navy",
    "Coral",
    "Sand",
    "Plum",
    "Gold",
    "Silver",
)
NAMESPACES = ("custom", "specs", "seo", "reviews", "descriptors")
LONG_PARAGRAPH = (
    "<p>Crafted with care &amp; attention — <strong>durable</strong>, <em>light</em> and "
    '<a href="https://example.com/care">easy to clean</a>. Ideal für jeden Tag. 使いやすい。</p>\n'
)


def mix(value: int) -> int:
    """splitmix64 finaliser: a well-spread 64-bit value from any integer."""
    value = (value + 0x9E3779B97F4A7C15) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


def iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


_DAYS: dict[int, str] = {}


def day_prefix(day: int) -> str:
    """`YYYY-MM-DDT` of a day number since the epoch, cached."""
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    return prefix


def iso_int(epoch_s: int) -> str:
    """`iso` for whole seconds, with the date part cached: generation formats two stamps per product."""
    day, second = divmod(epoch_s, 86400)
    prefix = _DAYS.get(day) or day_prefix(day)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}Z"


def product_hash(seed: int, index: int) -> int:
    return mix((seed * 0x100000001B3) ^ mix(index))


def title_prefix(seed: int, index: int) -> str:
    h = product_hash(seed, index)
    return f"{ADJECTIVES[h & 15]} {NOUNS[(h >> 4) & 15]} "


def product_title(seed: int, index: int) -> str:
    return f"{title_prefix(seed, index)}{index}"


def product_vendor(seed: int, index: int) -> str:
    return VENDORS[(product_hash(seed, index) >> 12) & 7]


def product_type(seed: int, index: int) -> str:
    return PRODUCT_TYPES[(product_hash(seed, index) >> 16) & 7]


def inventory_total(shape: CatalogShape, seed: int, index: int) -> int:
    """Sum of every generated level of product `index` (the draws of `_variant`, nothing else)."""
    total = 0
    locations = shape.locations
    for position in range(_variant_count(shape, product_hash(seed, index))):
        number = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS + position
        if locations <= 8:
            h = mix(number)
            stock = h ^ (h >> 17)
            total += sum(((stock >> (7 * loc)) & 127) - 10 for loc in range(locations))
        else:
            item_id = ids.INVENTORY_ITEM_BASE + index * ids.VARIANT_SLOTS + position
            total += sum((mix(item_id + loc) & 127) - 10 for loc in range(locations))
    return total


def variant_sort_values(
    shape: CatalogShape, seed: int, index: int
) -> list[tuple[int, str, str, int]]:
    """(variant id, sku or "", title, inventory quantity) of each generated variant of product
    `index`, from the draws of `_variant` alone (no product is built): the variant sort orders'
    values (see variant_index)."""
    count = _variant_count(shape, product_hash(seed, index))
    return [variant_sort_value(shape, seed, index, position, count) for position in range(count)]


def variant_sort_value(
    shape: CatalogShape, seed: int, index: int, position: int, count: int | None = None
) -> tuple[int, str, str, int]:
    """One row of `variant_sort_values`, without the product's other variants (a huge product has
    2048 of them)."""
    if count is None:
        count = _variant_count(shape, product_hash(seed, index))
    number = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS + position
    sku = variant_sku(index, position)
    return (
        number,
        sku or "",
        variant_titles(count)[position],
        variant_quantity(shape, index, position),
    )


def variant_sku(index: int, position: int) -> str | None:
    """The sku `_variant` draws for the variant at `position` of product `index`."""
    h = mix(ids.VARIANT_BASE + index * ids.VARIANT_SLOTS + position)
    return None if (h >> 24) % 50 == 0 else f"SKU-{index}-{position}"


def variant_quantity(shape: CatalogShape, index: int, position: int) -> int:
    """`inventory_quantity` of the variant at `position` of product `index` (the draws of `_variant`)."""
    locations = shape.locations
    if locations <= 8:
        h = mix(ids.VARIANT_BASE + index * ids.VARIANT_SLOTS + position)
        stock = h ^ (h >> 17)
        return sum(((stock >> (7 * loc)) & 127) - 10 for loc in range(locations))
    item_id = ids.INVENTORY_ITEM_BASE + index * ids.VARIANT_SLOTS + position
    return sum((mix(item_id + loc) & 127) - 10 for loc in range(locations))


_TITLES: dict[int, list[str]] = {}


def variant_titles(count: int) -> list[str]:
    """The titles of a product's variants by position: they depend only on how many it has."""
    found = _TITLES.get(count)
    if found is None:
        names = _option_names(count)
        found = _TITLES[count] = [_options_and_title(p, names)[1] for p in range(count)]
    return found


def variant_count(shape: CatalogShape, seed: int, index: int) -> int:
    h = product_hash(seed, index)
    return _variant_count(shape, h)


def _variant_count(shape: CatalogShape, h: int) -> int:
    cap = max(1, min(shape.variants_max, ids.VARIANT_SLOTS))
    if shape.huge_product_every > 0 and (h >> 40) % shape.huge_product_every == 1:
        return cap
    span = max(1, round(2 * shape.variants_mean - 1))
    return min(cap, 1 + (h >> 8) % span)


def _count(mean: float, h: int, cap: int) -> int:
    span = round(2 * mean) + 1
    return min(cap, h % span) if span > 0 else 0


def product_metafield_count(shape: CatalogShape, seed: int, index: int) -> tuple[int, int]:
    """(ordinary metafields, app-owned metafields) of a generated product."""
    h = mix(product_hash(seed, index) ^ 0xA5A5)
    ordinary = _count(shape.metafields_per_product, h, ids.PRODUCT_METAFIELD_SLOTS - 1)
    owned = 1 if shape.app_owned_every > 0 and index % shape.app_owned_every == 0 else 0
    return ordinary, owned


def variant_metafield_count(shape: CatalogShape, variant_number: int) -> int:
    return _count(
        shape.metafields_per_variant, mix(variant_number ^ 0x5A5A), ids.VARIANT_METAFIELD_SLOTS
    )


def generate_product(shape: CatalogShape, seed: int, index: int) -> Product:
    h = product_hash(seed, index)
    h2 = mix(h)
    h3 = mix(h2)
    title = f"{ADJECTIVES[h & 15]} {NOUNS[(h >> 4) & 15]} {index}"
    created = EPOCH_START + (h2 % CREATED_SPAN_S)
    updated = created + (h3 % UPDATED_SPAN_S)
    created_at = iso_int(created)
    updated_at = iso_int(updated)
    status_roll = (h2 >> 32) % 100
    status = "ACTIVE" if status_roll < 93 else ("DRAFT" if status_roll < 98 else "ARCHIVED")
    count = _variant_count(shape, h)
    option_names = _option_names(count)
    variants = [
        _variant(shape, index, position, count, option_names, created_at, updated_at)
        for position in range(count)
    ]
    return Product(
        index=index,
        id=ids.PRODUCT_BASE + index,
        handle=f"{NOUNS[(h >> 4) & 15].lower()}-{index}",
        title=title,
        vendor=VENDORS[(h >> 12) & 7],
        product_type=PRODUCT_TYPES[(h >> 16) & 7],
        status=status,
        tags=_tags(h3),
        description_html=_description(h3, title),
        created_at=created_at,
        updated_at=updated_at,
        variants=variants,
        images=_images(shape, index, h2),
        option_names=option_names,
    )


def _option_names(count: int) -> list[str]:
    if count == 1:
        return ["Title"]
    if count <= len(SIZES):
        return ["Size"]
    if count <= len(SIZES) * len(COLORS):
        return ["Size", "Color"]
    return ["Size", "Color", "Material"]


_OPTIONS: dict[tuple[int, int], tuple[list[tuple[str, str]], str]] = {}


def _options_and_title(position: int, names: list[str]) -> tuple[list[tuple[str, str]], str]:
    """Options and title of the variant at `position`; they depend only on the position and the
    number of option names, so they are shared (readers never change them in place)."""
    cache_key = (position, len(names) if names[0] != "Title" else 0)
    found = _OPTIONS.get(cache_key)
    if found is None:
        options = _option_values(position, names)
        title = options[0][1] if len(options) == 1 else " / ".join([v for _, v in options])
        found = _OPTIONS[cache_key] = (options, title)
    return found


def _option_values(position: int, names: list[str]) -> list[tuple[str, str]]:
    count = len(names)
    if count == 1:
        if names[0] == "Title":
            return [("Title", "Default Title")]
        return [("Size", SIZES[position & 7])]
    if count == 2:
        return [("Size", SIZES[position & 7]), ("Color", COLORS[(position >> 3) & 15])]
    return [
        ("Size", SIZES[position & 7]),
        ("Color", COLORS[(position >> 3) & 15]),
        ("Material", f"Blend {position >> 7}"),
    ]


def _variant(
    shape: CatalogShape,
    index: int,
    position: int,
    count: int,
    option_names: list[str],
    created_at: str,
    updated_at: str,
) -> Variant:
    number = ids.VARIANT_BASE + index * ids.VARIANT_SLOTS + position
    h = mix(number)
    options, title = _options_and_title(position, option_names)
    item_id = ids.INVENTORY_ITEM_BASE + index * ids.VARIANT_SLOTS + position
    # One hash feeds several small draws; a second mix only for shops with many locations.
    stock = h ^ (h >> 17)
    locations = shape.locations
    if locations <= 8:
        available = [((stock >> (7 * loc)) & 127) - 10 for loc in range(locations)]
    else:
        available = [(mix(item_id + loc) & 127) - 10 for loc in range(locations)]
    cents = 100 + h % 99_900
    return Variant(
        id=number,
        product_index=index,
        position=position + 1,
        title=title,
        sku=None if (h >> 24) % 50 == 0 else f"SKU-{index}-{position}",
        price=f"{cents / 100:.2f}",
        compare_at_price=None if (h >> 20) % 3 else f"{(cents * 5 // 4) / 100:.2f}",
        barcode=None if (h >> 28) & 3 == 0 else str(400_000_000_000 + (h >> 32) % 99_999_999_999),
        created_at=created_at,
        updated_at=updated_at,
        inventory_item_id=item_id,
        options=options,
        available=available,
        level_updated_at=[updated_at] * locations,
    )


def _tags(h: int) -> list[str]:
    if h % 50 == 0:
        return sorted({f"bulk-tag-{n:02d}" for n in range(60)})
    count = (h >> 8) % 6
    return sorted({TAG_WORDS[(h >> (12 + 4 * n)) % len(TAG_WORDS)] for n in range(count)})


def _description(h: int, title: str) -> str:
    roll = (h >> 40) % 40
    if roll == 0:
        return ""
    if roll == 1:
        return LONG_PARAGRAPH * 60
    return f"<p>{title} — <b>great</b> value &amp; quality.</p><ul><li>Ünïcödé ✓</li><li>50% off</li></ul>"


def _images(shape: CatalogShape, index: int, h: int) -> list[Image]:
    count = (h >> 48) % (shape.images_max + 1)
    return [
        Image(
            id=ids.IMAGE_BASE + index * ids.IMAGE_SLOTS + n,
            url=f"https://cdn.shopify.com/s/files/1/0000/0001/products/p{index}_{n}.jpg",
            alt_text=None if n else f"Image {n} of product {index}",
            width=800 + 100 * n,
            height=600,
        )
        for n in range(count)
    ]


METAFIELD_TYPES = (
    "single_line_text_field",
    "multi_line_text_field",
    "number_integer",
    "json",
    "boolean",
)


def _metafield_value(kind: str, h: int) -> str:
    if kind == "single_line_text_field":
        return f"Ünïcödé value {h % 1000}"
    if kind == "multi_line_text_field":
        return f"line one\nline two <b>{h % 97}</b>"
    if kind == "number_integer":
        return str(h % 100_000 - 500)
    if kind == "json":
        return f'{{"score":{h % 10},"tags":["a","b"],"nested":{{"ok":true}}}}'
    return "true" if h & 1 else "false"


def product_metafields(
    shape: CatalogShape, seed: int, product: Product, owner_app_id: int
) -> list[Metafield]:
    ordinary, owned = product_metafield_count(shape, seed, product.index)
    owner = ids.gid("Product", product.id)
    fields: list[Metafield] = []
    for k in range(ordinary):
        number = ids.PRODUCT_METAFIELD_BASE + product.index * ids.PRODUCT_METAFIELD_SLOTS + k
        h = mix(number)
        kind = METAFIELD_TYPES[h % len(METAFIELD_TYPES)]
        fields.append(
            Metafield(
                id=number,
                namespace=NAMESPACES[k % len(NAMESPACES)],
                key=f"key_{k}",
                type=kind,
                value=_metafield_value(kind, h >> 8),
                created_at=product.created_at,
                updated_at=product.updated_at,
                owner_gid=owner,
            )
        )
    if owned:
        number = ids.PRODUCT_METAFIELD_BASE + product.index * ids.PRODUCT_METAFIELD_SLOTS + 63
        fields.append(
            Metafield(
                id=number,
                namespace=f"app--{owner_app_id}--sync",
                key="fingerprint",
                type="single_line_text_field",
                value=f"fp-{mix(number) % 1_000_000:06d}",
                created_at=product.created_at,
                updated_at=product.updated_at,
                owner_gid=owner,
            )
        )
    return fields


def variant_metafields(shape: CatalogShape, variant: Variant) -> list[Metafield]:
    count = variant_metafield_count(shape, variant.id)
    owner = ids.gid("ProductVariant", variant.id)
    fields: list[Metafield] = []
    for k in range(count):
        number = (
            ids.VARIANT_METAFIELD_BASE
            + (variant.id - ids.VARIANT_BASE) * ids.VARIANT_METAFIELD_SLOTS
            + k
        )
        h = mix(number)
        kind = METAFIELD_TYPES[h % len(METAFIELD_TYPES)]
        fields.append(
            Metafield(
                id=number,
                namespace="variant",
                key=f"vkey_{k}",
                type=kind,
                value=_metafield_value(kind, h >> 8),
                created_at=variant.created_at,
                updated_at=variant.updated_at,
                owner_gid=owner,
            )
        )
    return fields
