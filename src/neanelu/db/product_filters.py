"""The product filters the read API and search share (status, vendor, type, tag, deleted), as
SQL clauses with their parameters, so both mean the same by each filter."""

from __future__ import annotations

from typing import Any

from psycopg import sql


def product_clauses(
    *,
    include_deleted: bool,
    status: str | None,
    vendor: str | None,
    product_type: str | None,
    tag: str | None,
    table: str | None = None,
) -> tuple[list[sql.Composable], list[Any]]:
    """The clauses (to be joined with AND) and their parameters, in order; `table` qualifies the
    columns when the query joins other tables."""

    def column(name: str) -> sql.Identifier:
        return sql.Identifier(table, name) if table else sql.Identifier(name)

    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if not include_deleted:
        clauses.append(sql.SQL("{} IS NULL").format(column("deleted_at")))
    for name, value in (("status", status), ("vendor", vendor), ("product_type", product_type)):
        if value is not None:
            clauses.append(sql.SQL("{} = %s").format(column(name)))
            params.append(value)
    if tag is not None:
        clauses.append(sql.SQL("{} @> ARRAY[%s]::text[]").format(column("tags")))
        params.append(tag)
    return clauses, params
