"""`neanelu demo`: the whole chain on embedded defaults, for real, start to finish.

Embedded PostgreSQL and Redis, the Shopify emulator with a 100k-product store, the API and a worker
as their own processes; the app is installed through the real OAuth endpoints, the full sync runs
on the queue with a progress bar per phase, catalog changes arrive as webhooks, a parity check
compares a sample field by field, and a summary table reports what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import psutil
import psycopg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from neanelu.cli.common import console, err_console, settings_from, text_of
from neanelu.config import Settings
from neanelu.db import migrate
from neanelu.db.embedded import (
    EmbeddedServiceError,
    postgres_running,
    redis_running,
    stop_postgres,
    stop_redis,
)
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalar, fetch_scalars
from neanelu.db.services import ServiceUrls, resolve_services
from neanelu.shops.oauth_state import COOKIE_NAME
from neanelu.sync import repository as runs
from neanelu.sync.progress import progress_key
from neanelu.sync.verify import ParityReport, verify_sample
from neanelu.worker.resources import WorkerResources, open_resources

app = typer.Typer(help="Run the whole system on an emulated store, end to end.")

SHOP = "demo"
DOMAIN = f"{SHOP}.myshopify.com"

CHANGED_PRODUCTS = 300
CHANGED_LEVELS = 300
DELETED_PRODUCTS = 10
PARITY_SAMPLE = 100


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and why."""


@dataclass
class Processes:
    """The processes the demo started, stopped in reverse order whatever happens."""

    started: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: dict[str, str], log: str
    ) -> subprocess.Popen[str]:
        with open(log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                args,
                env=env,
                stdout=subprocess.PIPE if name == "emulator" else out,
                stderr=out,
                text=True,
            )
        self.started.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                raise DemoFailed(f"the {name} process exited with code {proc.returncode}")

    def stop(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.started):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        """The worker and its children (a large inventory file is ingested by a child)."""
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                total = self.process.memory_info().rss
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
                self.peak = max(self.peak, total)
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(
    settings: Settings, services: ServiceUrls, emulator_url: str, api_url: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NEANELU_MODE="local",
        NEANELU_DATA_DIR=str(settings.data_dir.resolve()),
        POSTGRES_URL=services.postgres_app,
        POSTGRES_OWNER_URL=services.postgres_owner,
        REDIS_URL=services.redis,
        SHOPIFY_API_KEY=settings.shopify_api_key,
        SHOPIFY_API_SECRET=settings.shopify_api_secret.get_secret_value(),
        SHOPIFY_BASE_URL=emulator_url,
        APP_HOST=api_url,
    )
    env.pop("SHOPIFY_API_SECRET_PREVIOUS", None)
    return env


@contextlib.contextmanager
def _step(title: str) -> Iterator[None]:
    started = time.perf_counter()
    console.print(f"[bold cyan]>[/bold cyan] {title}")
    yield
    console.print(f"  done in {time.perf_counter() - started:.1f} s")


async def _wait_for(check: Any, what: str, timeout: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        if await check():
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass
class DemoRun:
    settings: Settings
    products: int
    procs: Processes = field(default_factory=Processes)
    emulator_url: str = ""
    api_url: str = ""
    worker_metrics_port: int = 0
    api_metrics_port: int = 0
    figures: dict[str, Any] = field(default_factory=dict)

    async def control(self, http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
        response = await http.request(
            method, f"{self.emulator_url}/_emulator/shops/{SHOP}{path}", **kw
        )
        if response.status_code >= 400:
            raise DemoFailed(
                f"emulator control {method} {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        return response.json()


def _start_processes(demo: DemoRun, services: ServiceUrls, logs: str) -> None:
    settings = demo.settings
    emulator_port, api_port = _free_port(), _free_port()
    demo.emulator_url, demo.api_url = (
        f"http://127.0.0.1:{emulator_port}",
        f"http://127.0.0.1:{api_port}",
    )
    env = _child_env(settings, services, demo.emulator_url, demo.api_url)
    emulator = demo.procs.start(
        "emulator",
        [
            sys.executable,
            "-m",
            "shopify_emulator",
            "--shops",
            f"{SHOP}:{demo.products}",
            "--port",
            str(emulator_port),
            "--client-id",
            settings.shopify_api_key,
            "--client-secret",
            settings.shopify_api_secret.get_secret_value(),
            "--bulk-dir",
            str((settings.data_dir / "emulator-bulk").resolve()),
            "--time-scale",
            "0.01",
        ],
        env,
        f"{logs}/emulator.log",
    )
    assert emulator.stdout is not None
    line = emulator.stdout.readline()
    if "listening" not in line:
        raise DemoFailed(f"the emulator did not start (see {logs}/emulator.log): {line.strip()}")
    demo.api_metrics_port = _free_port()
    demo.procs.start(
        "api",
        [
            sys.executable,
            "-m",
            "neanelu",
            "serve",
            "--port",
            str(api_port),
            "--log-level",
            "warning",
        ],
        {**env, "API_METRICS_PORT": str(demo.api_metrics_port)},
        f"{logs}/api.log",
    )
    demo.worker_metrics_port = _free_port()
    demo.procs.start(
        "worker",
        [sys.executable, "-m", "neanelu", "worker"],
        {**env, "METRICS_PORT": str(demo.worker_metrics_port)},
        f"{logs}/worker.log",
    )


async def _install(demo: DemoRun, http: httpx.AsyncClient) -> None:
    """As a merchant would: the install link, Shopify's authorize page, the callback."""
    start = await http.get(f"{demo.api_url}/auth/install", params={"shop": DOMAIN})
    if start.status_code != 302:
        raise DemoFailed(f"/auth/install answered {start.status_code}: {start.text[:200]}")
    authorize = urlsplit(start.headers["location"])
    cookie = start.cookies.get(COOKIE_NAME)
    approved = await http.get(
        f"{demo.emulator_url}{authorize.path}?{authorize.query}", headers={"Host": DOMAIN}
    )
    if approved.status_code != 302:
        raise DemoFailed(f"the authorize page answered {approved.status_code}")
    http.cookies.clear()
    done = await http.get(
        approved.headers["location"], headers={"Cookie": f"{COOKIE_NAME}={cookie}"}
    )
    if done.status_code not in (200, 302):
        raise DemoFailed(f"/auth/callback answered {done.status_code}: {done.text[:200]}")


async def _shop_id(res: WorkerResources) -> UUID | None:
    async with global_scope(res.runtime.pool) as conn:
        return await fetch_scalar(conn, UUID, "SELECT id FROM shops WHERE domain = %s", (DOMAIN,))


async def _forget_previous_demo(owner_url: str) -> bool:
    """A second demo starts from a fresh store: the emulator forgets its changes on restart, so
    the previous demo shop's rows (newer than the regenerated store) are removed first. As the
    owner: the application role deletes no installed shop."""
    async with await psycopg.AsyncConnection.connect(owner_url, autocommit=True) as conn:
        cur = await conn.execute("DELETE FROM shops WHERE domain = %s", (DOMAIN,))
        return cur.rowcount > 0


async def _watch_sync(demo: DemoRun, res: WorkerResources, shop_id: UUID) -> runs.SyncRun:
    columns = (
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>18}"),
    )
    tasks: dict[str, TaskID] = {}
    seen: dict[str, tuple[int, float]] = {}
    deadline = time.monotonic() + 3600
    with Progress(*columns, console=console) as progress:
        while True:
            demo.procs.check_alive()
            async with tenant_scope(res.runtime.pool, shop_id) as conn:
                latest = await runs.latest_runs(conn, 1)
            raw = await res.runtime.redis.hgetall(progress_key(shop_id))
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


@dataclass(frozen=True, slots=True)
class _StoredCounts:
    products: int
    variants: int
    metafields: int
    inventory_levels: int
    webhooks: int


@dataclass(frozen=True, slots=True)
class _Level:
    inventory_item_id: int
    location_id: int
    available: int


async def _stored_counts(res: WorkerResources, shop_id: UUID) -> dict[str, int]:
    async with tenant_scope(res.runtime.pool, shop_id) as conn:
        row = await fetch_one(
            conn,
            _StoredCounts,
            "SELECT (SELECT count(*) FROM products WHERE deleted_at IS NULL) AS products,"
            " (SELECT count(*) FROM variants WHERE deleted_at IS NULL) AS variants,"
            " ((SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
            "  FROM products WHERE deleted_at IS NULL)"
            " + (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
            "  FROM variants WHERE deleted_at IS NULL))::bigint AS metafields,"
            " (SELECT count(*) FROM inventory_levels) AS inventory_levels,"
            " (SELECT count(*) FROM webhook_inbox) AS webhooks",
        )
    assert row is not None
    return {
        "products": int(row.products),
        "variants": int(row.variants),
        "metafields": int(row.metafields),
        "inventory_levels": int(row.inventory_levels),
        "webhooks": int(row.webhooks),
    }


async def _make_changes(
    demo: DemoRun, http: httpx.AsyncClient, res: WorkerResources, shop_id: UUID
) -> tuple[list[int], list[tuple[int, int, int]], list[int]]:
    async with tenant_scope(res.runtime.pool, shop_id) as conn:
        ids = await fetch_scalars(
            conn,
            int,
            "SELECT shopify_id FROM products ORDER BY md5(shopify_id::text) LIMIT %s",
            (CHANGED_PRODUCTS + DELETED_PRODUCTS,),
        )
        # Levels of changed products that stay (a deleted product takes its levels with it),
        # found through the variants' product index, whatever the planner's statistics say.
        stored = await fetch_all(
            conn,
            _Level,
            "SELECT l.inventory_item_id, l.location_id, coalesce(l.available, 0) AS available"
            " FROM variants v JOIN inventory_levels l ON l.inventory_item_id = v.inventory_item_id"
            " WHERE v.product_shopify_id = ANY(%s) ORDER BY md5(l.shopify_id::text) LIMIT %s",
            (ids[:CHANGED_PRODUCTS], CHANGED_LEVELS),
        )
        levels = [
            (int(lv.inventory_item_id), int(lv.location_id), int(lv.available) + 17)
            for lv in stored
        ]
    changed, deleted = ids[:CHANGED_PRODUCTS], ids[CHANGED_PRODUCTS:]
    semaphore = asyncio.Semaphore(16)

    async def call(method: str, path: str, **kw: Any) -> None:
        async with semaphore:
            await demo.control(http, method, path, **kw)

    await asyncio.gather(
        *(
            call(
                "PATCH", f"/products/gid://shopify/Product/{i}", json={"title": f"Demo change {i}"}
            )
            for i in changed
        ),
        *(
            call(
                "POST",
                "/inventory",
                json={"inventory_item_id": item, "location_id": loc, "available": qty},
            )
            for item, loc, qty in levels
        ),
        *(call("DELETE", f"/products/gid://shopify/Product/{i}") for i in deleted),
    )
    return changed, levels, deleted


async def _changes_arrived(
    res: WorkerResources,
    shop_id: UUID,
    changed: list[int],
    levels: list[tuple[int, int, int]],
    deleted: list[int],
) -> bool:
    async with tenant_scope(res.runtime.pool, shop_id) as conn:
        titles = await fetch_scalar(
            conn,
            int,
            "SELECT count(*) FROM products WHERE shopify_id = ANY(%s) AND title = 'Demo change ' || shopify_id",
            (changed,),
        )
        stock = await fetch_scalar(
            conn,
            int,
            "SELECT count(*) FROM inventory_levels l JOIN unnest(%s::bigint[], %s::bigint[], %s::int[])"
            " AS x(item, loc, qty) ON l.inventory_item_id = x.item AND l.location_id = x.loc"
            " AND l.available = x.qty",
            ([a for a, _, _ in levels], [b for _, b, _ in levels], [c for _, _, c in levels]),
        )
        gone = await fetch_scalar(
            conn,
            int,
            "SELECT count(*) FROM products WHERE shopify_id = ANY(%s) AND deleted_at IS NOT NULL",
            (deleted,),
        )
    return bool(
        (titles or 0) == len(changed)
        and (stock or 0) == len(levels)
        and (gone or 0) == len(deleted)
    )


@dataclass(frozen=True, slots=True)
class EmbeddedServers:
    """Which embedded servers the demo itself starts (configured URLs and servers already
    running before it are not the demo's to stop)."""

    postgres: bool
    redis: bool

    @classmethod
    def before_start(cls, settings: Settings) -> EmbeddedServers:
        data_dir = settings.data_dir
        return cls(
            postgres=not settings.postgres_url and not postgres_running(data_dir),
            redis=not settings.redis_url and not redis_running(data_dir),
        )

    def finish(self, settings: Settings, keep: bool) -> None:
        """Stop what the demo started, or with `keep` say what still runs and how to stop it."""
        data_dir = settings.data_dir
        running = [
            name
            for name, up in (
                ("PostgreSQL", not settings.postgres_url and postgres_running(data_dir)),
                ("Redis", not settings.redis_url and redis_running(data_dir)),
            )
            if up
        ]
        if keep:
            if running:
                console.print(
                    f"still running: the embedded {' and '.join(running)} in {data_dir} "
                    "(`neanelu db down` or `make db-down` stops them)"
                )
            return
        started = {"PostgreSQL": self.postgres, "Redis": self.redis}
        stops = {"PostgreSQL": stop_postgres, "Redis": stop_redis}
        stopped = []
        for name in running:
            if not started[name]:
                continue
            try:
                stops[name](data_dir)
                stopped.append(name)
            except EmbeddedServiceError as exc:
                err_console.print(f"[red]could not stop the embedded {name}: {exc}[/red]")
        if stopped:
            console.print(f"stopped the embedded {' and '.join(stopped)} the demo started")
        left = [name for name in running if not started[name]]
        if left:
            console.print(
                f"left running: the embedded {' and '.join(left)} in {data_dir}, running before "
                "the demo (`neanelu db down` stops them)"
            )


async def run_demo(settings: Settings, products: int, keep: bool) -> int:
    logs = str((settings.data_dir / "demo-logs").resolve())
    os.makedirs(logs, exist_ok=True)
    demo = DemoRun(settings, products)
    started = time.perf_counter()
    servers = EmbeddedServers.before_start(settings)
    try:
        with _step("Starting embedded PostgreSQL 18 + pgvector and Redis, migrating"):
            services = await asyncio.to_thread(resolve_services, settings)
            await asyncio.to_thread(migrate.upgrade, services.postgres_owner, services.app_role)
        with _step(f"Starting the Shopify emulator ({products:,} products), the API and a worker"):
            _start_processes(demo, services, logs)
            # This process talks to the emulator too (parity check), as the API and worker do.
            local = settings.model_copy(
                update={"shopify_base_url": demo.emulator_url, "app_host": demo.api_url}
            )
            async with httpx.AsyncClient(timeout=10) as probe:

                async def ready() -> bool:
                    try:
                        return (await probe.get(f"{demo.api_url}/health/ready")).status_code == 200
                    except httpx.TransportError:
                        return False

                await _wait_for(ready, "the API to be ready", 60, demo.procs)
        async with open_resources(local, services, concurrency=2) as res:
            if await _forget_previous_demo(services.postgres_owner):
                console.print("  removed the previous demo shop (the emulator starts fresh)")
            worker_pid = next(p.pid for n, p in demo.procs.started if n == "worker")
            rss = PeakRss(worker_pid)
            async with httpx.AsyncClient(timeout=60) as http:
                with _step("Installing the app through the real OAuth endpoints"):
                    await _install(demo, http)
                    shop_id = await _shop_id(res)
                    if shop_id is None:
                        raise DemoFailed("the callback stored no shop")
                with _step("Full sync (bulk operations -> COPY -> merge), run by the worker"):
                    run = await _watch_sync(demo, res, shop_id)
                    if run.status != "completed":
                        raise DemoFailed(f"the full sync {run.status}: {run.error}")
                demo.figures["sync"] = run
                demo.figures["peak_rss"] = rss.stop()
                with _step(
                    f"Changing {CHANGED_PRODUCTS} products, {CHANGED_LEVELS} inventory levels and "
                    f"deleting {DELETED_PRODUCTS} products in the emulator; waiting for the webhooks"
                ):
                    changed, levels, deleted = await _make_changes(demo, http, res, shop_id)

                    async def arrived() -> bool:
                        return await _changes_arrived(res, shop_id, changed, levels, deleted)

                    await _wait_for(arrived, "the webhooks' changes in PostgreSQL", 300, demo.procs)
                with _step(f"Parity check on {PARITY_SAMPLE} products chosen by hash"):
                    client = await res.sync.shops.admin_client(shop_id)
                    parity = await verify_sample(res.runtime.pool, client, shop_id, PARITY_SAMPLE)
                demo.figures["throttles"] = await _throttle_events(http, demo.worker_metrics_port)
                expected = await demo.control(http, "GET", "/counts")
                stored = await _stored_counts(res, shop_id)
            ok = _report(demo, expected, stored, parity, time.perf_counter() - started)
            if keep and ok:
                await _keep_running(demo)
            return 0 if ok else 1
    except DemoFailed as exc:
        err_console.print(f"[red]demo failed: {exc}[/red] (logs in {logs})")
        return 1
    finally:
        demo.procs.stop()
        await asyncio.to_thread(servers.finish, settings, keep)


async def _throttle_events(http: httpx.AsyncClient, port: int) -> int | None:
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


def _report(
    demo: DemoRun,
    expected: dict[str, int],
    stored: dict[str, int],
    parity: ParityReport,
    seconds: float,
) -> bool:
    run: runs.SyncRun = demo.figures["sync"]
    counts = run.counts
    phases = Table(title="full sync by phase")
    for column in ("phase", "lines", "rows", "MiB", "seconds", "rows/s"):
        phases.add_column(column, justify="left" if column == "phase" else "right")
    for phase in ("core", "metafields", "variant_metafields", "inventory", "merge"):
        rows = int(counts.get(f"{phase}_rows", 0))
        secs = float(counts.get(f"{phase}_seconds", 0.0))
        phases.add_row(
            phase,
            f"{int(counts.get(f'{phase}_lines', 0)):,}",
            f"{rows:,}",
            f"{int(counts.get(f'{phase}_bytes', 0)) / 2**20:,.1f}",
            f"{secs:.2f}",
            f"{rows / secs:,.0f}" if secs else "",
        )
    console.print(phases)
    expected_metafields = expected["product_metafields"] + expected["variant_metafields"]
    checks = [
        ("products", expected["products"], stored["products"]),
        ("variants", expected["variants"], stored["variants"]),
        ("metafields", expected_metafields, stored["metafields"]),
        ("inventory levels", expected["inventory_levels"], stored["inventory_levels"]),
    ]
    table = Table(title="neanelu demo")
    table.add_column("what")
    table.add_column("emulated store", justify="right")
    table.add_column("PostgreSQL", justify="right")
    table.add_column("", justify="center")
    ok = True
    for name, want, have in checks:
        good = want == have
        ok &= good
        table.add_row(
            name, f"{want:,}", f"{have:,}", "[green]ok[/green]" if good else "[red]differs[/red]"
        )
    table.add_row("webhooks received", "", f"{stored['webhooks']:,}", "")
    table.add_row("worker peak memory", "", f"{demo.figures['peak_rss'] / 2**20:,.0f} MiB", "")
    table.add_row("sync attempts", "", str(run.attempts), "")
    throttles = demo.figures.get("throttles")
    table.add_row("throttle events", "", "n/a" if throttles is None else f"{throttles:,}", "")
    verdict = parity.matches
    ok &= verdict
    table.add_row(
        "parity sample",
        f"{parity.sampled}",
        f"{len(parity.differences)} differences",
        "[green]ok[/green]" if verdict else "[red]differs[/red]",
    )
    table.caption = f"{seconds:.1f} s in all"
    console.print(table)
    for d in parity.differences[:20]:
        console.print(
            f"  product {d.shopify_id} {d.field}: stored {d.stored!r} != shopify {d.shopify!r}"
        )
    console.print("[green]demo ok[/green]" if ok else "[red]demo found differences[/red]")
    return ok


async def _keep_running(demo: DemoRun) -> None:
    # The loop's own handler, set before the prompt: asyncio.run's default one only cancels the
    # main task at its next await, so a blocking wait here needed a second Ctrl-C.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    console.print(
        f"API docs     {demo.api_url}/docs\n"
        f"API metrics  http://127.0.0.1:{demo.api_metrics_port}/metrics\n"
        f"emulator     {demo.emulator_url}/_emulator/shops/{SHOP}\n"
        "Ctrl-C stops the API, the worker and the emulator; PostgreSQL and Redis stay up."
    )
    try:
        while not stop.is_set() and all(p.poll() is None for _, p in demo.procs.started):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    products: Annotated[
        int,
        typer.Option(envvar="DEMO_PRODUCTS", min=10, max=5_000_000, help="Products in the store"),
    ] = 100_000,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave everything running afterwards")
    ] = False,
) -> None:
    code = asyncio.run(run_demo(settings_from(ctx), products, keep))
    raise typer.Exit(code)


__all__ = ["app"]
