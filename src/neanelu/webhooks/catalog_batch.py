"""A run of one shop's catalog deliveries (products/create|update|delete, inventory_levels/update),
applied set-based: a read of the products' deletion state, Shopify asked outside any
transaction about the versions it must decide, then one transaction that locks the run's inbox
rows, holds the shop installed, writes every effect (catalog/apply.py: a statement per kind of
row) and marks the run processed.

The guarantees are those of applying the deliveries one by one: a run applied twice (a lost
lease, a relay that pushed twice) writes once, because the inbox rows are locked and the still
unprocessed ones are the only ones written, in the transaction that marks them; the effects are
newer-wins, so of several deliveries of one product the newest stands whatever their order; a
delivery whose payload cannot be applied is marked processed and left out, the others written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import psycopg

from neanelu.catalog import apply
from neanelu.catalog.apply import CatalogChanges, Deletion
from neanelu.catalog.product_versions import (
    PRODUCT_QUERY,
    PRODUCT_QUERY_COST,
    InventoryLevelRecord,
    PayloadError,
    ProductRecord,
    deleted_product_id,
    level_from_rest,
    product_from_graphql,
    product_from_rest,
)
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import queue_product_embedding
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Fatal
from neanelu.runtime import Runtime
from neanelu.shopify.errors import AccessDenied, Throttled
from neanelu.shopify.graphql import AdminClient
from neanelu.shops import repository
from neanelu.shops.tokens import ShopUnavailable, admin_client
from neanelu.webhooks import repository as inbox
from neanelu.webhooks import topics

log = logging.getLogger(__name__)

# A delivery that reached us this long after Shopify triggered it was retried: its payload may be
# older than the product now, so the product's current state is fetched instead.
STALE_AFTER = timedelta(seconds=30)


class _Unverifiable(Exception):
    """Shopify could not be asked (no usable token): the payload is all there is."""


@dataclass(slots=True)
class _Delivery:
    """One inbox row and the change it carries (none: a bad payload, or one left unapplied)."""

    row: inbox.InboxRow
    product: ProductRecord | None = None
    deletion: Deletion | None = None
    level: InventoryLevelRecord | None = None
    error: str | None = None


def _decode(row: inbox.InboxRow) -> _Delivery:
    at = row.triggered_at or row.received_at
    try:
        if row.topic == topics.PRODUCTS_DELETE:
            return _Delivery(row, deletion=Deletion(deleted_product_id(row.payload), at))
        if row.topic == topics.INVENTORY_LEVELS_UPDATE:
            return _Delivery(row, level=level_from_rest(row.payload, at))
        return _Delivery(row, product=product_from_rest(row.payload))
    except PayloadError as exc:
        # A payload that cannot be applied never will be: it is recorded as handled, with why.
        return _Delivery(row, error=str(exc))


def _may_be_stale(triggered_at: datetime | None, received_at: datetime) -> bool:
    return triggered_at is not None and received_at - triggered_at > STALE_AFTER


async def apply_run(
    rt: Runtime, shop_id: UUID, rows: Sequence[inbox.InboxRow], ctx: JobContext | None
) -> int:
    """Apply the run's catalog deliveries; returns how many this call marked processed."""
    deliveries = [_decode(row) for row in rows]
    await _verify(rt, shop_id, deliveries, ctx)
    try:
        return await _write(rt, shop_id, deliveries)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        if len(rows) == 1:
            raise
        # A value PostgreSQL refuses fails the whole statement, so the run's transaction: the
        # deliveries go one by one, the good ones written and the bad one failing its job, as
        # when each had its own transaction.
        log.warning("shop %s: a run of %d failed (%s), applied one by one", shop_id, len(rows), exc)
        done = 0
        for row in rows:
            done += await apply_run(rt, shop_id, [row], ctx)
        return done


async def _verify(
    rt: Runtime, shop_id: UUID, deliveries: list[_Delivery], ctx: JobContext | None
) -> None:
    """Put Shopify's current state in place of the versions it must decide: one of a product
    stored deleted, one newer than a deletion in the run (the run writes versions first, so the
    deletion wins; one by one, the version would have found the product deleted), and a retried
    payload, maybe older than the product. None from Shopify: the product is gone there, and its
    delete delivery decides."""
    versions = [(d, d.product) for d in deliveries if d.product is not None]
    if not versions:
        return
    async with tenant_scope(rt.pool, shop_id) as conn:
        deleted = await apply.deleted_products(conn, [p.shopify_id for _, p in versions])
    deleted_in_run: dict[int, datetime] = {}
    for d in deliveries:
        if d.deletion is not None:
            at = deleted_in_run.get(d.deletion.shopify_id, d.deletion.at)
            deleted_in_run[d.deletion.shopify_id] = min(at, d.deletion.at)
    # Each product is asked once, whichever of its deliveries needed it first.
    shopify = _Shopify(rt, shop_id, ctx)
    answers: dict[int, ProductRecord | _Unverifiable | PayloadError | None] = {}
    for d, version in versions:
        product_id = version.shopify_id
        deleted_at = deleted_in_run.get(product_id)
        revives = product_id in deleted or (
            deleted_at is not None and version.shopify_updated_at > deleted_at
        )
        if not revives and not _may_be_stale(d.row.triggered_at, d.row.received_at):
            continue
        if product_id not in answers:
            try:
                answers[product_id] = await shopify.product(product_id)
            except (_Unverifiable, PayloadError) as exc:
                answers[product_id] = exc
        answer = answers[product_id]
        if isinstance(answer, PayloadError):
            d.product, d.error = None, str(answer)
        elif isinstance(answer, _Unverifiable):
            # No token to ask with: never revive on an unchecked payload.
            if revives:
                d.product = None
        else:
            d.product = answer


async def _write(rt: Runtime, shop_id: UUID, deliveries: list[_Delivery]) -> int:
    async with tenant_scope(rt.pool, shop_id) as conn:
        pending = set(await inbox.lock_unprocessed(conn, [d.row.id for d in deliveries]))
        if not pending:
            return 0
        todo = [d for d in deliveries if d.row.id in pending]
        for d in todo:
            if d.error is not None:
                log.warning(
                    "shop %s: delivery %s (%s) skipped: %s", shop_id, d.row.id, d.row.topic, d.error
                )
        changes = CatalogChanges(
            products=[d.product for d in todo if d.product is not None],
            deletions=[d.deletion for d in todo if d.deletion is not None],
            levels=[d.level for d in todo if d.level is not None],
        )
        writes = changes.products or changes.deletions or changes.levels
        if writes and not await repository.holds_installed(conn, shop_id):
            # Ingress caches shop states for a few seconds, so a delivery can arrive just after
            # the uninstall was applied: it stays in the inbox, unapplied.
            log.info("shop %s: %d deliveries skipped, the app is uninstalled", shop_id, len(todo))
        elif writes:
            applied = await apply.apply_changes(conn, shop_id, changes)
            if applied.products:
                await queue_product_embedding(conn, shop_id, applied.products)
        # After a purge (shop/redact) the rows are gone with the shop: this marks nothing.
        await inbox.mark_all_processed(conn, sorted(pending))
    return len(pending)


class _Shopify:
    """Shopify's current products for one run: the shop and its client are looked up once, at the
    first product the run must ask about (not once per product)."""

    def __init__(self, rt: Runtime, shop_id: UUID, ctx: JobContext | None) -> None:
        self.rt, self.shop_id, self.ctx = rt, shop_id, ctx
        self._client: AdminClient | None = None

    async def _connect(self) -> AdminClient:
        async with global_scope(self.rt.pool) as conn:
            shop = await repository.get(conn, self.shop_id)
        if shop is None:
            raise Fatal(f"shop {self.shop_id} is gone")
        try:
            return await admin_client(self.rt, self.shop_id, shop.domain)
        except ShopUnavailable:
            log.warning("shop %s: no token to fetch products with", self.shop_id)
            raise _Unverifiable from None

    async def product(self, product_id: int) -> ProductRecord | None:
        """The product's current state; None when it no longer exists (a delete will follow)."""
        if self._client is None:
            self._client = await self._connect()
        try:
            result = await self._client.execute(
                PRODUCT_QUERY,
                {"id": f"gid://shopify/Product/{product_id}"},
                estimated_cost=PRODUCT_QUERY_COST,
            )
        except Throttled as exc:
            if self.ctx is None:
                raise
            self.ctx.defer(exc.retry_after, block_group=True)
        except AccessDenied:
            log.warning("shop %s: no token to fetch product %s", self.shop_id, product_id)
            raise _Unverifiable from None
        node = result.data.get("product")
        return product_from_graphql(node) if isinstance(node, dict) else None
