"""`webhooks.process` on the `webhook` queue: apply a batch of recorded deliveries, exactly once.

Each inbox row is locked while its effect is written, and marked processed in the same
transaction, so a job run twice (a lost lease, a relay that pushed twice) applies it once. Effects
are newer-wins besides, which is what makes duplicates with different webhook ids (one event
delivered twice) and reordered deliveries harmless. The catalog topics, nearly all the traffic,
are applied a run at a time (webhooks/catalog_batch.py); the others here, one by one.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from neanelu.catalog.product_versions import PayloadError
from neanelu.db.pool import tenant_scope
from neanelu.db.rows import fetch_scalar
from neanelu.handles import DeliveryBatch, process_deliveries
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Fatal
from neanelu.queue.registry import Registry
from neanelu.runtime import Runtime
from neanelu.search.hot import forget_shop
from neanelu.shops import purge, repository, service
from neanelu.sync.finish_signal import announce_finished
from neanelu.webhooks import catalog_batch, topics
from neanelu.webhooks import repository as inbox

log = logging.getLogger(__name__)

# Deliveries a job applies at most: its own and the shop's other waiting catalog deliveries (a
# set-based run costs about the same for 1 or 500; the cap bounds one transaction and its locks).
MAX_RUN = 500


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
    await process_batch_now(rt, shop_id, payload.inbox_ids, ctx=ctx, waiting=MAX_RUN)


async def process_batch_now(
    rt: Runtime,
    shop_id: UUID,
    inbox_ids: Sequence[int],
    *,
    ctx: JobContext | None = None,
    waiting: int = 0,
) -> int:
    """Apply a batch's deliveries (with `waiting`, up to that many in all: the shop's other
    waiting catalog deliveries too) in inbox order; returns how many this call processed (none
    of those already processed: a job run again applies nothing twice). Each run of catalog
    deliveries commits as one; any other topic commits on its own, in its place in the order."""
    async with tenant_scope(rt.pool, shop_id) as conn:
        rows = await inbox.unprocessed_with_waiting(
            conn, inbox_ids, topics.CATALOG, max(0, waiting - len(inbox_ids))
        )
    done = 0
    for catalog, run in itertools.groupby(rows, key=lambda row: row.topic in topics.CATALOG):
        if catalog:
            done += await catalog_batch.apply_run(rt, shop_id, list(run), ctx)
        else:
            for row in run:
                done += await _process_one(rt, shop_id, row.id)
    return done


async def process_delivery_now(
    rt: Runtime, shop_id: UUID, inbox_id: int, *, ctx: JobContext | None = None
) -> bool:
    """Apply one inbox row; False when it was already processed (or is gone)."""
    return await process_batch_now(rt, shop_id, [inbox_id], ctx=ctx) > 0


async def _process_one(rt: Runtime, shop_id: UUID, inbox_id: int) -> int:
    """A delivery of a topic other than the catalog's, in a transaction of its own."""
    topic = "?"
    try:
        async with tenant_scope(rt.pool, shop_id) as conn:
            row = await inbox.get_for_update(conn, inbox_id)
            if row is None or row.processed_at is not None:
                return 0
            topic = row.topic
            # Topics accepted after an uninstall apply whatever the shop's state; the others hold
            # the shop installed until they commit.
            takes = topic in topics.AFTER_UNINSTALL or await repository.holds_installed(
                conn, shop_id
            )
            if not takes:
                log.info("shop %s: %s skipped, the shop has uninstalled the app", shop_id, topic)
            after_commit = await _apply(conn, rt, shop_id, row) if takes else None
            # After a purge (shop/redact) the row is gone with the shop: this marks nothing.
            await inbox.mark_processed(conn, inbox_id)
    except PayloadError as exc:
        # A payload that cannot be applied never will be: record it as handled, say why.
        log.warning("shop %s: delivery %s (%s) skipped: %s", shop_id, inbox_id, topic, exc)
        async with tenant_scope(rt.pool, shop_id) as conn:
            await inbox.mark_processed(conn, inbox_id)
        return 1
    if after_commit is not None:
        await after_commit
    return 1


async def _apply(conn: Any, rt: Runtime, shop_id: UUID, row: inbox.InboxRow) -> Any:
    """Write the delivery's effect; returns a coroutine to run after the commit, if any."""
    topic = row.topic
    at = row.triggered_at or row.received_at
    if topic == topics.APP_UNINSTALLED:
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
        outcome = await purge.redact(conn, shop_id, request, min_age=min_age)
        if outcome is not None and outcome.purged:
            # After the commit: the shop's vectors in the search hot cache go with its rows.
            return forget_shop(rt.redis, shop_id)
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
