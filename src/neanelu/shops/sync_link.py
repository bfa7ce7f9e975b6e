"""The one place that asks for a full sync (install) or an incremental one (reconciliation):
the sync domain's `sync.full` task on the `bulk` queue, grouped by shop, through the outbox in the
caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from neanelu.db.pool import Conn
from neanelu.sync.tasks import FullSyncJob, full_sync


async def enqueue_full_sync(
    conn: Conn,
    shop_id: UUID,
    *,
    reason: str,
    updated_since: datetime | None = None,
    job_id: str | None = None,
) -> str:
    """Queue a (full, or incremental with `updated_since`) sync of the shop in the caller's
    transaction; returns the job id. Periodic callers pass a job id per period so a repeated tick
    queues nothing new."""
    since = updated_since.isoformat() if updated_since is not None else None
    return await full_sync.enqueue_in_tx(
        conn,
        FullSyncJob(shop_id=str(shop_id), reason=reason, updated_since=since),
        group=shop_id,
        job_id=job_id or f"sync-{shop_id}-{uuid4().hex}",
    )
