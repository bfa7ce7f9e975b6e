"""Small typed factories for test data."""

from __future__ import annotations

import uuid

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope


async def create_shop(pool: AsyncConnectionPool[Conn], domain: str | None = None) -> uuid.UUID:
    domain = domain or f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"
    async with global_scope(pool) as conn:
        cur = await conn.execute(
            "INSERT INTO shops (domain, status, installed_at, scopes) "
            "VALUES (%s, 'installed', now(), '{read_products}') RETURNING id",
            (domain,),
        )
        row = await cur.fetchone()
    assert row is not None
    shop_id = row[0]
    assert isinstance(shop_id, uuid.UUID)
    return shop_id
