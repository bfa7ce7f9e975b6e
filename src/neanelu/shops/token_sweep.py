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
from typing import Any

import msgspec

from neanelu.db.pool import Conn, global_scope
from neanelu.queue.context import JobContext
from neanelu.queue.errors import Fatal, Retry
from neanelu.queue.registry import Registry, TaskHandle
from neanelu.queue.settings import SYNC
from neanelu.shopify.errors import TransientError
from neanelu.shops import repository
from neanelu.shops.runtime import current_runtime
from neanelu.shops.tasks import MAINTENANCE_GROUP, ShopRef, next_period
from neanelu.shops.tokens import REFRESH_MARGIN, ShopUnavailable, refresh_if_due
from neanelu.telemetry import current_metrics

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(minutes=5)
# Tokens expiring within this are refreshed now: more than a sweep interval plus the on-use
# margin, so a token is never left for a job to refresh in its path.
SWEEP_LEAD = timedelta(minutes=15)
MAX_JITTER_S = 60.0
REFRESH_ATTEMPTS = 3


class SweepTick(msgspec.Struct, frozen=True, kw_only=True):
    period: int  # which SWEEP_INTERVAL since the epoch this tick is for


class DueToken(ShopRef, frozen=True, kw_only=True):
    """A shop's token as the sweep saw it: the job refreshes that token, not a newer one."""

    expires_at: str  # ISO 8601, exactly as stored

    @property
    def seen_expiry(self) -> datetime:
        try:
            return datetime.fromisoformat(self.expires_at)
        except ValueError:
            raise Fatal(f"payload expires_at {self.expires_at!r} is not a time") from None


async def schedule_token_sweep(conn: Conn, *, now: datetime | None = None) -> str:
    """Queue the next sweep tick (idempotent: one job id per period)."""
    period, delay_s = next_period(SWEEP_INTERVAL, now)
    return await token_sweep.enqueue_in_tx(
        conn,
        SweepTick(period=period),
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


async def _sweep(ctx: JobContext, tick: SweepTick) -> None:
    rt = current_runtime()
    async with global_scope(rt.pool) as conn:
        queued = await sweep_tokens(conn, tick.period)
        await schedule_token_sweep(conn)
    log.info("token sweep %d: %d shop(s) to refresh", tick.period, queued)


async def _refresh(ctx: JobContext, payload: DueToken) -> None:
    rt = current_runtime()
    shop_id = payload.id
    try:
        await refresh_if_due(rt, shop_id, seen_expiry=payload.seen_expiry)
    except ShopUnavailable as exc:
        # Already recorded (needs_reauth) and counted; nothing a retry could change.
        log.error("token sweep: %s; not retried until the merchant opens the app again", exc)
    except TransientError as exc:
        log.warning("token sweep: shop %s: refresh failed, retrying: %s", shop_id, exc)
        raise Retry(reason=str(exc)) from None


token_sweep: TaskHandle[SweepTick] = TaskHandle(
    name="shops.token_sweep", queue=SYNC, payload_type=SweepTick, handler=_sweep
)
refresh_token: TaskHandle[DueToken] = TaskHandle(
    name="shops.refresh_token",
    queue=SYNC,
    payload_type=DueToken,
    handler=_refresh,
    max_attempts=REFRESH_ATTEMPTS,
)
HANDLES: tuple[TaskHandle[Any], ...] = (token_sweep, refresh_token)


def register(registry: Registry) -> None:
    for handle in HANDLES:
        registry.add(handle)
