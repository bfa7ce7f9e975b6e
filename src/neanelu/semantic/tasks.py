"""Handlers of the embedding jobs on the `ai-batch` queue (their handles: `neanelu.handles`), one
group per shop, from three sources: the end of a full sync, product webhooks, and a periodic sweep
that catches anything missed. Every job compares content hashes first, so a repeated or
overlapping job embeds nothing twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID

from neanelu.db.pool import Conn, global_scope
from neanelu.handles import (
    EmbedJob,
    SearchSweepTick,
    ShopRef,
    embed_job,
    queue_shop_embedding,
    search_sweep,
    warm_shop_job,
)
from neanelu.queue import DeadJob, Fatal, JobContext, Registry, Resources, Retry
from neanelu.runtime import Runtime
from neanelu.search.hot import HotIndex
from neanelu.search.openai_batch import BatchProvider
from neanelu.search.provider import EmbeddingError, EmbeddingUnavailable
from neanelu.search.providers import provider_for
from neanelu.semantic.batches import BatchOptions, fail_abandoned_run, run_batch_job
from neanelu.semantic.hotcache import hot_index_for, warm_shop
from neanelu.semantic.pending import claim_pending
from neanelu.semantic.service import SOURCES, embed_products
from neanelu.shops import repository as shops

log = logging.getLogger(__name__)

SWEEP_GROUP = "search-sweep"


async def _embed(ctx: JobContext, job: EmbedJob) -> None:
    rt = ctx.resource(Runtime)
    try:
        shop_id = UUID(job.shop_id)
    except ValueError:
        raise Fatal(f"embedding job shop_id {job.shop_id!r} is not a UUID") from None
    if job.source not in SOURCES:
        raise Fatal(f"embedding job source {job.source!r} is not one of {', '.join(SOURCES)}")
    if job.pending:
        claimed = await claim_pending(rt.pool, shop_id)
        log.debug("shop %s: %d marked product(s) queued for embedding", shop_id, claimed)
        return
    try:
        # The first job of a process loads and checks the model (seconds): off the event loop.
        provider = await asyncio.to_thread(provider_for, rt.settings)
        if isinstance(provider, BatchProvider):
            progress = await run_batch_job(
                rt.pool,
                provider,
                shop_id,
                ctx.job_id,
                source=job.source,
                product_ids=job.product_ids or None,
                metafield_keys=rt.settings.search_metafields,
                options=BatchOptions(
                    request_inputs=rt.settings.openai_batch_request_inputs,
                    max_attempts=rt.settings.openai_batch_max_attempts,
                ),
                hot=hot_index_for(rt.redis, provider, rt.settings.search_hot_idle_s),
            )
            if not progress.done:
                # Off the worker until the next poll: the slot serves other jobs meanwhile.
                ctx.defer(rt.settings.openai_batch_poll_s)
            return
        await embed_products(
            rt.pool,
            provider,
            shop_id,
            source=job.source,
            product_ids=job.product_ids or None,
            metafield_keys=rt.settings.search_metafields,
            hot=hot_index_for(rt.redis, provider, rt.settings.search_hot_idle_s),
        )
    except EmbeddingUnavailable as exc:
        raise Retry(reason=str(exc)) from None
    except EmbeddingError as exc:
        raise Fatal(str(exc)) from None


async def _sweep(ctx: JobContext, tick: SearchSweepTick) -> None:
    """Every installed shop that finished a sync gets a sweep run; then the next tick is queued."""
    rt = ctx.resource(Runtime)
    queued = 0
    async with global_scope(rt.pool) as conn:
        for shop_id, last in await shops.last_synced(conn):
            if last is None:
                continue  # the install's full sync queues the first run itself
            await queue_shop_embedding(
                conn, shop_id, source="sweep", job_id=f"embed-sweep-{shop_id}-{tick.period}"
            )
            queued += 1
        await schedule_sweep(conn, rt.settings.search_sweep_interval_s)
    log.info("search sweep tick %d: %d shop(s) queued", tick.period, queued)
    if rt.settings.search_hot_idle_s > 0:
        hot = await _hot_index(rt)
        dropped = await hot.drop_idle() if hot is not None else []
        if dropped:
            log.info("search hot cache: %d shop(s) not searched lately dropped", len(dropped))


async def _hot_index(rt: Runtime) -> HotIndex | None:
    try:
        # The first job of a process loads and checks the model (seconds): off the event loop.
        provider = await asyncio.to_thread(provider_for, rt.settings)
    except EmbeddingError as exc:
        log.warning("search hot cache: no embedding provider: %s", exc)
        return None
    return hot_index_for(rt.redis, provider, rt.settings.search_hot_idle_s)


async def _warm(ctx: JobContext, ref: ShopRef) -> None:
    """A shop searched while cold, loaded into the hot cache (a shop gone meanwhile loads nothing:
    its tenant scope reads no vectors)."""
    rt = ctx.resource(Runtime)
    shop_id = ref.id
    hot = await _hot_index(rt)
    if hot is None:
        raise Retry(reason="no embedding provider")
    loaded = await warm_shop(rt.pool, hot, shop_id, hot.model)
    if loaded is None:
        log.info(
            "shop %s: not loaded into the hot cache (Redis has no query engine or is down)", shop_id
        )
    else:
        log.info("shop %s: %d vector(s) loaded into the hot cache", shop_id, loaded)


async def _embed_gave_up(resources: Resources, job: EmbedJob, dead: DeadJob) -> None:
    try:
        shop_id = UUID(job.shop_id)
    except ValueError:
        return  # a payload no attempt could read opened no run
    how = "dead-lettered" if dead.state == "dead" else "failed for good"
    reason = f"embedding job {dead.id} {how} after {dead.attempts} attempt(s): {dead.error}"
    await fail_abandoned_run(resources.resource(Runtime).pool, shop_id, dead.id, reason)


def register(registry: Registry) -> None:
    registry.bind(embed_job, _embed, on_dead=_embed_gave_up)
    registry.bind(search_sweep, _sweep)
    registry.bind(warm_shop_job, _warm)


async def schedule_sweep(conn: Conn, interval_s: int, *, now: datetime | None = None) -> str:
    """Queue the next sweep tick (one job id per period: every process may call this)."""
    current = now or datetime.now(UTC)
    period = int(current.timestamp() // interval_s) + 1
    return await search_sweep.enqueue_in_tx(
        conn,
        SearchSweepTick(period=period),
        group=SWEEP_GROUP,
        job_id=f"search-sweep-tick-{period}",
        delay_s=max(0.0, period * interval_s - current.timestamp()),
    )
