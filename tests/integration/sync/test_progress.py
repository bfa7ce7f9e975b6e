"""Live progress is best effort: a Redis that restarts in the middle of staging costs a few
progress writes, not the sync attempt."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import redis.asyncio as aioredis

from neanelu.db.embedded import start_redis, stop_redis
from neanelu.db.pool import tenant_scope
from neanelu.sync import repository as runs
from neanelu.sync.progress import PhaseProgress, ProgressReporter, progress_key
from neanelu.sync.service import request_full_sync, run_sync
from tests.integration.sync.helpers import SyncHarness


async def test_a_redis_restart_during_staging_does_not_fail_the_attempt(
    harness: SyncHarness, tmp_path: Path
) -> None:
    server = start_redis(tmp_path, persist=False)
    client = aioredis.Redis.from_url(server.url)
    seen: list[tuple[str, bool]] = []

    async def restart_redis_midway(progress: PhaseProgress) -> None:
        # Stopped while the first file stages, started again when the core file begins: the
        # progress writes in between find no server at all.
        if not seen:
            assert await asyncio.to_thread(stop_redis, tmp_path)
        elif progress.phase == "core" and not any(phase == "core" for phase, _ in seen):
            await asyncio.to_thread(start_redis, tmp_path, persist=False)
        seen.append((progress.phase, await _redis_up(client)))

    try:
        async with tenant_scope(harness.pool, harness.shop_id) as conn:
            run = await request_full_sync(conn, harness.shop_id)
        reporter = ProgressReporter(client, harness.shop_id, run.id, restart_redis_midway)
        deps = dataclasses.replace(harness.deps, redis=client)
        summary = await run_sync(deps, harness.shop_id, run.id, listener=reporter)

        assert summary.status == "completed"
        assert seen[0] == ("metafields", False)  # the server really was down during staging
        assert ("core", True) in seen
        async with tenant_scope(harness.pool, harness.shop_id) as conn:
            stored = await runs.get_run(conn, run.id)
        assert stored is not None
        assert stored.status == "completed"
        assert stored.attempts == 1
        expected, stored_counts = await harness.expected_counts(), await harness.stored()
        assert all(stored_counts[k] == expected[k] for k in stored_counts)
        # Once Redis was back the live figures were written again, to the end.
        live = await client.hgetall(progress_key(harness.shop_id))
        assert live[b"run_id"] == str(run.id).encode()
        assert live[b"phase"] == b"merge"
        assert live[b"done"] == b"1"
        assert reporter.failed_writes == 0
    finally:
        await client.aclose()
        await asyncio.to_thread(stop_redis, tmp_path)


async def _redis_up(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (aioredis.ConnectionError, OSError):
        return False
