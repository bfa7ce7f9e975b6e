"""The token sweep against the emulator's expiring tokens: a token close to expiry is refreshed
with nobody using it, once however many sweeps run, and a refusal is alerted and not retried."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.handles import DueToken, TokenSweepTick, refresh_token
from neanelu.handles import token_sweep as token_sweep_task
from neanelu.queue.errors import Retry
from neanelu.queue.outbox import run_outbox_relay
from neanelu.queue.registry import Registry
from neanelu.queue.settings import SYNC
from neanelu.queue.worker import Worker
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import repository, service, token_sweep
from neanelu.shops import tasks as shop_tasks
from neanelu.shops.token_sweep import sweep_tokens
from neanelu.telemetry import current_metrics
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, free_port, start_in_thread
from shopify_emulator.state import ShopState
from tests.databases import TestDatabase
from tests.service.support import (
    CLIENT_ID,
    SECRET,
    RunJob,
    build_runtime,
    close_runtime,
    make_settings,
)

SHOP = "sweep"
DOMAIN = f"{SHOP}.myshopify.com"
# Just over the on-use margin (5 min): due for the sweep, refreshed within a couple of seconds
# of jitter, and not yet due for a job that would use it.
TOKEN_TTL_S = 303.0


@dataclass
class Sweeper:
    emulator: RunningEmulator
    runtime: Runtime
    make_runtime: Callable[[], Awaitable[Runtime]]

    @property
    def shop(self) -> ShopState:
        shop: ShopState = self.emulator.app.state.emulator.shops[DOMAIN]
        return shop

    def refreshes(self) -> int:
        """Refresh grants the emulator answered (each one issues a refresh token with a parent)."""
        return sum(1 for t in list(self.shop.refresh_tokens.values()) if t.parent is not None)

    async def install(self) -> UUID:
        async with httpx.AsyncClient() as http:
            minted = await http.post(
                f"{self.emulator.base_url}/_emulator/shops/{SHOP}/tokens", json={"expiring": True}
            )
        body = minted.json()
        grant = TokenGrant(
            access_token=SecretStr(body["access_token"]),
            scopes=tuple(body["scope"].split(",")),
            expires_at=body["expires_at"],
            refresh_token=SecretStr(body["refresh_token"]),
            refresh_token_expires_at=time.time() + 86400,
        )
        async with global_scope(self.runtime.pool) as conn:
            shop_id, _ = await service.store_install(conn, self.runtime.vault, DOMAIN, grant)
        return shop_id

    async def row(self, shop_id: UUID) -> repository.ShopRow:
        return await stored_row(self.runtime, shop_id)

    async def finished(self, job_id: str) -> None:
        """Wait until the refresh job has run to its end (never delayed past the test)."""
        queue = self.runtime.queues.queue(SYNC)

        async def ended() -> bool:
            job = await queue.job_info(job_id)
            return job is not None and job.state in ("completed", "failed", "dead")

        await eventually(ended, f"job {job_id}")


def refresh_count(outcome: str, trigger: str) -> float:
    value = current_metrics().registry.get_sample_value(
        "neanelu_token_refreshes_total", {"outcome": outcome, "trigger": trigger}
    )
    return value or 0.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sweeper(
    database: TestDatabase, redis_url: str, key_prefix: str
) -> AsyncIterator[Sweeper]:
    emulator = start_in_thread(
        EmulatorConfig(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            shops=[ShopConfig(name=SHOP, products=1)],
            access_token_ttl_s=TOKEN_TTL_S,
        )
    )
    settings = make_settings(SHOPIFY_BASE_URL=emulator.base_url)
    opened: list[Runtime] = []

    async def make_runtime() -> Runtime:
        rt = await build_runtime(
            settings, database, redis_url, key_prefix, transport=httpx.AsyncHTTPTransport()
        )
        opened.append(rt)
        return rt

    runtime = await make_runtime()
    registry = Registry()
    shop_tasks.register(registry)
    token_sweep.register(registry)
    stop = asyncio.Event()
    worker = Worker(
        runtime.queues,
        registry,
        [SYNC],
        concurrency=4,
        idle_max_s=0.05,
        resources={Runtime: runtime},
    )
    background = [
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(run_outbox_relay(runtime.pool, runtime.queues, stop, interval_s=0.05)),
    ]
    try:
        yield Sweeper(emulator, runtime, make_runtime)
    finally:
        stop.set()
        await asyncio.gather(*background)
        for rt in opened:
            await close_runtime(rt)
        emulator.stop()


async def sweep(run_job: RunJob, rt: Runtime, period: int) -> None:
    """One tick as the worker runs it, in `rt`'s process."""
    await run_job(rt, token_sweep_task, TokenSweepTick(period=period))


async def test_expiring_token_is_refreshed_by_the_sweep_without_any_use(
    sweeper: Sweeper, run_job: RunJob
) -> None:
    shop_id = await sweeper.install()
    before = await sweeper.row(shop_id)
    ok_sweep, ok_use = refresh_count("ok", "sweep"), refresh_count("ok", "use")
    await sweep(run_job, sweeper.runtime, 1)

    async def refreshed() -> bool:
        row = await sweeper.row(shop_id)
        return row.access_token_expires_at != before.access_token_expires_at

    await eventually(refreshed, "the sweep's refresh")
    await sweeper.finished(f"token-refresh-{shop_id}-1")
    after = await sweeper.row(shop_id)
    assert sweeper.refreshes() == 1
    assert after.status == "installed"
    assert after.access_token_expires_at is not None
    assert before.access_token_expires_at
    assert after.access_token_expires_at > before.access_token_expires_at
    assert after.access_token is not None
    assert before.access_token is not None
    old = sweeper.runtime.vault.open(before.access_token, shop_id=shop_id, kind="access")
    new = sweeper.runtime.vault.open(after.access_token, shop_id=shop_id, kind="access")
    assert new.get_secret_value() != old.get_secret_value()
    # The new token is the one the emulator now accepts; the refresh came from the sweep.
    assert sweeper.shop.tokens[new.get_secret_value()].valid(sweeper.shop.clock.time())
    assert refresh_count("ok", "sweep") == ok_sweep + 1
    assert refresh_count("ok", "use") == ok_use
    # The tick queued the next one (a later period, delayed until it begins).
    period, _ = shop_tasks.next_period(token_sweep.SWEEP_INTERVAL)
    tick = await sweeper.runtime.queues.queue(SYNC).job_info(f"token-sweep-{period}")
    assert tick is not None
    assert tick.state == "delayed"


async def test_two_concurrent_sweeps_refresh_once(sweeper: Sweeper, run_job: RunJob) -> None:
    shop_id = await sweeper.install()
    before = await sweeper.row(shop_id)
    other = await sweeper.make_runtime()  # a second worker process, its own pools
    ok_before = refresh_count("ok", "sweep")
    await asyncio.gather(sweep(run_job, sweeper.runtime, 2), sweep(run_job, other, 2))
    # Even two refresh jobs for the token running at once in two processes (jobs of two
    # periods) meet at the shop's lock: one refreshes, the other finds it done.
    assert before.access_token_expires_at is not None
    due = DueToken(shop_id=str(shop_id), expires_at=before.access_token_expires_at.isoformat())
    second = asyncio.create_task(run_job(other, refresh_token, due))
    await asyncio.gather(run_job(sweeper.runtime, refresh_token, due), second)

    async def refreshed() -> bool:
        row = await sweeper.row(shop_id)
        return row.access_token_expires_at != before.access_token_expires_at

    await eventually(refreshed, "the refresh")
    await sweeper.finished(f"token-refresh-{shop_id}-2")
    assert sweeper.refreshes() == 1
    assert refresh_count("ok", "sweep") == ok_before + 1
    # Every process schedules the next tick at start-up: one tick per period is queued.
    async with global_scope(sweeper.runtime.pool) as conn:
        first = await token_sweep.schedule_token_sweep(conn)
    async with global_scope(other.pool) as conn:
        assert await token_sweep.schedule_token_sweep(conn) == first


async def test_refused_refresh_is_alerted_and_not_retried(
    sweeper: Sweeper, run_job: RunJob, caplog: pytest.LogCaptureFixture
) -> None:
    shop_id = await sweeper.install()
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{sweeper.emulator.base_url}/_emulator/shops/{SHOP}/tokens/revoke", json={}
        )
    assert revoked.status_code == 200
    failed_before = refresh_count("failed", "sweep")
    caplog.set_level(logging.INFO)
    await sweep(run_job, sweeper.runtime, 3)

    async def marked() -> bool:
        return (await sweeper.row(shop_id)).status == repository.NEEDS_REAUTH

    await eventually(marked, "the refusal recorded")
    await sweeper.finished(f"token-refresh-{shop_id}-3")
    assert sweeper.refreshes() == 0
    assert refresh_count("failed", "sweep") == failed_before + 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(
        DOMAIN in r.getMessage() and "refused" in r.getMessage() and "OAuthError" in r.getMessage()
        for r in warnings
    ), [r.getMessage() for r in warnings]
    job = await sweeper.runtime.queues.queue(SYNC).job_info(f"token-refresh-{shop_id}-3")
    # Completed on its one run: not put back for a retry.
    assert job is not None
    assert job.state == "completed"
    # The next sweep leaves the shop alone: no refresh loop against a refused token.
    async with global_scope(sweeper.runtime.pool) as conn:
        assert await sweep_tokens(conn, 4, now=datetime.now(UTC)) == 0
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE task = 'shops.refresh_token'")
        row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0
    assert refresh_count("failed", "sweep") == failed_before + 1
    # What the alert on the dashboard reads: shops waiting for their merchant.
    gauge = current_metrics().registry.get_sample_value("neanelu_shops_needing_reauth")
    assert gauge == 1
    assert "shprt_" not in caplog.text
    assert "shpat_" not in caplog.text


async def test_unreachable_shopify_is_alerted_and_retried(
    database: TestDatabase,
    redis_url: str,
    key_prefix: str,
    run_job: RunJob,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: the token endpoint cannot be reached at all.
    settings = make_settings(SHOPIFY_BASE_URL=f"http://127.0.0.1:{free_port()}")
    rt = await build_runtime(
        settings, database, redis_url, key_prefix, transport=httpx.AsyncHTTPTransport()
    )
    try:
        expires = datetime.now(UTC) + timedelta(minutes=7)
        grant = TokenGrant(
            access_token=SecretStr("shpat_unreachable"),
            scopes=("read_products",),
            expires_at=expires.timestamp(),
            refresh_token=SecretStr("shprt_unreachable"),
            refresh_token_expires_at=time.time() + 86400,
        )
        async with global_scope(rt.pool) as conn:
            shop_id, _ = await service.store_install(conn, rt.vault, DOMAIN, grant)
            row = await repository.get(conn, shop_id)
        assert row is not None
        assert row.access_token_expires_at is not None
        due = DueToken(shop_id=str(shop_id), expires_at=row.access_token_expires_at.isoformat())
        failed = refresh_count("failed", "sweep")
        caplog.set_level(logging.INFO)
        with pytest.raises(Retry):
            await run_job(rt, refresh_token, due)
        assert refresh_count("failed", "sweep") == failed + 1
        assert any(
            r.levelno == logging.WARNING
            and str(shop_id) in r.getMessage()
            and "retrying" in r.getMessage()
            for r in caplog.records
        )
        after = await stored_row(rt, shop_id)
        # Nothing changed: still installed with its token, for the retry (or the next sweep).
        assert after.status == "installed"
        assert after.access_token_expires_at == row.access_token_expires_at
    finally:
        await close_runtime(rt)


async def stored_row(rt: Runtime, shop_id: UUID) -> repository.ShopRow:
    # In the shop's own scope: only there are its sealed tokens readable.
    async with tenant_scope(rt.pool, shop_id) as conn:
        found = await repository.get(conn, shop_id)
    assert found is not None
    return found
