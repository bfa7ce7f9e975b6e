"""What a run says about its attempts when they fail in ways the sync did not foresee: a job the
queue dead-letters leaves its run failed with the reason, each attempt keeps its own error, a
killed worker shows as a lease that ran out, and the next sync starts afresh."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from uuid import UUID

import msgspec
import psycopg
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from neanelu.cli.main import app
from neanelu.db.pool import tenant_scope
from neanelu.handles import FullSyncJob, full_sync
from neanelu.queue import BULK, QueueClient, QueueSettings, Registry
from neanelu.queue.worker import Worker
from neanelu.sync import repository as runs
from neanelu.sync import tasks as sync_tasks
from neanelu.sync.service import SyncDeps, request_full_sync, run_sync
from tests.databases import TestDatabase
from tests.integration.sync.helpers import SyncHarness

ROOT = Path(__file__).resolve().parents[3]

# Every insert into products fails, as a bug or a broken server would make it: an error the sync
# has no handling for, raised deep in the merge on every attempt.
REFUSE_PRODUCTS = """
CREATE FUNCTION test_refuse_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected fault: products refused'; END $$;
CREATE TRIGGER test_refuse_products BEFORE INSERT ON products
  FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_products();
-- Merges may run with session_replication_role = replica, which skips ordinary triggers.
ALTER TABLE products ENABLE ALWAYS TRIGGER test_refuse_products;
"""


@pytest.fixture
async def bulk_queue(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[QueueClient]:
    yield QueueClient(
        redis_client,
        {BULK: QueueSettings(name=BULK, lease_ms=5000, backoff_base_s=0.05)},
        prefix=key_prefix,
    )


async def _wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 120.0) -> None:
    async def poll() -> None:
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def _runs(harness: SyncHarness) -> list[runs.SyncRun]:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        return list(reversed(await runs.latest_runs(conn)))


async def _attempts(harness: SyncHarness, run_id: UUID) -> list[runs.RunAttempt]:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        return await runs.attempts_of(conn, run_id)


async def test_a_dead_lettered_sync_job_fails_its_run_and_the_next_sync_starts_afresh(
    harness: SyncHarness, database: TestDatabase, bulk_queue: QueueClient
) -> None:
    with psycopg.connect(database.superuser_url, autocommit=True) as admin:
        admin.execute(REFUSE_PRODUCTS)
    registry = Registry()
    sync_tasks.register(registry)
    spec = full_sync.spec(FullSyncJob(shop_id=str(harness.shop_id)), group=harness.shop_id)
    await bulk_queue.queue(BULK).enqueue(msgspec.structs.replace(spec, max_attempts=2))
    stop = asyncio.Event()
    worker = Worker(bulk_queue, registry, [BULK], concurrency=1, resources={SyncDeps: harness.deps})
    task = asyncio.create_task(worker.run(stop))
    try:

        async def run_failed() -> bool:
            found = await _runs(harness)
            return bool(found) and found[0].status == "failed"

        await _wait_for(run_failed)
    finally:
        stop.set()
        await task
    assert await bulk_queue.queue(BULK).terminal_ids("dead") == [spec.job_id]

    (failed,) = await _runs(harness)
    assert failed.status == "failed"
    assert failed.finished_at is not None
    assert failed.error is not None
    assert f"sync job {spec.job_id} dead-lettered after 2 attempts" in failed.error
    assert "injected fault: products refused" in failed.error
    # Each attempt kept its own error, and says who ran it.
    attempts = await _attempts(harness, failed.id)
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "error"), (2, "error")]
    for a in attempts:
        assert a.error is not None
        assert "RaiseException: injected fault" in a.error
        assert a.holder == worker.worker_id
        assert a.job_id == spec.job_id
    assert failed.attempts == 2

    with psycopg.connect(database.superuser_url, autocommit=True) as admin:
        admin.execute("DROP TRIGGER test_refuse_products ON products")
    summary = await harness.full_sync()
    assert summary.status == "completed"
    assert summary.run_id != failed.id
    old, new = await _runs(harness)
    assert old.id == failed.id
    assert old.status == "failed"
    assert new.status == "completed"
    assert set(new.bulk_operations) == set(failed.bulk_operations)
    # New bulk operations, none of the failed run's.
    assert set(new.bulk_operations.values()).isdisjoint(failed.bulk_operations.values())
    expected, stored = await harness.expected_counts(), await harness.stored()
    assert all(stored[k] == expected[k] for k in stored)


async def test_each_attempt_keeps_its_error_when_a_retry_then_succeeds(
    harness: SyncHarness,
) -> None:
    await harness.control(
        "POST", "/faults", json={"kind": "bulk_failed", "count": 1, "params": {"after_lines": 50}}
    )
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run = await request_full_sync(conn, harness.shop_id)
    with pytest.raises(Exception, match="ended FAILED"):
        await run_sync(harness.deps, harness.shop_id, run.id)
    (stored,) = await _runs(harness)
    assert stored.status == "running"
    assert stored.error is not None
    assert "ended FAILED" in stored.error
    summary = await run_sync(harness.deps, harness.shop_id, run.id)
    assert summary.status == "completed"
    attempts = await _attempts(harness, run.id)
    assert [a.outcome for a in attempts] == ["error", "completed"]
    assert attempts[0].error is not None
    assert "BulkOperationError" in attempts[0].error
    assert "ended FAILED" in attempts[0].error
    assert attempts[1].error is None


def _status(database: TestDatabase, redis_url: str, *args: str) -> str:
    env = {"POSTGRES_URL": database.app_url, "REDIS_URL": redis_url, "NEANELU_MODE": "local"}
    result = CliRunner().invoke(
        app, ["sync", "status", "--shop", "alpha.myshopify.com", *args], env=env
    )
    assert result.exit_code == 0, result.output
    # Rich wraps long lines at the terminal's width: compare words, not line breaks.
    return " ".join(result.output.split())


async def test_status_says_when_a_killed_attempts_holder_stopped_renewing(
    harness: SyncHarness, database: TestDatabase, redis_url: str
) -> None:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run = await request_full_sync(conn, harness.shop_id)
    child = subprocess.Popen(  # noqa: ASYNC220 - started once; the test polls it below
        [
            sys.executable,
            "-m",
            "tests.integration.sync.sync_child",
            database.app_url,
            harness.emulator.base_url,
            harness.shop,
            str(harness.shop_id),
            str(run.id),
            "copy",
            "0.2",  # heartbeat every 0.2 s: a lease of 0.6 s
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def renewed() -> bool:
            assert child.poll() is None, "the sync ended before it could be killed"
            found = await _attempts(harness, run.id)
            return bool(found) and found[0].heartbeat_at > found[0].started_at

        await _wait_for(renewed, timeout=60)
        alive = await asyncio.to_thread(_status, database, redis_url)
        assert f"run {run.id}: attempt 1 on " in alive
        assert ": alive, last heartbeat" in alive
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    killed_at = time.monotonic()

    async def lease_ran_out() -> bool:
        (attempt,) = await _attempts(harness, run.id)
        return attempt.lease_expired_s > 1.0

    await _wait_for(lease_ran_out, timeout=30)
    (attempt,) = await _attempts(harness, run.id)
    assert attempt.open
    assert attempt.holder.endswith(f":{child.pid}")
    shown = await asyncio.to_thread(_status, database, redis_url)
    assert f"attempt 1 on {attempt.holder}: worker lease expired" in shown
    assert "stopped renewing" in shown
    waited = time.monotonic() - killed_at
    assert attempt.heartbeat_age_s <= waited + 5

    # The next attempt closes the silent one as abandoned, with the reason, and completes.
    assert (await run_sync(harness.deps, harness.shop_id, run.id)).status == "completed"
    first, second = await _attempts(harness, run.id)
    assert first.outcome == "abandoned"
    assert first.error is not None
    assert "stopped without reporting" in first.error
    assert attempt.holder in first.error
    assert second.outcome == "completed"
    history = await asyncio.to_thread(_status, database, redis_url, "--run", str(run.id))
    assert f"attempts of run {run.id}" in history
    assert "abandoned" in history


async def test_a_sync_job_whose_workers_kept_dying_fails_its_run(
    harness: SyncHarness, bulk_queue: QueueClient
) -> None:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run = await request_full_sync(conn, harness.shop_id)
    job = FullSyncJob(shop_id=str(harness.shop_id), run_id=str(run.id))
    spec = full_sync.spec(job, group=harness.shop_id)
    queue = bulk_queue.queue(BULK)  # lease 5 s, max_stalls 3
    await queue.enqueue(spec)
    for _ in range(4):
        # A worker takes the job and dies with it (OOM, SIGKILL): its lease runs out.
        assert [j.id for j in (await queue.reserve()).jobs] == [spec.job_id]
        bulk_queue.clock_offset_ms += 5001
    registry = Registry()
    sync_tasks.register(registry)
    stop = asyncio.Event()
    worker = Worker(bulk_queue, registry, [BULK], concurrency=1, resources={SyncDeps: harness.deps})
    task = asyncio.create_task(worker.run(stop))
    try:

        async def run_failed() -> bool:
            return (await _runs(harness))[0].status == "failed"

        await _wait_for(run_failed, timeout=30)
    finally:
        stop.set()
        await task
    (failed,) = await _runs(harness)
    assert failed.error is not None
    assert failed.error.startswith(f"sync job {spec.job_id} dead-lettered: stalled 4 times")
    assert await queue.terminal_ids("dead") == [spec.job_id]
