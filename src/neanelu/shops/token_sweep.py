"""The token sweep (plan 3.2): expiring offline tokens are refreshed ahead of use, not only when
a job happens to need one.

One tick per `SWEEP_INTERVAL` runs in the whole cluster (its job id is the period, and the queue
keeps one job per id, however many processes schedule it). The tick lists the shops whose token
expires within `SWEEP_LEAD` and queues one refresh job per shop, in the shop's own group, spread
over up to `MAX_JITTER_S` so a batch of installs does not refresh in one burst. The refresh itself
takes the shop's refresh lock and re-reads the row under it (shops/tokens.py): two sweeps, or a
sweep and a job using the token, refresh it once. A refusal marks the shop `needs_reauth`, which
the next sweep skips (no refresh loop); an unreachable Shopify is retried.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

from neanelu.db.pool import Conn, global_scope
from neanelu.handles import (
    MAINTENANCE_GROUP,
    DueToken,
    TokenSweepTick,
    refresh_token,
    token_sweep,
)
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Retry
from neanelu.queue.registry import Registry
from neanelu.runtime import Runtime
from neanelu.shopify.errors import TransientError
from neanelu.shops import repository
from neanelu.shops.tasks import next_period
from neanelu.shops.tokens import REFRESH_MARGIN, ShopUnavailable, refresh_if_due
from neanelu.telemetry import current_metrics

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(minutes=5)
# Tokens expiring within this are refreshed now: more than a sweep interval plus the on-use
# margin, so a token is never left for a job to refresh in its path.
SWEEP_LEAD = timedelta(minutes=15)
MAX_JITTER_S = 60.0


async def schedule_token_sweep(conn: Conn, *, now: datetime | None = None) -> str:
    """Queue the next sweep tick (idempotent: one job id per period)."""
    period, delay_s = next_period(SWEEP_INTERVAL, now)
    return await token_sweep.enqueue_in_tx(
        conn,
        TokenSweepTick(period=period),
        group=MAINTENANCE_GROUP,
        job_id=f"token-sweep-{period}",
        delay_s=delay_s,
    )


def jitter_s(expires_at: datetime, now: datetime) -> float:
    """A random delay that spreads refreshes, never past half the time left before the on-use
    margin (a token close to it is refreshed at once)."""
    slack = (expires_at - REFRESH_MARGIN - now).total_seconds()
    return random.uniform(0.0, max(0.0, min(MAX_JITTER_S, slack / 2)))


async def sweep_tokens(conn: Conn, period: int, *, now: datetime | None = None) -> int:
    """Queue a refresh for every shop whose token expires within `SWEEP_LEAD`; returns how many."""
    current = now or datetime.now(UTC)
    due = await repository.tokens_expiring_before(conn, current + SWEEP_LEAD)
    for shop_id, expires_at in due:
        await refresh_token.enqueue_in_tx(
            conn,
            DueToken(shop_id=str(shop_id), expires_at=expires_at.isoformat()),
            group=shop_id,
            # One refresh job per shop and period across every sweep that runs.
            job_id=f"token-refresh-{shop_id}-{period}",
            delay_s=jitter_s(expires_at, current),
        )
    current_metrics().shops_needing_reauth.set(
        await repository.count_by_status(conn, repository.NEEDS_REAUTH)
    )
    return len(due)


async def _sweep(ctx: JobContext, tick: TokenSweepTick) -> None:
    rt = ctx.resource(Runtime)
    async with global_scope(rt.pool) as conn:
        queued = await sweep_tokens(conn, tick.period)
        await schedule_token_sweep(conn)
    log.info("token sweep %d: %d shop(s) to refresh", tick.period, queued)


async def _refresh(ctx: JobContext, payload: DueToken) -> None:
    rt = ctx.resource(Runtime)
    shop_id = payload.id
    try:
        await refresh_if_due(rt, shop_id, seen_expiry=payload.seen_expiry)
    except ShopUnavailable as exc:
        # Already recorded (needs_reauth) and counted; nothing a retry could change.
        log.error("token sweep: %s; not retried until the merchant opens the app again", exc)
    except TransientError as exc:
        log.warning("token sweep: shop %s: refresh failed, retrying: %s", shop_id, exc)
        raise Retry(reason=str(exc)) from None


def register(registry: Registry) -> None:
    registry.bind(token_sweep, _sweep)
    registry.bind(refresh_token, _refresh)
