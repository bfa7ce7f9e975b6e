"""Products that webhooks marked for embedding (`embedding_pending`), claimed by the shop's window
job and handed to one embedding job in the same transaction: a mark is either still there or has
a job that embeds its product, whatever crashes in between."""

from __future__ import annotations

from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_scalars
from neanelu.handles import queue_marked_products

# Products per embedding job: a storm's backlog becomes jobs of a size that commits page by page
# (the run does), with a payload that stays small.
CLAIM_LIMIT = 10_000

_CLAIM = (
    "DELETE FROM embedding_pending WHERE (shop_id, product_shopify_id) IN ("
    " SELECT shop_id, product_shopify_id FROM embedding_pending ORDER BY marked_at LIMIT %s"
    # Marks another window job of the shop is claiming right now are its own.
    " FOR UPDATE SKIP LOCKED) RETURNING product_shopify_id"
)


async def claim_pending(pool: AsyncConnectionPool[Conn], shop_id: UUID) -> int:
    """The shop's marked products as embedding jobs; how many products were claimed."""
    claimed = 0
    async with tenant_scope(pool, shop_id) as conn:
        while True:
            ids = await fetch_scalars(conn, int, _CLAIM, (CLAIM_LIMIT,))
            if not ids:
                break
            await queue_marked_products(conn, shop_id, ids)
            claimed += len(ids)
            if len(ids) < CLAIM_LIMIT:
                break
    return claimed
