"""The periodic reconciliation: an incremental sync per synced shop, one tick per period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import ReconcileTick, reconcile_shops
from neanelu.runtime import Runtime
from neanelu.shops.tasks import RECONCILE_OVERLAP, schedule_reconciliation
from tests.factories import create_shop
from tests.service.support import RunJob


async def outbox(rt: Runtime) -> list[tuple[str, str, dict[str, Any]]]:
    async with global_scope(rt.pool) as conn:
        cur = await conn.execute("SELECT task, job_id, payload FROM outbox ORDER BY id")
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def test_tick_queues_incremental_syncs_and_the_next_tick(
    runtime: Runtime, run_job: RunJob
) -> None:
    synced = await create_shop(runtime.pool, "synced.myshopify.com")
    await create_shop(runtime.pool, "fresh.myshopify.com")  # never synced: left alone
    last = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    async with tenant_scope(runtime.pool, synced) as conn:
        await conn.execute("UPDATE shops SET last_full_sync_at = %s WHERE id = %s", (last, synced))
    await run_job(runtime, reconcile_shops, ReconcileTick(period=7))
    await run_job(runtime, reconcile_shops, ReconcileTick(period=7))
    rows = await outbox(runtime)
    syncs = [r for r in rows if r[0] == "sync.full"]
    # One job id per shop and period: the queue ignores the repeat when the relay pushes it.
    assert {r[1] for r in syncs} == {f"reconcile-{synced}-7"}
    payload = syncs[0][2]
    assert payload["shop_id"] == str(synced)
    assert payload["reason"] == "reconcile"
    assert datetime.fromisoformat(payload["updated_since"]) == last - RECONCILE_OVERLAP
    ticks = {r[1] for r in rows if r[0] == "shops.reconcile"}
    assert len(ticks) == 1


async def test_schedule_is_one_tick_per_period(runtime: Runtime) -> None:
    now = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    async with global_scope(runtime.pool) as conn:
        first = await schedule_reconciliation(conn, now=now)
        again = await schedule_reconciliation(conn, now=now + timedelta(minutes=10))
    assert first == again
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT options FROM outbox WHERE task = 'shops.reconcile'")
        options = [r[0] for r in await cur.fetchall()]
    assert abs(options[0]["delay_s"] - 30 * 60) < 1
