"""A sync in its own process, made slow at one point so a test can SIGKILL it there.

`python -m tests.integration.sync.sync_child <app_url> <emulator_url> <shop> <shop_id> <run_id> copy|merge
[heartbeat_s]`
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from uuid import UUID

import httpx

from neanelu.db.pool import PoolSizes, create_pool
from neanelu.sync.progress import PhaseProgress, ProgressReporter
from neanelu.sync.service import SyncDeps, run_sync
from tests.integration.sync.helpers import EmulatorShopAccess


class SlowStream(httpx.AsyncByteStream):
    """A result file trickling in, as over a slow link."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            for i in range(0, len(chunk), 2048):
                await asyncio.sleep(0.01)
                yield chunk[i : i + 2048]

    async def aclose(self) -> None:
        await self.inner.aclose()


class SlowFiles(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if "/bulk-operation-outputs/" in request.url.path:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = SlowStream(response.stream)
        return response


async def main(
    app_url: str,
    base_url: str,
    shop: str,
    shop_id: str,
    run_id: str,
    mode: str,
    heartbeat_s: str = "10",
) -> None:
    pool = create_pool(app_url, PoolSizes(1, 6), name="sync-child")
    await pool.open(wait=True)
    transport = SlowFiles() if mode == "copy" else None
    async with httpx.AsyncClient(timeout=60, transport=transport) as http:
        deps = SyncDeps(
            pool,
            http,
            EmulatorShopAccess(base_url, http, shop),
            merge_batch_pages=1 if mode == "merge" else 1500,
            heartbeat_s=float(heartbeat_s),
        )

        async def slow_merge(progress: PhaseProgress) -> None:
            if mode == "merge" and progress.phase == "merge":
                await asyncio.sleep(0.3)

        reporter = ProgressReporter(None, UUID(shop_id), UUID(run_id), slow_merge)
        await run_sync(deps, UUID(shop_id), UUID(run_id), listener=reporter)
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
