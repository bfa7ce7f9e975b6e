"""Handlers of the shops domain's jobs: webhook subscriptions after an install, the delayed purge,
the reconciliation tick (their handles: `neanelu.handles`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.handles import (
    MAINTENANCE_GROUP,
    ReconcileTick,
    ShopRef,
    enqueue_full_sync,
    purge_shop,
    reconcile_shops,
    subscribe_webhooks,
)
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Fatal
from neanelu.queue.registry import Registry
from neanelu.runtime import Runtime
from neanelu.search.hot import forget_shop
from neanelu.shopify.errors import AccessDenied, QueryError, Throttled
from neanelu.shopify.graphql import GraphQLResult
from neanelu.shops import purge, repository
from neanelu.shops.tokens import ShopUnavailable, admin_client

log = logging.getLogger(__name__)

# What the incremental sync and the shop lifecycle need (compliance topics are declared in the
# app's configuration, not through the API).
WEBHOOK_TOPICS = (
    "PRODUCTS_CREATE",
    "PRODUCTS_UPDATE",
    "PRODUCTS_DELETE",
    "INVENTORY_LEVELS_UPDATE",
    "APP_UNINSTALLED",
    "APP_SCOPES_UPDATE",
    "BULK_OPERATIONS_FINISH",
)
WEBHOOK_PATH = "/api/webhooks"
RECONCILE_INTERVAL = timedelta(hours=1)
# Changes made while the previous sync ran may be older than its end: re-read a margin before it
# (newer-wins makes the overlap harmless).
RECONCILE_OVERLAP = timedelta(hours=1)

_LIST_SUBSCRIPTIONS = """
query Subscriptions {
  shop { plan { displayName } }
  webhookSubscriptions(first: 100) {
    nodes { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } }
  }
}
"""
_CREATE_SUBSCRIPTION = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""


def callback_url(app_host: str) -> str:
    return app_host.rstrip("/") + WEBHOOK_PATH


async def _subscribe_webhooks(ctx: JobContext, payload: ShopRef) -> None:
    """Create the subscriptions this app needs that the shop does not have yet (idempotent)."""
    rt = ctx.resource(Runtime)
    shop_id = payload.id
    async with global_scope(rt.pool) as conn:
        row = await repository.get(conn, shop_id)
    if row is None or row.status != repository.INSTALLED:
        return  # uninstalled since: nothing to subscribe
    url = callback_url(rt.settings.app_host)
    try:
        client = await admin_client(rt, shop_id, row.domain)
        listed = await client.execute(_LIST_SUBSCRIPTIONS, estimated_cost=12)
        await _record_plan(rt, shop_id, listed)
        have = {
            node.get("topic")
            for node in _nodes(listed.data.get("webhookSubscriptions"))
            if (node.get("endpoint") or {}).get("callbackUrl") == url
        }
        for topic in WEBHOOK_TOPICS:
            if topic in have:
                continue
            result = await client.execute(
                _CREATE_SUBSCRIPTION,
                {"topic": topic, "sub": {"callbackUrl": url, "format": "JSON"}},
                estimated_cost=10,
            )
            errors = (result.data.get("webhookSubscriptionCreate") or {}).get("userErrors") or []
            if errors:
                raise QueryError(f"webhookSubscriptionCreate {topic}: {errors[0].get('message')}")
    except Throttled as exc:
        ctx.defer(exc.retry_after)
    except (ShopUnavailable, AccessDenied) as exc:
        raise Fatal(f"shop {shop_id}: cannot subscribe webhooks ({type(exc).__name__})") from None
    log.info("shop %s: webhook subscriptions in place", shop_id)


async def _record_plan(rt: Runtime, shop_id: UUID, listed: GraphQLResult) -> None:
    """The shop's plan and its bucket as Shopify reports them (the console shows them; the
    bucket is what the cost limiter learns from every answer anyway)."""
    shop = listed.data.get("shop")
    plan = (shop or {}).get("plan") if isinstance(shop, dict) else None
    name = plan.get("displayName") if isinstance(plan, dict) else None
    throttle = listed.throttle
    bucket = round(throttle.maximum_available) if throttle else None
    rate = round(throttle.restore_rate) if throttle else None
    async with tenant_scope(rt.pool, shop_id) as conn:
        await repository.set_plan(
            conn,
            shop_id,
            name[:100] if isinstance(name, str) and name.strip() else None,
            bucket if bucket and bucket > 0 else None,
            rate if rate and rate > 0 else None,
        )


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if not isinstance(connection, dict):
        return []
    return [n for n in connection.get("nodes") or [] if isinstance(n, dict)]


def next_period(interval: timedelta, now: datetime | None = None) -> tuple[int, float]:
    """The `interval` after the one `now` falls in (counted from the epoch), and the seconds
    until it begins: what a periodic tick is named and delayed by."""
    at = (now or datetime.now(UTC)).timestamp()
    seconds = interval.total_seconds()
    period = int(at // seconds) + 1
    return period, max(0.0, period * seconds - at)


async def schedule_reconciliation(conn: Conn, *, now: datetime | None = None) -> str:
    """Queue the next reconciliation tick (idempotent: one job id per period, so every process
    that calls this at start-up queues the same single tick)."""
    period, delay_s = next_period(RECONCILE_INTERVAL, now)
    return await reconcile_shops.enqueue_in_tx(
        conn,
        ReconcileTick(period=period),
        group=MAINTENANCE_GROUP,
        job_id=f"reconcile-tick-{period}",
        delay_s=delay_s,
    )


async def _reconcile_shops(ctx: JobContext, tick: ReconcileTick) -> None:
    """Every installed shop that finished a sync gets an incremental one (`updated_at:>` its last
    sync, with an overlap), catching what webhooks missed; then the next tick is queued."""
    rt = ctx.resource(Runtime)
    queued = 0
    async with global_scope(rt.pool) as conn:
        for shop_id, last in await repository.last_synced(conn):
            if last is None:
                continue  # the install's full sync has not finished yet
            await enqueue_full_sync(
                conn,
                shop_id,
                reason="reconcile",
                updated_since=last - RECONCILE_OVERLAP,
                job_id=f"reconcile-{shop_id}-{tick.period}",
            )
            queued += 1
        await schedule_reconciliation(conn)
    log.info("reconciliation tick %d: %d shop(s) queued", tick.period, queued)


async def _purge_shop(ctx: JobContext, payload: ShopRef) -> None:
    """The delayed purge after an uninstall; a reinstall in between makes it a no-op."""
    rt = ctx.resource(Runtime)
    async with tenant_scope(rt.pool, payload.id) as conn:
        outcome = await purge.purge_if_due(conn, payload.id)
    if outcome is not None and outcome.purged:
        # After the commit: the shop's vectors in the search hot cache go with its rows.
        await forget_shop(rt.redis, payload.id)


def register(registry: Registry) -> None:
    """Bind this domain's handles to their handlers in the worker's registry."""
    registry.bind(subscribe_webhooks, _subscribe_webhooks)
    registry.bind(purge_shop, _purge_shop)
    registry.bind(reconcile_shops, _reconcile_shops)
