"""The catalog's shapes as plain slotted records.

Generated products and overlay products share these types, so every reader (GraphQL, bulk, webhooks,
control API) sees one model whatever the product's origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Metafield:
    id: int
    namespace: str
    key: str
    type: str
    value: str
    created_at: str
    updated_at: str
    owner_gid: str


@dataclass(slots=True)
class Image:
    id: int
    url: str
    alt_text: str | None
    width: int
    height: int


@dataclass(slots=True)
class Variant:
    id: int
    product_index: int
    position: int
    title: str
    sku: str | None
    price: str
    compare_at_price: str | None
    barcode: str | None
    created_at: str
    updated_at: str
    inventory_item_id: int
    options: list[tuple[str, str]]
    # Available quantity per location index; updated-at per location when the overlay changed it.
    available: list[int]
    level_updated_at: list[str]
    metafields: list[Metafield] | None = None

    @property
    def inventory_quantity(self) -> int:
        return sum(self.available)


@dataclass(slots=True)
class Product:
    index: int
    id: int
    handle: str
    title: str
    vendor: str
    product_type: str
    status: str
    tags: list[str]
    description_html: str
    created_at: str
    updated_at: str
    variants: list[Variant]
    images: list[Image]
    # Generated lazily: most readers (the core bulk query) never look at metafields.
    metafields: list[Metafield] | None = None
    option_names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Location:
    index: int
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class InventoryLevel:
    variant: Variant
    location_index: int


@dataclass(frozen=True, slots=True)
class InventoryItem:
    variant: Variant
