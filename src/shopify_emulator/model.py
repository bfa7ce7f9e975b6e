"""The catalog's shapes as plain slotted records.

Generated products and overlay products share these types, so every reader (GraphQL, bulk, webhooks,
control API) sees one model whatever the product's origin. The bulk operation is here too: the shop's
state holds them, resolvers answer for them and webhooks report them, none of which may depend on the
runner that writes their files (that would be an import circle; see the emulator's layers contract).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from shopify_emulator import ids


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


@dataclass(slots=True)
class BulkOperation:
    number: int
    client_id: str
    shop: str
    query: str
    path: str  # the result file, or its first part
    group_objects: bool
    created_at: str
    status: str = "CREATED"
    type: str = "QUERY"
    error_code: str | None = None
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    null_url: bool = False
    expired: bool = False
    # The storage object's name, as opaque as Shopify's (`bulk-operation-outputs/<key>-final`).
    key: str = field(default_factory=lambda: secrets.token_hex(14))
    # Clock times (seconds) of the mutation's answer and of the ending: how long the run took.
    created_s: float = 0.0
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    # The parts that follow `path` in the result, for an export written by several processes.
    parts: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        """The files whose concatenation is the result, in order."""
        return (self.path, *self.parts)

    @property
    def gid(self) -> str:
        return ids.gid("BulkOperation", self.number)

    def status_now(self, url_ttl_s: float, now: float) -> str:
        """The status a poll sees at `now`: a completed run whose file has outlived its links is
        EXPIRED."""
        if self.status == "COMPLETED" and (
            self.expired or (self.finished_at is not None and now - self.finished_at > url_ttl_s)
        ):
            return "EXPIRED"
        return self.status
