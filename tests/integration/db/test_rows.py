"""Typed reads (neanelu.db.rows) on a real server: columns land in fields by name, scalars are
checked against the type their caller declared, and a query of the wrong shape fails loudly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn
from neanelu.db.rows import (
    UnexpectedScalar,
    exists,
    fetch_all,
    fetch_one,
    fetch_scalar,
    fetch_scalars,
)
from neanelu.db.sql_files import load_sql, load_statements


@dataclass(frozen=True, slots=True)
class _Pair:
    label: str
    n: int


async def test_rows_are_filled_by_column_name_not_position(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    async with app_pool.connection() as conn:
        # The columns come in the other order than the fields: names decide.
        rows = await fetch_all(
            conn, _Pair, "SELECT n, 'row ' || n AS label FROM generate_series(1, %s) n", (3,)
        )
        assert rows == [_Pair("row 1", 1), _Pair("row 2", 2), _Pair("row 3", 3)]
        assert await fetch_one(conn, _Pair, "SELECT 7 AS n, 'x' AS label") == _Pair("x", 7)
        assert await fetch_one(conn, _Pair, "SELECT 7 AS n, 'x' AS label WHERE false") is None


async def test_a_column_without_its_field_fails(app_pool: AsyncConnectionPool[Conn]) -> None:
    async with app_pool.connection() as conn:
        with pytest.raises(TypeError, match="surplus"):
            await fetch_one(conn, _Pair, "SELECT 1 AS n, 'x' AS label, 2 AS surplus")


async def test_scalars_are_checked_against_the_declared_type(
    app_pool: AsyncConnectionPool[Conn],
) -> None:
    async with app_pool.connection() as conn:
        assert await fetch_scalar(conn, int, "SELECT count(*) FROM generate_series(1, 4)") == 4
        assert await fetch_scalar(conn, datetime, "SELECT now()") is not None
        # No row and SQL NULL both answer None.
        assert await fetch_scalar(conn, int, "SELECT 1 WHERE false") is None
        assert await fetch_scalar(conn, int, "SELECT NULL::int") is None
        assert await fetch_scalars(conn, int, "SELECT generate_series(3, 5)") == [3, 4, 5]
        # sum(bigint) is numeric: a Decimal, which no caller declaring int should get unnoticed.
        with pytest.raises(UnexpectedScalar, match="Decimal where int"):
            await fetch_scalar(conn, int, "SELECT sum(n) FROM generate_series(1::bigint, 3) n")
        with pytest.raises(UnexpectedScalar, match=r"2 columns \(a, b\)"):
            await fetch_scalar(conn, int, "SELECT 1 AS a, 2 AS b")
        with pytest.raises(UnexpectedScalar, match="NoneType where int"):
            await fetch_scalars(conn, int, "SELECT x FROM (VALUES (1), (NULL)) v(x)")
        assert await exists(conn, "SELECT 1 WHERE %s", (True,))
        assert not await exists(conn, "SELECT 1 WHERE %s", (False,))


def test_one_loader_reads_every_packages_sql_folder() -> None:
    assert "CREATE TABLE shops" in load_sql("schema.sql")
    assert "INSERT INTO webhook_inbox" in load_sql("record_batch.sql", "neanelu.webhooks")
    assert "INSERT INTO products" in load_sql("upsert_products.sql", "neanelu.catalog")
    assert "{app_role}" in load_sql("0001_initial.up.sql", "neanelu.db.migrations")
    assert len(load_statements("ingest/mark_deleted.sql")) == 2
