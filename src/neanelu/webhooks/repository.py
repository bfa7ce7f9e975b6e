"""The webhook inbox (tenant table): one row per delivery, keyed by `X-Shopify-Webhook-Id`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec
from psycopg import AsyncCursor
from psycopg.rows import class_row, scalar_row

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalars
from neanelu.db.sql_files import load_sql
from neanelu.queue.outbox import OutboxJob


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


@dataclass(frozen=True, slots=True)
class Inserted:
    webhook_id: str
    id: int


@dataclass(frozen=True, slots=True)
class NewDelivery:
    webhook_id: str
    event_id: str | None
    topic: str
    api_version: str | None
    triggered_at: datetime | None
    payload: bytes  # the raw body, already checked to be a JSON object


class _Row(msgspec.Struct, omit_defaults=False):
    webhook_id: str
    event_id: str | None
    topic: str
    api_version: str | None
    triggered_at: datetime | None
    payload: msgspec.Raw


_rows_encoder = msgspec.json.Encoder()


async def insert_and_queue(
    conn: Conn,
    shop_id: UUID,
    deliveries: Sequence[NewDelivery],
    job: OutboxJob,
    *,
    compliance_topics: Collection[str],
    compliance_group: str,
) -> AsyncCursor[Inserted]:
    """Send the insert of one shop's deliveries, with the outbox rows that queue the new ones,
    on a connection in a pipelined transaction (the caller's tenant scope). Nothing is read here:
    the cursor answers `inserted_ids` once the transaction has committed."""
    cur = conn.cursor(row_factory=class_row(Inserted))
    shop = str(shop_id)
    await cur.execute(
        load_sql("record_batch.sql", "neanelu.webhooks"),
        {
            "shop_id": shop_id,
            "shop": shop,
            "deliveries": _rows_encoder.encode(
                [
                    _Row(
                        d.webhook_id,
                        d.event_id,
                        d.topic,
                        d.api_version,
                        d.triggered_at,
                        msgspec.Raw(d.payload),
                    )
                    for d in deliveries
                ]
            ).decode(),
            "queue": job.queue,
            "task": job.task,
            "options": job.options,
            "compliance_topics": list(compliance_topics),
            "compliance_group": compliance_group,
        },
    )
    return cur


async def inserted_ids(cur: AsyncCursor[Inserted]) -> dict[str, int]:
    """Inbox ids of the deliveries that were new, by webhook id (see `insert_and_queue`)."""
    return {row.webhook_id: row.id for row in await cur.fetchall()}


async def get_for_update(conn: Conn, inbox_id: int) -> InboxRow | None:
    return await fetch_one(
        conn,
        InboxRow,
        "SELECT id, webhook_id, event_id, topic, triggered_at, received_at, payload::text, "
        "processed_at FROM webhook_inbox WHERE id = %s FOR UPDATE",
        (inbox_id,),
    )


async def mark_processed(conn: Conn, inbox_id: int) -> None:
    await conn.execute(
        "UPDATE webhook_inbox SET processed_at = now() WHERE id = %s AND processed_at IS NULL",
        (inbox_id,),
    )


async def count_inbox(conn: Conn) -> int:
    """Deliveries received for the caller's tenant scope, processed or not."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute("SELECT count(*) FROM webhook_inbox")
        return int(await cur.fetchone() or 0)


async def unprocessed_with_waiting(
    conn: Conn, inbox_ids: Sequence[int], catalog: Collection[str], waiting: int
) -> list[InboxRow]:
    """The deliveries among these not processed yet and up to `waiting` more of the shop's
    waiting deliveries of the `catalog` topics that came before any waiting one of another
    topic, in inbox order (see sql/unprocessed_with_waiting.sql)."""
    return await fetch_all(
        conn,
        InboxRow,
        load_sql("unprocessed_with_waiting.sql", "neanelu.webhooks"),
        {"ids": sorted(set(inbox_ids)), "catalog": sorted(catalog), "waiting": waiting},
    )


async def lock_unprocessed(conn: Conn, inbox_ids: Sequence[int]) -> list[int]:
    """Lock these deliveries (in id order: two runs of one batch queue, never deadlock) and
    answer those still unprocessed. A run that waited here for another run of the same job sees
    that run's commit (the row is read again once its lock is free) and finds them processed."""
    return await fetch_scalars(
        conn,
        int,
        "SELECT id FROM webhook_inbox WHERE id = ANY(%s) AND processed_at IS NULL "
        "ORDER BY id FOR UPDATE",
        (sorted(set(inbox_ids)),),
    )


async def mark_all_processed(conn: Conn, inbox_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE webhook_inbox SET processed_at = now() WHERE id = ANY(%s) AND processed_at IS NULL",
        (sorted(set(inbox_ids)),),
    )
