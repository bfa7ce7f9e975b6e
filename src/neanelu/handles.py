"""The task seam: every task's handle (name, queue, payload type, options), declared apart from
the handler that runs it.

Any domain enqueues through a handle here without importing the domain that handles it (the
install queues `sync.full`, a finished sync queues `search.embed`), so the domains import each
other one way only. The worker's composition root (`neanelu.worker.main.build_registry`) binds
each handle to its handler, in the domain's `tasks.py`. Like procrastinate's blueprints, minus
the handlers: nothing here runs a job.

Where several domains queue the same task, the function that queues it lives here too, so the job
id that makes a repeat harmless is written once.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from neanelu.db.pool import Conn
from neanelu.queue import AI_BATCH, BULK, SYNC, WEBHOOK, Fatal, TaskHandle

# Jobs about no single shop (or about a shop whose own group is paused) share this group.
MAINTENANCE_GROUP = "maintenance"

# -- shops ----------------------------------------------------------------------------------------


class ShopRef(msgspec.Struct, frozen=True, kw_only=True):
    shop_id: str

    @property
    def id(self) -> UUID:
        try:
            return UUID(self.shop_id)
        except ValueError:
            raise Fatal(f"payload shop_id {self.shop_id!r} is not a UUID") from None


class ReconcileTick(msgspec.Struct, frozen=True, kw_only=True):
    period: int  # which reconciliation interval since the epoch this tick is for


class TokenSweepTick(msgspec.Struct, frozen=True, kw_only=True):
    period: int  # which token sweep interval since the epoch this tick is for


class DueToken(ShopRef, frozen=True, kw_only=True):
    """A shop's token as the sweep saw it: the job refreshes that token, not a newer one."""

    expires_at: str  # ISO 8601, exactly as stored

    @property
    def seen_expiry(self) -> datetime:
        try:
            return datetime.fromisoformat(self.expires_at)
        except ValueError:
            raise Fatal(f"payload expires_at {self.expires_at!r} is not a time") from None


REFRESH_ATTEMPTS = 3

subscribe_webhooks: TaskHandle[ShopRef] = TaskHandle(
    name="shops.subscribe_webhooks", queue=SYNC, payload_type=ShopRef
)
purge_shop: TaskHandle[ShopRef] = TaskHandle(name="shops.purge", queue=SYNC, payload_type=ShopRef)
reconcile_shops: TaskHandle[ReconcileTick] = TaskHandle(
    name="shops.reconcile", queue=SYNC, payload_type=ReconcileTick
)
token_sweep: TaskHandle[TokenSweepTick] = TaskHandle(
    name="shops.token_sweep", queue=SYNC, payload_type=TokenSweepTick
)
refresh_token: TaskHandle[DueToken] = TaskHandle(
    name="shops.refresh_token", queue=SYNC, payload_type=DueToken, max_attempts=REFRESH_ATTEMPTS
)

# -- sync -----------------------------------------------------------------------------------------


class FullSyncJob(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`updated_since` (ISO 8601) makes it an incremental reconciliation; `run_id` resumes a run
    created by the caller (the CLI); without one, the shop's active run is resumed or a new one
    begins, so a retried job continues its own run."""

    shop_id: str
    reason: str = ""
    updated_since: str | None = None
    run_id: str | None = None


class ParityJob(msgspec.Struct, frozen=True, kw_only=True):
    shop_id: str
    check_id: str


# Long enough for a bulk operation that Shopify keeps busy for hours to be retried a few times.
FULL_SYNC_ATTEMPTS = 8
PARITY_ATTEMPTS = 5

full_sync: TaskHandle[FullSyncJob] = TaskHandle(
    name="sync.full", queue=BULK, payload_type=FullSyncJob, max_attempts=FULL_SYNC_ATTEMPTS
)
parity_check: TaskHandle[ParityJob] = TaskHandle(
    name="sync.parity", queue=SYNC, payload_type=ParityJob, max_attempts=PARITY_ATTEMPTS
)


async def enqueue_full_sync(
    conn: Conn,
    shop_id: UUID,
    *,
    reason: str,
    updated_since: datetime | None = None,
    job_id: str | None = None,
) -> str:
    """Queue a (full, or incremental with `updated_since`) sync of the shop in the caller's
    transaction, on the `bulk` queue grouped by shop; returns the job id. The one place that asks
    for a sync: the install, the reconciliation tick, the console. Periodic callers pass a job id
    per period so a repeated tick queues nothing new."""
    since = updated_since.isoformat() if updated_since is not None else None
    return await full_sync.enqueue_in_tx(
        conn,
        FullSyncJob(shop_id=str(shop_id), reason=reason, updated_since=since),
        group=shop_id,
        job_id=job_id or f"sync-{shop_id}-{uuid.uuid4().hex}",
    )


# -- webhooks -------------------------------------------------------------------------------------


class DeliveryBatch(msgspec.Struct, frozen=True, kw_only=True):
    """Deliveries of one shop recorded in one transaction, applied in inbox order."""

    shop_id: str
    inbox_ids: list[int]


process_deliveries: TaskHandle[DeliveryBatch] = TaskHandle(
    name="webhooks.process", queue=WEBHOOK, payload_type=DeliveryBatch
)

# -- search ---------------------------------------------------------------------------------------


class EmbedJob(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """`product_ids` empty: every product of the shop. `pending`: the products webhooks marked
    for the shop (`embedding_pending`), turned into one job for all of them."""

    shop_id: str
    source: str
    product_ids: list[int] = []
    pending: bool = False


class SearchSweepTick(msgspec.Struct, frozen=True, kw_only=True):
    period: int  # which search sweep interval since the epoch this tick is for


embed_job: TaskHandle[EmbedJob] = TaskHandle(
    name="search.embed", queue=AI_BATCH, payload_type=EmbedJob
)
search_sweep: TaskHandle[SearchSweepTick] = TaskHandle(
    name="search.sweep", queue=AI_BATCH, payload_type=SearchSweepTick
)
# Loading a shop into the Redis hot cache; in the shop's group, so it never interleaves with an
# embedding run of the shop (whose Redis writes a half-loaded shop would miss).
warm_shop_job: TaskHandle[ShopRef] = TaskHandle(
    name="search.warm", queue=AI_BATCH, payload_type=ShopRef
)
# A shop searched while cold asks for loading at most once in this long (one job id a period).
WARM_PERIOD_S = 600


async def queue_shop_warming(conn: Conn, shop_id: UUID) -> str:
    """Load the shop into the hot cache, in the caller's transaction (the outbox)."""
    period = int(time.time() // WARM_PERIOD_S)
    return await warm_shop_job.enqueue_in_tx(
        conn, ShopRef(shop_id=str(shop_id)), group=shop_id, job_id=f"search-warm-{shop_id}-{period}"
    )


async def queue_shop_embedding(conn: Conn, shop_id: UUID, *, source: str, job_id: str) -> str:
    """Every product of the shop, in the caller's transaction (the outbox): after a full sync, and
    from the search sweep."""
    return await embed_job.enqueue_in_tx(
        conn, EmbedJob(shop_id=str(shop_id), source=source), group=shop_id, job_id=job_id
    )


# Product webhooks of one shop within this window share one embedding job, which runs a whole
# window after the window closes: a delivery's transaction that read the window just before it
# closed has committed its mark by then (unless it took longer than that, when the next change
# or the search sweep embeds the product). Freshness: a change is embedded 2-4 s after its webhook
# plus the embedding itself.
PENDING_WINDOW_S = 2.0


async def queue_product_embedding(conn: Conn, shop_id: UUID, product_ids: list[int]) -> str:
    """Products a webhook changed or deleted, marked in the caller's transaction, with the
    shop's job for the current window (one job id per window: the queue keeps the first)."""
    await conn.execute(
        "INSERT INTO embedding_pending (shop_id, product_shopify_id) "
        "SELECT %s, unnest(%s::bigint[]) ON CONFLICT (shop_id, product_shopify_id) DO NOTHING",
        (shop_id, sorted(set(product_ids))),
    )
    now = time.time()
    window = int(now // PENDING_WINDOW_S)
    return await embed_job.enqueue_in_tx(
        conn,
        EmbedJob(shop_id=str(shop_id), source="webhook", pending=True),
        group=shop_id,
        job_id=f"embed-pending-{shop_id}-{window}",
        delay_s=(window + 2) * PENDING_WINDOW_S - now,
    )


async def queue_marked_products(conn: Conn, shop_id: UUID, product_ids: list[int]) -> str:
    """The job for products taken off `embedding_pending`, in the same transaction that took
    them (so a mark is either still there or has its job)."""
    return await embed_job.enqueue_in_tx(
        conn,
        EmbedJob(shop_id=str(shop_id), source="webhook", product_ids=sorted(set(product_ids))),
        group=shop_id,
        job_id=f"embed-{uuid.uuid4().hex}",
    )


HANDLES: tuple[TaskHandle[Any], ...] = (
    subscribe_webhooks,
    purge_shop,
    reconcile_shops,
    token_sweep,
    refresh_token,
    full_sync,
    parity_check,
    process_deliveries,
    embed_job,
    search_sweep,
    warm_shop_job,
)
"""Every task there is: the worker binds each one, and a test checks none is left unbound."""
