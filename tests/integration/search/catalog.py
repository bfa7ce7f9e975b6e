"""A small catalog two shops can share: the search tests' data."""

from __future__ import annotations

import uuid

from neanelu.db.pool import Conn

CATALOG = (
    # (title, vendor, type, tags, description, price)
    (
        "Waterproof leather hiking boots",
        "Munte",
        "Boots",
        ["outdoor", "leather"],
        "<p>Sturdy boots for <b>mountain trails</b> in the rain.</p>",
        "420.00",
    ),
    (
        "Stainless steel chef knife",
        "Bucătar",
        "Knife",
        ["kitchen"],
        "<p>A 20 cm blade for slicing vegetables and meat.</p>",
        "199.90",
    ),
    (
        "Red cotton summer dress",
        "Vara",
        "Dress",
        ["women", "summer"],
        "<p>Light dress for hot days at the beach.</p>",
        "149.00",
    ),
    (
        "Ceramic coffee mug",
        "Cana",
        "Mug",
        ["kitchen"],
        "<p>Holds 350 ml of hot coffee or tea.</p>",
        "39.00",
    ),
    (
        "LED desk lamp",
        "Lumina",
        "Lamp",
        ["office"],
        "<script>alert(1)</script><p>Adjustable arm, warm light for reading.</p>",
        "89.00",
    ),
    (
        "Wool winter coat",
        "Iarna",
        "Coat",
        ["men", "winter"],
        "<p>Keeps you warm in freezing weather.</p>",
        "650.00",
    ),
)


async def insert_catalog(conn: Conn, shop: uuid.UUID, base: int = 1000) -> list[int]:
    ids = []
    for i, (title, vendor, ptype, tags, desc, price) in enumerate(CATALOG):
        pid = base + i
        await conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, vendor, product_type, status, tags, "
            "description) VALUES (%s, %s, %s, %s, %s, 'ACTIVE', %s, %s)",
            (shop, pid, title, vendor, ptype, tags, desc),
        )
        await conn.execute(
            "INSERT INTO variants (shop_id, shopify_id, product_shopify_id, price) "
            "VALUES (%s, %s, %s, %s)",
            (shop, pid * 10, pid, price),
        )
        ids.append(pid)
    return ids
