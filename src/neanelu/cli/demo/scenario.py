"""The demo's story, told against processes already running (see `supervise`): install the app
as a merchant would, follow the full sync the install queues, change and delete products and
levels in the emulator and wait for their webhooks to land, check a sample field by field, and
gather the figures the report prints."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
from rich.progress import TaskID

from neanelu.catalog import census
from neanelu.catalog.census import CatalogCounts, StockLevel
from neanelu.cli.common import text_of
from neanelu.cli.demo.bars import progress_bars
from neanelu.cli.demo.report import DemoFigures, SyncShare, step
from neanelu.cli.demo.search_step import run_search_step
from neanelu.cli.demo.supervise import (
    DOMAIN,
    SHOP,
    DemoFailed,
    Endpoints,
    PeakRss,
    Processes,
    cpu_seconds,
    wait_for,
)
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.shops import repository as shops
from neanelu.shops.merchant_install import InstallFailed, install_as_merchant
from neanelu.sync import repository as runs
from neanelu.sync.progress import progress_key
from neanelu.sync.verify import verify_sample
from neanelu.webhooks import repository as inbox
from neanelu.worker.resources import WorkerResources

CHANGED_PRODUCTS = 300
CHANGED_LEVELS = 300
DELETED_PRODUCTS = 10
PARITY_SAMPLE = 100
SYNC_TIMEOUT_S = 3600
WEBHOOKS_TIMEOUT_S = 300

_STORE_COUNT_KEYS = (
    "products",
    "variants",
    "product_metafields",
    "variant_metafields",
    "inventory_levels",
)


@dataclass(frozen=True, slots=True)
class Changes:
    """What the demo changed in the emulator, to find again in PostgreSQL."""

    titles: dict[int, str]  # product id -> its new title
    levels: list[StockLevel]  # with their new quantities
    deleted: list[int]  # product ids


async def forget_previous_demo(owner_url: str) -> bool:
    """A second demo starts from a fresh store: the emulator forgets its changes on restart, so
    the previous demo shop's rows (newer than the regenerated store) are removed first. As the
    owner: the application role deletes no installed shop."""
    async with await psycopg.AsyncConnection.connect(owner_url, autocommit=True) as conn:
        found = await shops.lookup_status(conn, DOMAIN)
        return found is not None and await shops.delete(conn, found.id)


def store_counts(answer: Any) -> CatalogCounts:
    """The emulator's `/counts` answer, checked: every count present and a whole number."""
    if not isinstance(answer, dict):
        raise DemoFailed(f"the emulator's counts are not an object: {str(answer)[:200]}")
    bad = [k for k in _STORE_COUNT_KEYS if type(answer.get(k)) is not int]
    if bad:
        raise DemoFailed(f"the emulator's counts lack a whole number for {', '.join(bad)}")
    return CatalogCounts(
        products=answer["products"],
        variants=answer["variants"],
        metafields=answer["product_metafields"] + answer["variant_metafields"],
        inventory_levels=answer["inventory_levels"],
    )


async def throttle_events(http: httpx.AsyncClient, port: int) -> int | None:
    """THROTTLED and 429 answers the worker met, from its own /metrics."""
    try:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.TransportError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("neanelu_shopify_throttles_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


@dataclass
class Scenario:
    procs: Processes
    endpoints: Endpoints
    http: httpx.AsyncClient  # follows no redirects: the install checks each hop
    res: WorkerResources  # this process's own pools and clients (the parity check's)

    async def control(self, method: str, path: str, **kw: Any) -> Any:
        """The emulator's control API for the demo shop."""
        url = f"{self.endpoints.emulator_url}/_emulator/shops/{SHOP}{path}"
        response = await self.http.request(method, url, **kw)
        if response.status_code >= 400:
            raise DemoFailed(
                f"emulator control {method} {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        return response.json()

    async def install(self) -> UUID:
        try:
            installed = await install_as_merchant(
                self.http,
                app_url=self.endpoints.api_url,
                shopify_url=self.endpoints.emulator_url,
                domain=DOMAIN,
            )
        except InstallFailed as exc:
            raise DemoFailed(f"the install failed: {exc}") from None
        async with global_scope(self.res.runtime.pool) as conn:
            if await shops.lookup_status(conn, DOMAIN) is None:
                raise DemoFailed("the callback stored no shop")
        return installed.shop_id

    async def watch_sync(self, shop_id: UUID) -> runs.SyncRun:
        """The install's full sync, a progress bar per phase from its live progress in Redis,
        until its run completes or fails."""
        tasks: dict[str, TaskID] = {}
        seen: dict[str, tuple[int, float]] = {}
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        rt = self.res.runtime
        with progress_bars() as progress:
            while True:
                self.procs.check_alive()
                async with tenant_scope(rt.pool, shop_id) as conn:
                    latest = await runs.latest_runs(conn, 1)
                raw = await rt.redis.hgetall(progress_key(shop_id))
                live = {text_of(k): text_of(v) for k, v in raw.items()}
                phase = live.get("phase")
                if phase:
                    done_count = int(live.get("rows" if phase == "merge" else "lines", 0))
                    total = int(live.get("expected_lines", 0)) or None
                    if phase not in tasks:
                        tasks[phase] = progress.add_task(phase, total=total, rate="")
                        seen[phase] = (done_count, time.monotonic())
                    first = seen[phase]
                    elapsed = max(time.monotonic() - first[1], 1e-6)
                    rate = (done_count - first[0]) / elapsed
                    progress.update(
                        tasks[phase],
                        completed=done_count,
                        total=total if total else (done_count if live.get("done") == "1" else None),
                        rate=f"{rate:,.0f} /s",
                    )
                if latest and latest[0].status in ("completed", "failed"):
                    return latest[0]
                if time.monotonic() > deadline:
                    raise DemoFailed("the full sync did not finish within an hour")
                await asyncio.sleep(0.25)

    async def make_changes(self, shop_id: UUID) -> Changes:
        """Products and levels chosen by hash among the stored ones, changed and deleted in the
        emulator (16 calls at a time), which sends the webhooks."""
        async with tenant_scope(self.res.runtime.pool, shop_id) as conn:
            ids = await census.sample_product_ids(conn, CHANGED_PRODUCTS + DELETED_PRODUCTS)
            changed, deleted = ids[:CHANGED_PRODUCTS], ids[CHANGED_PRODUCTS:]
            # Levels of changed products that stay (a deleted product takes its levels along).
            levels = await census.levels_of_products(conn, changed, CHANGED_LEVELS)
        changes = Changes(
            titles={i: f"Demo change {i}" for i in changed},
            levels=[
                StockLevel(s.inventory_item_id, s.location_id, s.available + 17) for s in levels
            ],
            deleted=deleted,
        )
        semaphore = asyncio.Semaphore(16)

        async def call(method: str, path: str, **kw: Any) -> None:
            async with semaphore:
                await self.control(method, path, **kw)

        await asyncio.gather(
            *(
                call("PATCH", f"/products/gid://shopify/Product/{i}", json={"title": title})
                for i, title in changes.titles.items()
            ),
            *(
                call(
                    "POST",
                    "/inventory",
                    json={
                        "inventory_item_id": s.inventory_item_id,
                        "location_id": s.location_id,
                        "available": s.available,
                    },
                )
                for s in changes.levels
            ),
            *(call("DELETE", f"/products/gid://shopify/Product/{i}") for i in changes.deleted),
        )
        return changes

    async def changes_arrived(self, shop_id: UUID, changes: Changes) -> bool:
        async with tenant_scope(self.res.runtime.pool, shop_id) as conn:
            titled = await census.count_titled(conn, changes.titles)
            stocked = await census.count_levels_at(conn, changes.levels)
            gone = await census.count_deleted(conn, changes.deleted)
        return (
            titled == len(changes.titles)
            and stocked == len(changes.levels)
            and gone == len(changes.deleted)
        )

    async def run(self, started: float) -> DemoFigures:
        """Every step in order; `started` is when the demo began (for its total time)."""
        rss = PeakRss(self.procs.pid("worker"))
        with step("Installing the app through the real OAuth endpoints"):
            shop_id = await self.install()
        emulator, worker = self.procs.pid("emulator"), self.procs.pid("worker")
        cpu_before = cpu_seconds(emulator), cpu_seconds(worker)
        with step("Full sync (bulk operations -> COPY -> merge), run by the worker"):
            run = await self.watch_sync(shop_id)
            if run.status != "completed":
                raise DemoFailed(f"the full sync {run.status}: {run.error}")
        peak_rss = rss.stop()
        share = SyncShare.of(
            _seconds_between(run.started_at, run.finished_at),
            await self.control("GET", "/bulk"),
            cpu_seconds(emulator) - cpu_before[0],
            cpu_seconds(worker) - cpu_before[1],
        )
        with step(
            f"Changing {CHANGED_PRODUCTS} products, {CHANGED_LEVELS} inventory levels and "
            f"deleting {DELETED_PRODUCTS} products in the emulator; waiting for the webhooks"
        ):
            changes = await self.make_changes(shop_id)

            async def arrived() -> bool:
                return await self.changes_arrived(shop_id, changes)

            await wait_for(
                arrived, "the webhooks' changes in PostgreSQL", WEBHOOKS_TIMEOUT_S, self.procs
            )
        with step(f"Parity check on {PARITY_SAMPLE} products chosen by hash"):
            client = await self.res.sync.shops.admin_client(shop_id)
            parity = await verify_sample(self.res.runtime.pool, client, shop_id, PARITY_SAMPLE)
        with step(
            "Search: the catalog's vectors (local model), searches through GET /api/search, "
            "and a retitled product's freshness"
        ):

            async def retitle(product_id: int, title: str) -> None:
                await self.control(
                    "PATCH", f"/products/gid://shopify/Product/{product_id}", json={"title": title}
                )

            searched = await run_search_step(
                self.res.runtime.pool,
                self.http,
                self.endpoints.api_url,
                shop_id,
                next(iter(changes.titles)),
                retitle,
            )
        throttles = await throttle_events(self.http, self.endpoints.worker_metrics_port)
        store = store_counts(await self.control("GET", "/counts"))
        async with tenant_scope(self.res.runtime.pool, shop_id) as conn:
            stored = await census.counts(conn)
            webhooks = await inbox.count_inbox(conn)
        return DemoFigures(
            sync=run,
            peak_rss=peak_rss,
            throttles=throttles,
            store=store,
            stored=stored,
            webhooks=webhooks,
            parity=parity,
            seconds=time.perf_counter() - started,
            share=share,
            search=searched,
        )


def _seconds_between(start: datetime | None, end: datetime | None) -> float:
    return (end - start).total_seconds() if start and end else 0.0
