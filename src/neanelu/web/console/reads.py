"""What the console reads from PostgreSQL: only through the console_* functions (migration 0009),
inside a transaction that carries the operator's session, so the database itself checks that an
operator is asking and scopes each read to one shop under row-level security."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_scalar, fetch_scalars

PAGE = 50
# Products one catalog page may look at past its start (a filter that matches little).
SCAN_WINDOW = 10_000


@asynccontextmanager
async def console_scope(
    pool: AsyncConnectionPool[Conn], session_hash: bytes
) -> AsyncIterator[Conn]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('app.console_session', %s, true)", (session_hash.hex(),)
        )
        yield conn


# The console_* functions answer one jsonb document per row (a dict here), shaped in SQL.
async def _rows(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return await fetch_scalars(conn, dict, query, params)


async def _one(conn: Conn, query: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    return await fetch_scalar(conn, dict, query, params)


@dataclass(frozen=True, slots=True)
class _ShopDomain:
    id: UUID
    domain: str


async def shops(conn: Conn) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT * FROM console_shops()")


async def shop_domains(conn: Conn) -> dict[str, str]:
    found = await fetch_all(conn, _ShopDomain, "SELECT id, domain FROM console_shop_domains()")
    return {str(r.id): r.domain for r in found}


async def shop(conn: Conn, shop_id: UUID) -> dict[str, Any] | None:
    found = await _rows(conn, "SELECT * FROM console_shops(%s)", (shop_id,))
    return found[0] if found else None


async def runs(conn: Conn, shop_id: UUID, limit: int = 20) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT * FROM console_runs(%s, %s)", (shop_id, limit))


async def run(conn: Conn, shop_id: UUID, run_id: UUID) -> dict[str, Any] | None:
    return await _one(conn, "SELECT console_run(%s, %s)", (shop_id, run_id))


async def quarantine(
    conn: Conn, shop_id: UUID, run_id: UUID, limit: int = 100
) -> list[dict[str, Any]]:
    return await _rows(
        conn, "SELECT * FROM console_quarantine(%s, %s, %s)", (shop_id, run_id, limit)
    )


async def webhooks(conn: Conn, shop_id: UUID, limit: int = 25) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT * FROM console_webhooks(%s, %s)", (shop_id, limit))


async def parity(conn: Conn, shop_id: UUID, limit: int = 10) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT * FROM console_parity(%s, %s)", (shop_id, limit))


async def owner_apps(conn: Conn, shop_id: UUID) -> list[dict[str, Any]]:
    return await _rows(conn, "SELECT * FROM console_owner_apps(%s)", (shop_id,))


@dataclass(frozen=True, slots=True)
class ProductFilter:
    status: str | None = None
    vendor: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ProductPage:
    rows: list[dict[str, Any]]
    # Where the next page starts: after the last row shown, or after the window a sparse filter
    # searched without filling the page (None: the end of the catalog).
    next_after: int | None
    searched_on: bool = False


async def products(
    conn: Conn,
    shop_id: UUID,
    after: int | None,
    filters: ProductFilter,
    limit: int = PAGE,
    window: int = SCAN_WINDOW,
) -> ProductPage:
    # One more than a page tells whether there is a next one, without counting.
    found = await _rows(
        conn,
        "SELECT * FROM console_products(%s, %s, %s, %s, %s, %s, %s)",
        (shop_id, after, limit + 1, filters.status, filters.vendor, filters.title, window),
    )
    marker = found[-1].get("scanned_to") if found else None
    rows = [r for r in found if "scanned_to" not in r]
    if len(rows) > limit:
        return ProductPage(rows[:limit], int(rows[limit - 1]["shopify_id"]))
    if marker is not None:
        return ProductPage(rows, int(marker), searched_on=True)
    return ProductPage(rows, None)


async def product(conn: Conn, shop_id: UUID, shopify_id: int) -> dict[str, Any] | None:
    return await _one(conn, "SELECT console_product(%s, %s)", (shop_id, shopify_id))
