"""A worker killed with SIGKILL mid-COPY or mid-merge: the next attempt resumes the run and the
tables end exactly as a clean run leaves them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from neanelu.db.pool import tenant_scope
from neanelu.sync import repository as runs
from neanelu.sync.service import request_full_sync, run_sync
from tests.databases import TestDatabase
from tests.integration.sync.helpers import SyncHarness

ROOT = Path(__file__).resolve().parents[3]

WHERE = {
    # The core file is staged and the inventory file is streaming (slowly) into its COPY.
    "copy": "SELECT counts ? 'core_lines' AND NOT counts ? 'inventory_lines' FROM sync_runs",
    # Merge batches have committed products (variants merge beside them), and the run is not done.
    "merge": "SELECT (SELECT count(*) FROM products) > 0"
    " AND (SELECT count(*) FROM variants) < 100 AND (SELECT status FROM sync_runs) = 'running'",
}


@pytest.mark.parametrize("point", ["copy", "merge"])
async def test_sigkill_then_resume_equals_a_clean_run(
    harness: SyncHarness, database: TestDatabase, point: str
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
            point,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(database.superuser_url, autocommit=True) as watcher:
            while True:
                assert child.poll() is None, "the sync ended before it could be killed"
                row = watcher.execute(WHERE[point]).fetchone()
                if row is not None and row[0]:
                    break
                assert time.monotonic() < deadline, f"never reached {point}"
                await asyncio.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        killed = await runs.get_run(conn, run.id)
    assert killed is not None
    assert killed.status == "running"
    assert killed.attempts == 1

    resumed = await run_sync(harness.deps, harness.shop_id, run.id)
    assert resumed.status == "completed"
    # The killed attempt never reported: the run's end closes it as abandoned, with who held it.
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        attempts = await runs.attempts_of(conn, run.id)
    assert [a.outcome for a in attempts] == ["abandoned", "completed"]
    assert attempts[0].error is not None
    assert "stopped without reporting" in attempts[0].error
    after_resume = await harness.snapshot()

    # A clean run from empty tables, for comparison.
    with psycopg.connect(database.superuser_url, autocommit=True) as admin:
        admin.execute("TRUNCATE products, variants, inventory_levels")
    await harness.full_sync()
    assert await harness.snapshot() == after_resume
    assert len(after_resume["products"]) == (await harness.expected_counts())["products"]
