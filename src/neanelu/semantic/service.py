"""An embedding run over a shop (or some of its products): page through the catalog, skip what is
unchanged, embed what changed, remove what was deleted. Each page commits on its own, so a run that
dies half-way keeps what it did and the next run skips it by hash."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_all, fetch_scalar
from neanelu.search import store
from neanelu.search.hot import HotIndex
from neanelu.search.provider import EmbeddingProvider
from neanelu.semantic.documents import PRODUCT_COLUMNS, ProductSource, ProductText, product_text
from neanelu.telemetry import current_metrics, span

log = logging.getLogger(__name__)

PAGE = 256
SOURCES = ("full_sync", "webhook", "sweep", "manual")


@dataclass(slots=True)
class RunFigures:
    run_id: UUID | None = None
    queued: int = 0
    embedded: int = 0
    skipped: int = 0
    removed: int = 0
    tokens: int = 0


async def embed_products(
    pool: AsyncConnectionPool[Conn],
    provider: EmbeddingProvider,
    shop_id: UUID,
    *,
    source: str,
    product_ids: Sequence[int] | None = None,
    metafield_keys: Sequence[str] = (),
    page: int = PAGE,
    hot: HotIndex | None = None,
) -> RunFigures:
    """All of the shop's products (`product_ids` None) or the given ones. With `hot`, a shop
    loaded in the Redis hot cache gets its new vectors there too, and loses removed ones."""
    if source not in SOURCES:
        raise ValueError(f"embedding run source must be one of {', '.join(SOURCES)}")
    figures = RunFigures()
    async with tenant_scope(pool, shop_id) as conn:
        run_id = await fetch_scalar(
            conn,
            UUID,
            "INSERT INTO embedding_runs (shop_id, source, provider, model) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (shop_id, source, provider.name, provider.model),
        )
        assert run_id is not None
        figures.run_id = run_id
    try:
        with span("search.embed_run", {"neanelu.shop_id": str(shop_id), "neanelu.source": source}):

            async def apply(rows: Sequence[ProductSource]) -> None:
                await _apply_page(pool, provider, shop_id, rows, metafield_keys, figures, hot)

            # Read after the walk: the pages add their own removals to the figures as they go.
            missing = await walk_pages(pool, shop_id, product_ids, page, apply, hot)
            figures.removed += missing
    except BaseException as exc:
        await _finish(pool, shop_id, figures, "failed", f"{type(exc).__name__}: {exc}"[:500])
        raise
    await _finish(pool, shop_id, figures, "completed", None)
    log.info(
        "shop %s: embedding run (%s) queued %d, embedded %d, skipped %d, removed %d, %d tokens",
        shop_id,
        source,
        figures.queued,
        figures.embedded,
        figures.skipped,
        figures.removed,
        figures.tokens,
    )
    return figures


async def _page(
    pool: AsyncConnectionPool[Conn],
    shop_id: UUID,
    after: int,
    ids: Sequence[int] | None,
    limit: int,
) -> list[ProductSource]:
    async with tenant_scope(pool, shop_id) as conn:
        if ids is None:
            query = sql.SQL(
                "SELECT {} FROM products WHERE shopify_id > %s ORDER BY shopify_id LIMIT %s"
            ).format(PRODUCT_COLUMNS)
            return await fetch_all(conn, ProductSource, query, (after, limit))
        query = sql.SQL(
            "SELECT {} FROM products WHERE shopify_id = ANY(%s) ORDER BY shopify_id"
        ).format(PRODUCT_COLUMNS)
        return await fetch_all(conn, ProductSource, query, (list(ids),))


async def walk_pages(
    pool: AsyncConnectionPool[Conn],
    shop_id: UUID,
    product_ids: Sequence[int] | None,
    page: int,
    apply: Callable[[Sequence[ProductSource]], Awaitable[None]],
    hot: HotIndex | None,
) -> int:
    """Every product of the shop (`product_ids` None), or the given ones, page by page through
    `apply`. Given ids the catalog no longer has leave both indexes; returns how many."""
    removed = 0
    if product_ids is None:
        after = 0
        while True:
            rows = await _page(pool, shop_id, after, None, page)
            if not rows:
                return removed
            await apply(rows)
            after = int(rows[-1].shopify_id)
    wanted = sorted(set(product_ids))
    for start in range(0, len(wanted), page):
        chunk = wanted[start : start + page]
        rows = await _page(pool, shop_id, 0, chunk, page)
        await apply(rows)
        missing = set(chunk) - {int(r.shopify_id) for r in rows}
        if missing:
            async with tenant_scope(pool, shop_id) as conn:
                await store.forget(conn, shop_id, sorted(missing))
            removed += len(missing)
            if hot is not None:
                await hot.remove(shop_id, sorted(missing))
    return removed


@dataclass(frozen=True, slots=True)
class PagePlan:
    """What one page needs: texts to embed (changed, or new to this model), documents to index,
    deleted products to remove, in the shop's text configuration."""

    config: str
    to_embed: list[ProductText]
    to_index: list[ProductText]
    gone: list[int]


async def plan_page(
    conn: Conn,
    shop_id: UUID,
    model: str,
    rows: Sequence[ProductSource],
    metafield_keys: Sequence[str],
    max_tokens: int,
    figures: RunFigures,
    in_flight: Mapping[int, bytes] | None = None,
) -> PagePlan:
    """`in_flight`: products whose text is already on its way to the provider (a batch), by
    hash; they are neither embedded again nor counted as skipped."""
    texts = [product_text(r, metafield_keys, max_tokens) for r in rows]
    figures.queued += len(texts)
    live = [t for t in texts if not t.deleted]
    ids = [t.shopify_id for t in live]
    config = await store.text_config(conn, shop_id)
    vectors_known = await store.vector_hashes(conn, shop_id, model, ids)
    docs_known = await store.document_hashes(conn, shop_id, ids)
    changed = [t for t in live if vectors_known.get(t.shopify_id) != t.text.content_hash]
    figures.skipped += len(live) - len(changed)
    pending = in_flight or {}
    return PagePlan(
        config=config,
        to_embed=[t for t in changed if pending.get(t.shopify_id) != t.text.content_hash],
        to_index=[
            t for t in live if docs_known.get(t.shopify_id) != (t.text.content_hash, config, False)
        ],
        gone=[t.shopify_id for t in texts if t.deleted],
    )


async def store_documents(conn: Conn, shop_id: UUID, plan: PagePlan, figures: RunFigures) -> None:
    """The page's full-text side: documents indexed, deleted products removed."""
    await store.upsert_documents(
        conn, shop_id, plan.config, [_document_row(t) for t in plan.to_index]
    )
    figures.removed += await store.remove(conn, shop_id, plan.gone)


async def _apply_page(
    pool: AsyncConnectionPool[Conn],
    provider: EmbeddingProvider,
    shop_id: UUID,
    rows: Sequence[ProductSource],
    metafield_keys: Sequence[str],
    figures: RunFigures,
    hot: HotIndex | None,
) -> None:
    async with tenant_scope(pool, shop_id) as conn:
        plan = await plan_page(
            conn, shop_id, provider.model, rows, metafield_keys, provider.max_tokens, figures
        )
    to_embed = plan.to_embed
    embedded = None
    if to_embed:
        started = time.perf_counter()
        # The model runs on its own threads (onnxruntime releases the GIL): the worker's loop
        # keeps renewing leases meanwhile.
        embedded = await asyncio.to_thread(provider.embed, [t.text.embedding for t in to_embed])
        current_metrics().search_embed_seconds.labels(provider.name).observe(
            time.perf_counter() - started
        )
        current_metrics().search_embedded.labels(provider.name).inc(len(to_embed))
    async with tenant_scope(pool, shop_id) as conn:
        if embedded is not None:
            rows_out = [
                store.VectorRow(t.shopify_id, t.text.content_hash, n)
                for t, n in zip(to_embed, embedded.tokens, strict=True)
            ]
            await store.upsert_vectors(conn, shop_id, provider.model, rows_out, embedded.vectors)
            figures.tokens += sum(embedded.tokens)
        await store_documents(conn, shop_id, plan, figures)
    figures.embedded += len(to_embed)
    # After the commit: PostgreSQL is the truth, Redis follows (and a failure there sends the
    # shop back to PostgreSQL rather than serving stale vectors).
    if hot is not None and await hot.is_hot(shop_id):
        if embedded is not None:
            await hot.put(shop_id, [t.shopify_id for t in to_embed], embedded.vectors)
        await hot.remove(shop_id, plan.gone)


def _document_row(t: ProductText) -> store.DocumentRow:
    return store.DocumentRow(
        t.shopify_id, t.text.content_hash, t.text.primary, t.text.secondary, t.text.rest
    )


async def _finish(
    pool: AsyncConnectionPool[Conn],
    shop_id: UUID,
    figures: RunFigures,
    status: str,
    error: str | None,
) -> None:
    async with tenant_scope(pool, shop_id) as conn:
        await conn.execute(
            "UPDATE embedding_runs SET status = %s, queued = %s, embedded = %s, skipped = %s, "
            "removed = %s, tokens = %s, error = %s, finished_at = now() WHERE id = %s",
            (
                status,
                figures.queued,
                figures.embedded,
                figures.skipped,
                figures.removed,
                figures.tokens,
                error,
                figures.run_id,
            ),
        )
