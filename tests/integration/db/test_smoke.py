from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from tests.factories import create_shop


async def test_app_role_sees_own_shop_rows(app_pool: AsyncConnectionPool[Conn]) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        await conn.execute("INSERT INTO products (shop_id, shopify_id, title) VALUES (%s, 1, 'x')", (shop,))
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT count(*) FROM products")
        assert await cur.fetchone() == (1,)
