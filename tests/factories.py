"""Small typed factories for test data."""

from __future__ import annotations

import uuid

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, bind_tenant, global_scope
from neanelu.shops import repository as shops


async def create_shop(pool: AsyncConnectionPool[Conn], domain: str | None = None) -> uuid.UUID:
    domain = domain or f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"
    # Through the application role's own install path: it inserts no shops row directly.
    async with global_scope(pool) as conn:
        shop_id, _ = await shops.ensure(conn, domain)
        await bind_tenant(conn, shop_id)
        await conn.execute(
            "UPDATE shops SET installed_at = now(), scopes = '{read_products}' WHERE id = %s",
            (shop_id,),
        )
    assert isinstance(shop_id, uuid.UUID)
    return shop_id
