"""One shop's catalog: the seeded generator plus a small overlay of changes.

The overlay maps a product index to its changed state (or None when deleted); created products take
indexes after the generated range. Readers call :meth:`Catalog.product` and never learn which side a
product came from. The bulk runner reads from a worker thread while the event loop writes: single dict
operations are atomic under the GIL and readers snapshot the index range first, which is all it needs.
"""

from __future__ import annotations

import calendar
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass

from shopify_emulator import generator, ids
from shopify_emulator.catalog_index import GeneratedIndex
from shopify_emulator.clock import Clock, SystemClock
from shopify_emulator.config import CatalogShape
from shopify_emulator.model import Location, Metafield, Product, Variant
from shopify_emulator.variant_index import VariantIndex

LOCATION_NAMES = ("Main Warehouse", "Lager Zürich", "東京倉庫", "Pop-up Store", "Returns Depot")


@dataclass(slots=True)
class CatalogCounts:
    products: int = 0
    variants: int = 0
    product_metafields: int = 0
    variant_metafields: int = 0
    app_owned_metafields: int = 0
    inventory_items: int = 0
    inventory_levels: int = 0

    def add(self, other: CatalogCounts, sign: int = 1) -> None:
        self.products += sign * other.products
        self.variants += sign * other.variants
        self.product_metafields += sign * other.product_metafields
        self.variant_metafields += sign * other.variant_metafields
        self.app_owned_metafields += sign * other.app_owned_metafields
        self.inventory_items += sign * other.inventory_items
        self.inventory_levels += sign * other.inventory_levels

    def as_dict(self) -> dict[str, int]:
        return {
            "products": self.products,
            "variants": self.variants,
            "metafields": self.product_metafields + self.variant_metafields,
            "product_metafields": self.product_metafields,
            "variant_metafields": self.variant_metafields,
            "app_owned_metafields": self.app_owned_metafields,
            "inventory_items": self.inventory_items,
            "inventory_levels": self.inventory_levels,
        }


def is_app_owned(namespace: str) -> bool:
    return namespace.startswith("app--")


def visible_to(namespace: str, api_client_id: int) -> bool:
    """App-owned namespaces (`app--{id}` or `app--{id}--x`) are readable only by app `id`."""
    if not namespace.startswith("app--"):
        return True
    owner = namespace[5:].split("--", 1)[0]
    return owner == str(api_client_id)


def now_iso(clock: Clock) -> str:
    return generator.iso(clock.time())


class Catalog:
    def __init__(
        self,
        shape: CatalogShape,
        seed: int,
        size: int,
        owner_app_id: int,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.shape = shape
        self.seed = seed
        self.generated = size
        self.owner_app_id = owner_app_id
        self.overlay: dict[int, Product | None] = {}
        self.created = 0
        self._base_counts: CatalogCounts | None = None
        # Timestamps and sort orders of the generated products, built on first use.
        self.index = GeneratedIndex(self)
        self.variant_index = VariantIndex(self)
        self.locations = [
            Location(index=n, id=ids.location_id(n), name=LOCATION_NAMES[n % len(LOCATION_NAMES)])
            for n in range(shape.locations)
        ]

    @property
    def upper(self) -> int:
        """One past the highest product index that may exist."""
        return self.generated + self.created

    def product(self, index: int) -> Product | None:
        if index < 0 or index >= self.upper:
            return None
        if index in self.overlay:
            return self.overlay[index]
        return generator.generate_product(self.shape, self.seed, index)

    def product_by_id(self, product_id: int) -> Product | None:
        return self.product(product_id - ids.PRODUCT_BASE)

    def variant_by_number(self, number: int) -> Variant | None:
        split = ids.split_variant_number(number)
        if split is None:
            return None
        product = self.product(split[0])
        if product is None:
            return None
        for variant in product.variants:
            if variant.id == number or variant.inventory_item_id == number:
                return variant
        return None

    def product_count(self) -> int:
        """How many products exist, from the overlay alone (no product is generated)."""
        overlay = list(self.overlay.items())
        deleted = sum(1 for index, product in overlay if product is None and index < self.generated)
        created_alive = sum(
            1 for index, product in overlay if product is not None and index >= self.generated
        )
        return self.generated - deleted + created_alive

    def iter_products(self, start: int = 0) -> Iterator[Product]:
        upper = self.upper
        overlay = self.overlay
        shape, seed = self.shape, self.seed
        generated = self.generated
        for index in range(start, upper):
            if index in overlay:
                changed = overlay[index]
                if changed is not None:
                    yield changed
            elif index < generated:
                yield generator.generate_product(shape, seed, index)

    def metafields(self, product: Product) -> list[Metafield]:
        if product.metafields is None:
            product.metafields = generator.product_metafields(
                self.shape, self.seed, product, self.owner_app_id
            )
        return product.metafields

    def variant_metafields(self, variant: Variant) -> list[Metafield]:
        if variant.metafields is None:
            variant.metafields = generator.variant_metafields(self.shape, variant)
        return variant.metafields

    # -- truth for tests -------------------------------------------------------------------------

    def counts(self) -> CatalogCounts:
        if self._base_counts is None:
            base = CatalogCounts()
            for index in range(self.generated):
                base.add(self._generated_counts(index))
            self._base_counts = base
        total = CatalogCounts()
        total.add(self._base_counts)
        for index, product in list(self.overlay.items()):
            if index < self.generated:
                total.add(self._generated_counts(index), -1)
            if product is not None:
                total.add(self._product_counts(product))
        return total

    def _generated_counts(self, index: int) -> CatalogCounts:
        shape = self.shape
        n_variants = generator.variant_count(shape, self.seed, index)
        ordinary, owned = generator.product_metafield_count(shape, self.seed, index)
        variant_mf = sum(
            generator.variant_metafield_count(shape, ids.variant_id(index, p))
            for p in range(n_variants)
        )
        return CatalogCounts(
            products=1,
            variants=n_variants,
            product_metafields=ordinary + owned,
            variant_metafields=variant_mf,
            app_owned_metafields=owned,
            inventory_items=n_variants,
            inventory_levels=n_variants * shape.locations,
        )

    def _product_counts(self, product: Product) -> CatalogCounts:
        metafields = self.metafields(product)
        variant_mf = sum(len(self.variant_metafields(v)) for v in product.variants)
        return CatalogCounts(
            products=1,
            variants=len(product.variants),
            product_metafields=len(metafields),
            variant_metafields=variant_mf,
            app_owned_metafields=sum(1 for m in metafields if is_app_owned(m.namespace)),
            inventory_items=len(product.variants),
            inventory_levels=len(product.variants) * self.shape.locations,
        )

    # -- changes ------------------------------------------------------------------------------------

    def _editable(self, index: int) -> Product | None:
        product = self.product(index)
        if product is None:
            return None
        # Copy so a generated product object handed to a reader earlier never changes under it.
        changed = copy.deepcopy(product)
        self.metafields(changed)
        for variant in changed.variants:
            self.variant_metafields(variant)
        return changed

    def create_product(
        self, title: str | None = None, fields: dict[str, object] | None = None
    ) -> Product:
        index = self.upper
        # A new product is a generated template at a fresh index, stamped with the current time.
        template = generator.generate_product(self.shape, self.seed, index)
        stamp = now_iso(self.clock)
        template.created_at = stamp
        template.updated_at = stamp
        for variant in template.variants:
            variant.created_at = stamp
            variant.updated_at = stamp
            variant.level_updated_at = [stamp] * len(variant.available)
        if title is not None:
            template.title = title
        self.metafields(template)
        for variant in template.variants:
            self.variant_metafields(variant)
        self.overlay[index] = template
        self.created += 1
        if fields:
            updated = self.update_product(index, fields)
            assert updated is not None
            return updated
        return template

    def update_product(self, index: int, fields: dict[str, object]) -> Product | None:
        product = self._editable(index)
        if product is None:
            return None
        for key, value in fields.items():
            _apply_field(product, key, value)
        stamp = _later_than(product.updated_at, self.clock)
        product.updated_at = stamp
        for variant in product.variants:
            variant.updated_at = stamp
        for metafield in product.metafields or []:
            if "metafields" in fields:
                metafield.updated_at = stamp
        self.overlay[index] = product
        return product

    def delete_product(self, index: int) -> Product | None:
        product = self.product(index)
        if product is None:
            return None
        self.overlay[index] = None
        return product

    def set_inventory(self, item_id: int, location_index: int, available: int) -> Variant | None:
        split = ids.split_variant_number(item_id)
        if split is None or not 0 <= location_index < len(self.locations):
            return None
        product = self._editable(split[0])
        if product is None:
            return None
        for variant in product.variants:
            if variant.inventory_item_id == item_id:
                variant.available[location_index] = available
                variant.level_updated_at[location_index] = _later_than(
                    variant.level_updated_at[location_index], self.clock
                )
                self.overlay[split[0]] = product
                return variant
        return None


def _later_than(previous: str, clock: Clock) -> str:
    stamp = now_iso(clock)
    if stamp <= previous:
        # Two changes inside one second must still order newer-wins; step past the previous stamp.
        parsed = calendar.timegm(time.strptime(previous, "%Y-%m-%dT%H:%M:%SZ"))
        stamp = generator.iso(parsed + 1)
    return stamp


_SIMPLE_FIELDS = {
    "title": "title",
    "handle": "handle",
    "vendor": "vendor",
    "product_type": "product_type",
    "status": "status",
    "description_html": "description_html",
}


def _apply_field(product: Product, key: str, value: object) -> None:
    if key in _SIMPLE_FIELDS and isinstance(value, str):
        setattr(product, _SIMPLE_FIELDS[key], value.upper() if key == "status" else value)
    elif key == "tags" and isinstance(value, list):
        product.tags = sorted({str(tag) for tag in value})
    elif key == "price" and isinstance(value, str):
        for variant in product.variants:
            variant.price = value
    elif key == "variants_count" and isinstance(value, int) and 1 <= value <= len(product.variants):
        product.variants = product.variants[:value]
    elif key == "metafields" and isinstance(value, list):
        _apply_metafields(product, value)
    else:
        raise ValueError(f"unsupported product field {key!r}")


def _apply_metafields(product: Product, values: list[object]) -> None:
    existing = {(m.namespace, m.key): m for m in product.metafields or []}
    for item in values:
        if not isinstance(item, dict):
            raise ValueError("metafields must be objects with namespace, key, value")
        namespace, key = str(item["namespace"]), str(item["key"])
        found = existing.get((namespace, key))
        if found is not None:
            found.value = str(item["value"])
            continue
        slot = len(product.metafields or [])
        if slot >= ids.PRODUCT_METAFIELD_SLOTS - 1:
            raise ValueError("too many metafields on one product")
        metafield = Metafield(
            id=ids.PRODUCT_METAFIELD_BASE + product.index * ids.PRODUCT_METAFIELD_SLOTS + 62 - slot,
            namespace=namespace,
            key=key,
            type=str(item.get("type", "single_line_text_field")),
            value=str(item["value"]),
            created_at=product.updated_at,
            updated_at=product.updated_at,
            owner_gid=ids.gid("Product", product.id),
        )
        (product.metafields or []).append(metafield)
