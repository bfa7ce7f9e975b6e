"""The application role refreshes planner statistics after a bulk load (MAINTAIN, PG 17+)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn
from neanelu.ingest.merge import refresh_statistics


async def test_app_role_may_analyze_the_catalog_tables(app_pool: AsyncConnectionPool[Conn]) -> None:
    async with app_pool.connection() as conn:
        await conn.set_autocommit(True)
        assert await refresh_statistics(conn, ("products", "variants", "inventory_levels"))
        # reltuples is -1 until a table was first analyzed.
        cur = await conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN"
            " ('products', 'variants', 'inventory_levels') AND reltuples >= 0"
        )
        assert await cur.fetchone() == (3,)
        # Still no way around row-level security: MAINTAIN is not ownership.
        cur = await conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'products'"
            " AND pg_get_userbyid(relowner) = current_user"
        )
        assert await cur.fetchone() == (0,)
        await conn.set_autocommit(False)
