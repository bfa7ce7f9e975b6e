"""Connection pools and the tenant scope every request and every task goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
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


@asynccontextmanager
async def single_trip_transaction(conn: Conn) -> AsyncIterator[Conn]:
    """One transaction on an idle connection whose statements all travel in one round trip:
    BEGIN, what the block queues, COMMIT, then a single wait for every answer (psycopg's own
    `transaction()` in a pipeline waits after BEGIN, after COMMIT and again at the pipeline's
    end). The block must not read a result: its cursors are read after it, once committed.

    The connection runs in autocommit for the block so that psycopg sends no BEGIN of its own;
    the explicit BEGIN and COMMIT make the statements one transaction all the same, and an
    error rolls all of it back.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("single_trip_transaction needs an idle connection")
    await conn.set_autocommit(True)
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN")
            yield conn
            await conn.execute("COMMIT")
    except BaseException:
        # The failed statement (or the body's exception) left the transaction open or aborted.
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.execute("ROLLBACK")
        raise
    finally:
        if not conn.closed:
            await conn.set_autocommit(False)
