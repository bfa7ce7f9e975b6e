"""The console's audit log: who did what, to what, when, from where. Append-only for the
application role (INSERT and SELECT are its only rights on the table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    username: str
    action: str
    target: str
    detail: dict[str, Any]
    remote_addr: str | None
    at: datetime


async def record(
    conn: Conn,
    *,
    operator_id: UUID | None,
    username: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO console_audit (operator_id, username, action, target, detail, remote_addr)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (operator_id, username[:200], action, target[:500], Jsonb(detail or {}), remote_addr),
    )


async def recent(conn: Conn, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
    return await fetch_all(
        conn,
        AuditEntry,
        "SELECT id, username, action, target, detail, remote_addr, at FROM console_audit"
        " WHERE id < coalesce(%s, 9223372036854775807) ORDER BY id DESC LIMIT %s",
        (before_id, limit),
    )
