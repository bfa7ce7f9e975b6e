"""Transactional enqueue: a job is an outbox row written in the caller's transaction, and a relay
moves committed rows to Redis. A rollback drops the job with the data it depended on; a crash
between the Redis push and the row's delete pushes it again, which the queue ignores because
enqueue is idempotent by job id.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

import msgspec
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope
from neanelu.db.rows import fetch_all
from neanelu.queue.client import JobSpec, QueueClient
from neanelu.queue.jobs import EnqueueResult

log = logging.getLogger(__name__)


class OutboxOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    delay_s: float = 0.0
    priority: int = 0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    max_attempts: int = 0


def options_json(options: OutboxOptions) -> str:
    return msgspec.json.encode(options).decode()


@dataclass(frozen=True, slots=True)
class OutboxJob:
    """The columns of an outbox row that come from its task handle, for a statement that builds
    the rest (id, group, payload) from rows it writes itself in the same statement: the webhook
    inbox queues each batch so, without waiting for the inbox ids in between."""

    queue: str
    task: str
    options: str  # JSON, as `write_outbox` stores it


async def write_outbox(conn: Conn, queue: str, spec: JobSpec) -> None:
    """Insert the job in the caller's open transaction (the caller commits, never this)."""
    if not spec.job_id:
        raise ValueError("an outbox job needs its id up front so the relay can push it twice")
    options = OutboxOptions(
        delay_s=spec.delay_s,
        priority=spec.priority,
        headers=spec.headers,
        max_attempts=spec.max_attempts,
    )
    await conn.execute(
        "INSERT INTO outbox (queue, job_id, group_id, task, payload, options) "
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb)",
        (
            queue,
            spec.job_id,
            spec.group,
            spec.task,
            spec.payload.decode(),
            options_json(options),
        ),
    )


_options_decoder = msgspec.json.Decoder(OutboxOptions)


@dataclass(frozen=True, slots=True)
class _OutboxRow:
    id: int
    queue: str
    job_id: str
    group_id: str
    task: str
    payload: str
    options: str


async def relay_once(
    pool: AsyncConnectionPool[Conn], client: QueueClient, *, batch: int = 500
) -> int:
    """Move up to `batch` committed rows to Redis; returns how many rows were relayed.

    SKIP LOCKED lets several relays (one per worker process) drain the table side by side. A row
    whose group is full stays for a later pass: backpressure reaches the outbox, not a lost job.
    """
    async with global_scope(pool) as conn:
        rows = await fetch_all(
            conn,
            _OutboxRow,
            "SELECT id, queue, job_id, group_id, task, payload::text, options::text FROM outbox "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (batch,),
        )
        if not rows:
            return 0
        by_queue: dict[str, list[tuple[int, JobSpec]]] = defaultdict(list)
        for row in rows:
            by_queue[row.queue].append((row.id, _spec(row)))
        done: list[int] = []
        for name, items in by_queue.items():
            if name not in client.names:
                log.error("outbox rows for unknown queue %r left in place", name)
                continue
            results = await client.queue(name).enqueue_many([spec for _, spec in items])
            done += [
                row_id
                for (row_id, _), result in zip(items, results, strict=True)
                if result is not EnqueueResult.GROUP_FULL
            ]
        if done:
            await conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (done,))
        return len(done)


def _spec(row: _OutboxRow) -> JobSpec:
    options = _options_decoder.decode(row.options)
    return JobSpec(
        task=row.task,
        group=row.group_id,
        payload=row.payload.encode(),
        job_id=row.job_id,
        delay_s=options.delay_s,
        priority=options.priority,
        headers=options.headers,
        max_attempts=options.max_attempts,
    )


async def run_outbox_relay(
    pool: AsyncConnectionPool[Conn],
    client: QueueClient,
    stop: asyncio.Event,
    *,
    interval_s: float = 0.2,
    batch: int = 500,
) -> None:
    """Relay until `stop` is set; a full batch loops at once, an empty one waits `interval_s`."""
    failures = 0
    while not stop.is_set():
        try:
            moved = await relay_once(pool, client, batch=batch)
            failures = 0
        except Exception:
            # PostgreSQL or Redis restarting: rows stay in the outbox, so waiting loses nothing.
            failures += 1
            log.exception("outbox relay failed (%d in a row)", failures)
            moved = 0
        if moved >= batch:
            continue
        delay = interval_s if failures == 0 else min(30.0, interval_s * 2**failures)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            pass
