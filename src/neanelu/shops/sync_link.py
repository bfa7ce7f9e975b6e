"""The one place that asks for a full sync (install) or an incremental one (reconciliation).

The sync domain owns the task; this module writes its job through the queue's outbox in the
caller's transaction. The task name and payload follow the sync's contract: `sync.full` on the
`bulk` queue, grouped by shop, with `updated_since` set for an incremental run.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import msgspec

from neanelu.db.pool import Conn
from neanelu.queue.client import JobSpec
from neanelu.queue.outbox import write_outbox
from neanelu.queue.settings import BULK

FULL_SYNC_TASK = "sync.full"


class FullSyncRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    shop_id: str
    reason: str
    updated_since: str | None = None  # ISO 8601; None for a complete sync


async def enqueue_full_sync(
    conn: Conn,
    shop_id: UUID,
    *,
    reason: str,
    updated_since: datetime | None = None,
    job_id: str | None = None,
) -> str:
    """Queue a (full or incremental) sync of the shop in the caller's transaction; returns the
    job id. Periodic callers pass a job id per period so a repeated tick queues nothing new."""
    since = updated_since.isoformat() if updated_since is not None else None
    payload = FullSyncRequest(shop_id=str(shop_id), reason=reason, updated_since=since)
    job_id = job_id or f"sync-{shop_id}-{uuid4().hex}"
    spec = JobSpec(
        task=FULL_SYNC_TASK,
        group=str(shop_id),
        payload=msgspec.json.encode(payload),
        job_id=job_id,
    )
    await write_outbox(conn, BULK, spec)
    return job_id
