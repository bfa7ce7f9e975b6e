"""Synthetic catalog for development: the same products on every run (fixed Faker seed), via COPY."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from faker import Faker

from neanelu.db.pool import Conn, bind_tenant
from neanelu.db.rows import fetch_one
from neanelu.shops import repository as shops

SEED_SHOP_DOMAIN = "neanelu-seed.myshopify.com"
_BASE_ID = 7_000_000_000_000
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeedResult:
    products: int
    variants: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return (self.products + self.variants) / self.seconds if self.seconds else 0.0


async def ensure_seed_shop(conn: Conn) -> UUID:
    """The seed shop's id (created on first use). Runs in a transaction without a tenant, which
    is the seed shop's from here on."""
    shop_id, created = await shops.ensure(conn, SEED_SHOP_DOMAIN)
    await bind_tenant(conn, shop_id)
    if created:
        await conn.execute(
            "UPDATE shops SET installed_at = now(), scopes = '{read_products}' WHERE id = %s",
            (shop_id,),
        )
    return shop_id


async def seed_catalog(conn: Conn, shop_id: UUID, products: int, seed: int = 42) -> SeedResult:
    """Replace the shop's catalog with `products` synthetic products. The caller owns the
    transaction and has set the tenant (row-level security checks every COPYed row)."""
    started = time.perf_counter()
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    await conn.execute("DELETE FROM variants")
    await conn.execute("DELETE FROM products")
    # PostgreSQL refuses COPY into a table under row-level security, so rows land in session-private
    # staging tables first and enter the tenant tables through INSERT ... SELECT (checked by RLS).
    await conn.execute(
        "CREATE TEMP TABLE seed_products (LIKE products INCLUDING DEFAULTS) ON COMMIT DROP;"
        "CREATE TEMP TABLE seed_variants (LIKE variants INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    variant_count = 0
    variant_rows: list[tuple[object, ...]] = []
    async with conn.cursor() as cur:
        async with cur.copy(
            "COPY seed_products (shop_id, shopify_id, handle, title, vendor, product_type, status, tags,"
            " description, metafields, shopify_created_at, shopify_updated_at) FROM STDIN"
        ) as copy:
            for i in range(products):
                pid = _BASE_ID + i
                title = fake.catch_phrase()
                created = _EPOCH + timedelta(minutes=rng.randrange(0, 500_000))
                updated = created + timedelta(minutes=rng.randrange(0, 50_000))
                metafields = {
                    "custom.material": {"type": "single_line_text_field", "value": fake.word()},
                    "custom.care": {"type": "multi_line_text_field", "value": fake.sentence()},
                }
                await copy.write_row(
                    (
                        shop_id,
                        pid,
                        f"{fake.slug()}-{i}",
                        title,
                        fake.company(),
                        rng.choice(("Shirts", "Shoes", "Bags", "Lamps", "Tea")),
                        rng.choice(("ACTIVE", "ACTIVE", "ACTIVE", "DRAFT", "ARCHIVED")),
                        fake.words(rng.randint(0, 6)),
                        f"<p>{fake.paragraph()}</p>",
                        json.dumps(metafields),
                        created,
                        updated,
                    )
                )
                for v in range(rng.randint(1, 5)):
                    variant_rows.append(
                        (
                            shop_id,
                            pid * 10 + v,
                            pid,
                            f"SKU-{i}-{v}",
                            f"Option {v + 1}",
                            Decimal(rng.randrange(100, 100_000)) / 100,
                            v + 1,
                            rng.randrange(0, 500),
                            pid * 10 + v,
                            created,
                            updated,
                        )
                    )
        async with cur.copy(
            "COPY seed_variants (shop_id, shopify_id, product_shopify_id, sku, title, price, position,"
            " inventory_quantity, inventory_item_id, shopify_created_at, shopify_updated_at)"
            " FROM STDIN"
        ) as copy:
            for row in variant_rows:
                await copy.write_row(row)
            variant_count = len(variant_rows)
    await conn.execute("INSERT INTO products SELECT * FROM seed_products")
    await conn.execute("INSERT INTO variants SELECT * FROM seed_variants")
    return SeedResult(products, variant_count, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class _Counts:
    products: int
    variants: int
    inventory_levels: int


async def catalog_counts(conn: Conn) -> dict[str, int]:
    """Live rows of the current tenant's catalog."""
    row = await fetch_one(
        conn,
        _Counts,
        "SELECT (SELECT count(*) FROM products WHERE deleted_at IS NULL) AS products,"
        " (SELECT count(*) FROM variants WHERE deleted_at IS NULL) AS variants,"
        " (SELECT count(*) FROM inventory_levels) AS inventory_levels",
    )
    assert row is not None
    return {
        "products": int(row.products),
        "variants": int(row.variants),
        "inventory_levels": int(row.inventory_levels),
    }
