"""Typed reads: every query answers rows of a named dataclass, or one checked scalar.

Rows come from psycopg's `class_row`, so each column lands in the field of its name (a column
renamed or dropped fails loudly, as a missing keyword argument) instead of being read by its
position. Repositories declare one frozen dataclass per row shape, next to their queries.
"""

from __future__ import annotations

from typing import Any, TypeVar

from psycopg import AsyncCursor
from psycopg.abc import Params
from psycopg.abc import QueryNoTemplate as Query
from psycopg.rows import class_row, scalar_row

from neanelu.db.pool import Conn

R = TypeVar("R")
S = TypeVar("S")


class UnexpectedScalar(TypeError):
    """A scalar query answered a value of another type than its caller declared."""


async def fetch_one(
    conn: Conn, row: type[R], query: Query, params: Params | None = None
) -> R | None:
    """The first row as `row` (a dataclass whose fields are the query's column names)."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def fetch_all(
    conn: Conn,
    row: type[R],
    query: Query,
    params: Params | None = None,
    *,
    prepare: bool | None = None,
) -> list[R]:
    """Every row as `row` (a dataclass whose fields are the query's column names). `prepare`
    as psycopg's: None prepares a query once it has run five times on the connection, False
    never (each run is planned for its own values)."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(query, params, prepare=prepare)
        return await cur.fetchall()


async def fetch_scalar(
    conn: Conn,
    kind: type[S],
    query: Query,
    params: Params | None = None,
    *,
    prepare: bool | None = None,
) -> S | None:
    """The one column of the first row, checked to be a `kind`; None when no row came back, or
    when the value is SQL NULL (callers that must tell them apart read a row instead). `prepare`
    as `fetch_all`'s."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(query, params, prepare=prepare)
        _one_column(cur, query)
        value = await cur.fetchone()
    return None if value is None else _checked(value, kind, query)


async def fetch_scalars(
    conn: Conn, kind: type[S], query: Query, params: Params | None = None
) -> list[S]:
    """The one column of every row, each checked to be a (non-NULL) `kind`."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(query, params)
        _one_column(cur, query)
        return [_checked(value, kind, query) for value in await cur.fetchall()]


async def exists(conn: Conn, query: Query, params: Params | None = None) -> bool:
    """Whether the query answered a row at all (`SELECT 1 ... FOR KEY SHARE` and the like)."""
    async with conn.cursor() as cur:
        await cur.execute(query, params)
        return await cur.fetchone() is not None


def _one_column(cur: AsyncCursor[Any], query: Query) -> None:
    # scalar_row takes the first column and drops the rest: a second column is a mistake.
    if cur.description is not None and len(cur.description) != 1:
        names = ", ".join(c.name for c in cur.description)
        raise UnexpectedScalar(f"{_named(query)} answered {len(cur.description)} columns ({names})")


def _checked(value: Any, kind: type[S], query: Query) -> S:
    if not isinstance(value, kind):
        raise UnexpectedScalar(
            f"{_named(query)} answered {type(value).__name__} where {kind.__name__} was expected"
        )
    return value


def _named(query: Query) -> str:
    """The query's opening words, enough to find it (its parameters are never part of it)."""
    text = query if isinstance(query, str) else type(query).__name__
    return f"the scalar query {' '.join(text.split())[:80]!r}"
