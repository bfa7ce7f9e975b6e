"""sync_runs rows. Every function runs inside the caller's tenant scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from neanelu.db.pool import Conn


@dataclass(slots=True)
class SyncRun:
    id: UUID
    shop_id: UUID
    kind: str
    status: str
    phase: str
    bulk_operations: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    bytes: int = 0
    bad_lines: int = 0
    attempts: int = 0
    error: str | None = None
    updated_since: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None


_COLUMNS = (
    "id, shop_id, kind, status, phase, bulk_operations, counts, bytes, bad_lines, attempts, error,"
    " updated_since, started_at, finished_at, created_at"
)


async def create_run(
    conn: Conn, shop_id: UUID, kind: str, updated_since: datetime | None
) -> SyncRun:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"INSERT INTO sync_runs (shop_id, kind, updated_since) VALUES (%s, %s, %s) RETURNING {_COLUMNS}",
            (shop_id, kind, updated_since),
        )
        row = await cur.fetchone()
    assert row is not None
    return SyncRun(**row)


async def active_run(conn: Conn, kind: str) -> SyncRun | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM sync_runs WHERE kind = %s AND status IN ('queued', 'running')"
            " ORDER BY created_at LIMIT 1",
            (kind,),
        )
        row = await cur.fetchone()
    return SyncRun(**row) if row else None


async def get_run(conn: Conn, run_id: UUID) -> SyncRun | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM sync_runs WHERE id = %s", (run_id,))
        row = await cur.fetchone()
    return SyncRun(**row) if row else None


async def latest_runs(conn: Conn, limit: int = 10) -> list[SyncRun]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM sync_runs ORDER BY created_at DESC LIMIT %s", (limit,)
        )
        return [SyncRun(**row) for row in await cur.fetchall()]


async def start_attempt(conn: Conn, run_id: UUID) -> None:
    await conn.execute(
        "UPDATE sync_runs SET status = 'running', attempts = attempts + 1, error = NULL,"
        " started_at = coalesce(started_at, now()), updated_at = now() WHERE id = %s",
        (run_id,),
    )


async def record_operation(conn: Conn, run_id: UUID, phase: str, operation_id: str) -> None:
    await conn.execute(
        "UPDATE sync_runs SET bulk_operations = bulk_operations || jsonb_build_object(%s::text, %s::text),"
        " updated_at = now() WHERE id = %s",
        (phase, operation_id, run_id),
    )


async def forget_operation(conn: Conn, run_id: UUID, phase: str) -> None:
    await conn.execute(
        "UPDATE sync_runs SET bulk_operations = bulk_operations - %s::text, updated_at = now()"
        " WHERE id = %s",
        (phase, run_id),
    )


async def record_progress(
    conn: Conn, run_id: UUID, phase: str, counts: dict[str, Any], bytes_read: int, bad_lines: int
) -> None:
    await conn.execute(
        "UPDATE sync_runs SET phase = %s, counts = counts || %s, bytes = %s, bad_lines = %s,"
        " updated_at = now() WHERE id = %s",
        (phase, Jsonb(counts), bytes_read, bad_lines, run_id),
    )


async def finish_run(conn: Conn, run_id: UUID, status: str, error: str | None) -> None:
    await conn.execute(
        "UPDATE sync_runs SET status = %s, error = %s, phase = CASE WHEN %s = 'completed'"
        " THEN 'done' ELSE phase END, finished_at = now(), updated_at = now() WHERE id = %s",
        (status, error, status, run_id),
    )


async def mark_shop_synced(conn: Conn, shop_id: UUID, kind: str) -> None:
    column = "last_full_sync_at" if kind == "full" else "last_incremental_sync_at"
    await conn.execute(f"UPDATE shops SET {column} = now() WHERE id = %s", (shop_id,))
