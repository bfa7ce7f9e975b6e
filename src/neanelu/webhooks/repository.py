"""The webhook inbox (tenant table): one row per delivery, keyed by `X-Shopify-Webhook-Id`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from neanelu.db.pool import Conn

_INSERT = (
    "INSERT INTO webhook_inbox "
    "(shop_id, webhook_id, event_id, topic, api_version, triggered_at, payload) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) "
    "ON CONFLICT (shop_id, webhook_id) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    webhook_id: str
    event_id: str | None
    topic: str
    triggered_at: datetime | None
    received_at: datetime
    payload: str
    processed_at: datetime | None


async def insert(
    conn: Conn,
    shop_id: UUID,
    *,
    webhook_id: str,
    event_id: str | None,
    topic: str,
    api_version: str | None,
    triggered_at: datetime | None,
    payload: str,
) -> int | None:
    """The new row's id, or None when this webhook id was recorded before (a duplicate)."""
    cur = await conn.execute(
        _INSERT, (shop_id, webhook_id, event_id, topic, api_version, triggered_at, payload)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def get_for_update(conn: Conn, inbox_id: int) -> InboxRow | None:
    cur = await conn.execute(
        "SELECT id, webhook_id, event_id, topic, triggered_at, received_at, payload::text, "
        "processed_at FROM webhook_inbox WHERE id = %s FOR UPDATE",
        (inbox_id,),
    )
    r = await cur.fetchone()
    if r is None:
        return None
    return InboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])


async def mark_processed(conn: Conn, inbox_id: int) -> None:
    await conn.execute(
        "UPDATE webhook_inbox SET processed_at = now() WHERE id = %s AND processed_at IS NULL",
        (inbox_id,),
    )
