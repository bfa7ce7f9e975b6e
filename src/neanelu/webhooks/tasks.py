"""`webhooks.process` on the `webhook` queue: apply one recorded delivery, exactly once.

The inbox row is locked while its effect is written, and marked processed in the same
transaction, so a job run twice (a lost lease, a relay that pushed twice) applies it once. Effects
are newer-wins besides, which is what makes duplicates with different webhook ids (one event
delivered twice) and reordered deliveries harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from neanelu.catalog import apply
from neanelu.catalog.product_versions import (
    PRODUCT_QUERY,
    PRODUCT_QUERY_COST,
    PayloadError,
    ProductRecord,
    deleted_product_id,
    level_from_rest,
    product_from_graphql,
    product_from_rest,
)
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.db.rows import fetch_scalar
from neanelu.handles import DeliveryBatch, process_deliveries, queue_product_embedding
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Fatal
from neanelu.queue.registry import Registry
from neanelu.runtime import Runtime
from neanelu.shopify.errors import AccessDenied, Throttled
from neanelu.shops import purge, repository, service
from neanelu.shops.tokens import ShopUnavailable, admin_client
from neanelu.sync.finish_signal import announce_finished
from neanelu.webhooks import repository as inbox
from neanelu.webhooks import topics

log = logging.getLogger(__name__)

# A delivery that reached us this long after Shopify triggered it was retried: its payload may be
# older than the product now, so the product's current state is fetched instead.
STALE_AFTER = timedelta(seconds=30)


class _Unverifiable(Exception):
    """Shopify could not be asked (no usable token): the payload is all there is."""


class _ScopesUpdate(msgspec.Struct, kw_only=True):
    current: list[str]


class _BulkFinish(msgspec.Struct, kw_only=True):
    """`bulk_operations/finish`: status and error_code are lowercase (`completed`, `timeout`)."""

    admin_graphql_api_id: str
    status: str
    error_code: str | None = None
    type: str = "query"


_BULK_GID = "gid://shopify/BulkOperation/"


def _bulk_finish(payload: str) -> _BulkFinish:
    try:
        finish = msgspec.json.decode(payload, type=_BulkFinish)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(f"bulk_operations/finish payload: {exc}") from None
    number = finish.admin_graphql_api_id.removeprefix(_BULK_GID)
    if not finish.admin_graphql_api_id.startswith(_BULK_GID) or not number.isdigit():
        raise PayloadError("bulk_operations/finish payload: admin_graphql_api_id is not a bulk id")
    return finish


async def _process(ctx: JobContext, payload: DeliveryBatch) -> None:
    rt = ctx.resource(Runtime)
    try:
        shop_id = UUID(payload.shop_id)
    except ValueError:
        raise Fatal(f"payload shop_id {payload.shop_id!r} is not a UUID") from None
    # Each delivery commits on its own; a retry of the job skips the ones already processed.
    for inbox_id in sorted(payload.inbox_ids):
        await process_delivery_now(rt, shop_id, inbox_id, ctx=ctx)


async def process_delivery_now(
    rt: Runtime, shop_id: UUID, inbox_id: int, *, ctx: JobContext | None = None
) -> bool:
    """Apply one inbox row; False when it was already processed (or is gone)."""
    async with tenant_scope(rt.pool, shop_id) as conn:
        row = await inbox.get_for_update(conn, inbox_id)
        if row is None or row.processed_at is not None:
            return False
        topic = row.topic
    fetched: ProductRecord | None = None
    skip = False
    try:
        if topic in (topics.PRODUCTS_CREATE, topics.PRODUCTS_UPDATE):
            record = product_from_rest(row.payload)
            async with tenant_scope(rt.pool, shop_id) as conn:
                deleted = await apply.is_deleted(conn, record.shopify_id)
            if deleted or _may_be_stale(row.triggered_at, row.received_at):
                # A version that would revive a deleted product, or a retried (old) payload:
                # Shopify's current state decides. None: the product is gone there.
                try:
                    fetched = await _fetch_product(rt, shop_id, record.shopify_id, ctx)
                    skip = fetched is None  # gone in Shopify: its delete delivery decides
                except _Unverifiable:
                    skip = deleted  # no token to ask with: never revive on an unchecked payload
        async with tenant_scope(rt.pool, shop_id) as conn:
            locked = await inbox.get_for_update(conn, inbox_id)
            if locked is None or locked.processed_at is not None:
                return False
            if not skip and not await _shop_takes(conn, shop_id, topic):
                # Ingress caches shop states for a few seconds, so a delivery can arrive just
                # after the uninstall was applied: it stays in the inbox, unapplied.
                log.info("shop %s: %s skipped, the shop has uninstalled the app", shop_id, topic)
                skip = True
            after_commit = None if skip else await _apply(conn, rt, shop_id, locked, fetched)
            # After a purge (shop/redact) the row is gone with the shop: this marks nothing.
            await inbox.mark_processed(conn, inbox_id)
    except PayloadError as exc:
        # A payload that cannot be applied never will be: record it as handled, say why.
        log.warning("shop %s: delivery %s (%s) skipped: %s", shop_id, inbox_id, topic, exc)
        async with tenant_scope(rt.pool, shop_id) as conn:
            await inbox.mark_processed(conn, inbox_id)
        return True
    if after_commit is not None:
        await after_commit
    return True


async def _shop_takes(conn: Any, shop_id: UUID, topic: str) -> bool:
    """Whether the shop's state lets this topic apply now. The share lock holds an uninstall
    back until this delivery's effect is committed (or the uninstall goes first, and this one
    is skipped): never a catalog write after the uninstall."""
    if topic in topics.AFTER_UNINSTALL:
        return True
    shop_status = await fetch_scalar(
        conn, str, "SELECT status FROM shops WHERE id = %s FOR SHARE", (shop_id,)
    )
    return shop_status is not None and shop_status != repository.UNINSTALLED


def _may_be_stale(triggered_at: datetime | None, received_at: datetime) -> bool:
    return triggered_at is not None and received_at - triggered_at > STALE_AFTER


async def _fetch_product(
    rt: Runtime, shop_id: UUID, product_id: int, ctx: JobContext | None
) -> ProductRecord | None:
    """The product's current state; None when it no longer exists (a delete will follow)."""
    async with global_scope(rt.pool) as conn:
        shop = await repository.get(conn, shop_id)
    if shop is None:
        raise Fatal(f"shop {shop_id} is gone")
    try:
        client = await admin_client(rt, shop_id, shop.domain)
        result = await client.execute(
            PRODUCT_QUERY,
            {"id": f"gid://shopify/Product/{product_id}"},
            estimated_cost=PRODUCT_QUERY_COST,
        )
    except Throttled as exc:
        if ctx is None:
            raise
        ctx.defer(exc.retry_after, block_group=True)
    except (ShopUnavailable, AccessDenied):
        log.warning("shop %s: no token to fetch product %s", shop_id, product_id)
        raise _Unverifiable from None
    node = result.data.get("product")
    return product_from_graphql(node) if isinstance(node, dict) else None


async def _apply(
    conn: Any,
    rt: Runtime,
    shop_id: UUID,
    row: inbox.InboxRow,
    fetched: ProductRecord | None,
) -> Any:
    """Write the delivery's effect; returns a coroutine to run after the commit, if any."""
    topic = row.topic
    at = row.triggered_at or row.received_at
    if topic in (topics.PRODUCTS_CREATE, topics.PRODUCTS_UPDATE):
        record = fetched or product_from_rest(row.payload)
        if await apply.apply_product(conn, shop_id, record):
            await queue_product_embedding(conn, shop_id, [record.shopify_id])
    elif topic == topics.PRODUCTS_DELETE:
        deleted_id = deleted_product_id(row.payload)
        await apply.delete_product(conn, shop_id, deleted_id, at)
        await queue_product_embedding(conn, shop_id, [deleted_id])
    elif topic == topics.INVENTORY_LEVELS_UPDATE:
        await apply.apply_inventory_level(conn, shop_id, level_from_rest(row.payload, at))
    elif topic == topics.APP_UNINSTALLED:
        shop = await repository.get(conn, shop_id, for_update=True)
        if shop is not None and shop.status != repository.UNINSTALLED:
            installed_after = await _installed_after(conn, shop_id, at)
            if not installed_after:
                await service.uninstall(
                    conn, shop_id, shopify_shop_id=_shopify_shop_id(row.payload)
                )
                log.info("shop %s uninstalled; purge scheduled", shop_id)
                return service.pause_shop_queues(rt, shop_id)
    elif topic == topics.APP_SCOPES_UPDATE:
        try:
            scopes = msgspec.json.decode(row.payload, type=_ScopesUpdate).current
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PayloadError(f"app/scopes_update payload: {exc}") from None
        await service.update_scopes(conn, shop_id, tuple(scopes))
    elif topic == topics.BULK_OPERATIONS_FINISH:
        # Nothing to store: the sync waiting on the operation is woken (after this commits) and
        # asks Shopify for the operation itself, so a forged or stale delivery changes nothing.
        finish = _bulk_finish(row.payload)
        log.info(
            "shop %s: bulk operation %s finished %s%s",
            shop_id,
            finish.admin_graphql_api_id,
            finish.status,
            f" ({finish.error_code})" if finish.error_code else "",
        )
        return announce_finished(
            rt.redis, finish.admin_graphql_api_id, finish.status, prefix=rt.queues.prefix
        )
    elif topic == topics.SHOP_REDACT:
        # Purges only when due; otherwise recorded and skipped (the delivery is done either way).
        request = purge.RedactRequest.from_payload(row.webhook_id, row.payload)
        min_age = timedelta(hours=rt.settings.shop_redact_min_age_hours)
        await purge.redact(conn, shop_id, request, min_age=min_age)
    elif topic in (topics.CUSTOMERS_DATA_REQUEST, topics.CUSTOMERS_REDACT):
        # The mirror holds products and inventory only: there is no customer data to export or
        # erase. The delivery stays in the inbox as the record that the request was answered.
        log.info("shop %s: %s acknowledged (no customer data held)", shop_id, topic)
    else:
        log.info("shop %s: %s recorded, nothing to apply here", shop_id, topic)
    return None


class _UninstalledShop(msgspec.Struct):
    id: int | None = None


def _shopify_shop_id(payload: str) -> int | None:
    """Shopify's numeric shop id from the app/uninstalled payload (the shop object), if any."""
    try:
        return msgspec.json.decode(payload, type=_UninstalledShop).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def _installed_after(conn: Any, shop_id: UUID, at: datetime) -> bool:
    """A retried app/uninstalled that predates the latest install must not undo it."""
    installed_at = await fetch_scalar(
        conn, datetime, "SELECT installed_at FROM shops WHERE id = %s", (shop_id,)
    )
    # The header has whole seconds: a second of slack keeps a genuine uninstall that came within
    # the install's own second from being mistaken for an old one.
    return installed_at is not None and installed_at > at.astimezone(UTC) + timedelta(seconds=1)


def register(registry: Registry) -> None:
    registry.bind(process_deliveries, _process)
