"""Connection pools and the tenant scope every request and every task goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Conn = AsyncConnection[TupleRow]


@dataclass(frozen=True, slots=True)
class PoolSizes:
    min_size: int
    max_size: int


def create_pool(url: str, sizes: PoolSizes, *, name: str = "neanelu") -> AsyncConnectionPool[Conn]:
    """A pool that is not yet open: callers `await pool.open(wait=True)` inside their lifespan."""
    return AsyncConnectionPool(
        url,
        min_size=sizes.min_size,
        max_size=sizes.max_size,
        name=name,
        open=False,
        # A connection handed back mid-transaction is rolled back by the pool; check keeps dead
        # connections (server restart) from reaching a request.
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": False, "application_name": name},
    )


async def bind_tenant(conn: Conn, shop_id: UUID) -> None:
    """Bind the rest of the open transaction to one shop: row-level security sees only its rows.

    `set_config(..., true)` is SET LOCAL: the setting ends with the transaction, so the next user of
    the pooled connection starts with no tenant (and sees nothing) until it opens its own scope.
    """
    await conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (str(shop_id),))


@asynccontextmanager
async def tenant_scope(pool: AsyncConnectionPool[Conn], shop_id: UUID) -> AsyncIterator[Conn]:
    """One transaction bound to one shop (see `bind_tenant`)."""
    async with pool.connection() as conn, conn.transaction():
        await bind_tenant(conn, shop_id)
        yield conn


@asynccontextmanager
async def connection_tenant_scope(conn: Conn, shop_id: UUID) -> AsyncIterator[Conn]:
    """The same scope on a connection the caller already holds (long ingest sessions)."""
    async with conn.transaction():
        await bind_tenant(conn, shop_id)
        yield conn


@asynccontextmanager
async def global_scope(pool: AsyncConnectionPool[Conn]) -> AsyncIterator[Conn]:
    """A transaction with no tenant: it reads `shops` (without the secrets) and the outbox, and
    writes only the outbox; tenant tables answer with no rows."""
    async with pool.connection() as conn, conn.transaction():
        yield conn
